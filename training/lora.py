"""PEFT LoRA for SLAP: which projections get adapters, and the `LoraConfig` that targets them.

Targets are the attention and MLP projections of the audio encoder's blocks
(`q_proj k_proj v_proj o_proj gate_proj up_proj down_proj`) and the linear layers inside the
text tower's transformer blocks (whatever the encoder family calls them: `query/key/value/dense`
in BERT, `Wqkv/Wo/Wi` in ModernBERT). A task head that the pretrained checkpoint does not have
(`SlapForAudioClassification.classifier`) trains in full and is saved with the adapter by default;
embeddings, poolings and projections stay frozen unless the caller names them (`modules_to_save`).
"""

from __future__ import annotations

import re

from peft import LoraConfig
from torch import nn

# Module-name patterns, matched in full by PEFT (a regex string `target_modules`).
AUDIO_TARGETS = r"(.*\.)?audio_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
TEXT_BLOCK = re.compile(r"(.*\.)?text_model\.encoder\.(.*\.)?(layer|layers)\.\d+\..*")
# Task heads initialised fresh on top of the pretrained towers: without them an adapter is useless.
TASK_HEADS = ("classifier",)


def lora_target_modules(model: nn.Module, towers: tuple[str, ...] = ("audio", "text")) -> str:
    """A PEFT `target_modules` regex for the chosen towers of a SLAP model.

    The text pattern lists the linear layers found inside the text tower's blocks, so it works for
    any Hugging Face encoder family.
    """
    patterns = []
    if "audio" in towers:
        patterns.append(AUDIO_TARGETS)
    if "text" in towers:
        names = sorted(
            {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if isinstance(module, nn.Linear) and TEXT_BLOCK.fullmatch(name)}
        )
        if names:
            patterns.append(
                r"(.*\.)?text_model\.encoder\.(.*\.)?(layer|layers)\.\d+\.(.*\.)?(" + "|".join(names) + ")"
            )
    if not patterns:
        raise ValueError(f"no LoRA targets for towers={towers}; choose from 'audio', 'text'")
    return "|".join(f"(?:{p})" for p in patterns)


def slap_lora_config(
    model: nn.Module,
    towers: tuple[str, ...] = ("audio", "text"),
    r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.0,
    modules_to_save: list[str] | None = None,
) -> LoraConfig:
    """LoRA on the audio/text towers' attention and MLP projections.

    `modules_to_save` defaults to the model's task head (`classifier` of `SlapForAudioClassification`,
    none for `SlapModel`), so a fine-tuned classifier's head trains, saves with the adapter and comes
    back with `PeftModel.from_pretrained`; pass a list (`[]` for none) to choose otherwise.
    """
    if modules_to_save is None:
        modules_to_save = [name for name in TASK_HEADS if isinstance(getattr(model, name, None), nn.Module)]
    return LoraConfig(
        r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
        target_modules=lora_target_modules(model, towers), modules_to_save=modules_to_save,
    )
