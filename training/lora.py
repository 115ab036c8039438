"""PEFT LoRA for SLAP: which projections get adapters, and the `LoraConfig` that targets them.

Targets are the attention and MLP projections of the audio encoder's blocks
(`q_proj k_proj v_proj o_proj gate_proj up_proj down_proj`) and the linear layers inside the
text tower's transformer blocks (whatever the encoder family calls them: `query/key/value/dense`
in BERT, `Wqkv/Wo/Wi` in ModernBERT). Embeddings, poolings, projections and heads stay
trainable or frozen as the caller decides (`modules_to_save`).
"""

from __future__ import annotations

import re

from peft import LoraConfig
from torch import nn

# Module-name patterns, matched in full by PEFT (a regex string `target_modules`).
AUDIO_TARGETS = r"(.*\.)?audio_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
TEXT_BLOCK = re.compile(r"(.*\.)?text_model\.encoder\.(.*\.)?(layer|layers)\.\d+\..*")


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

    For `SlapForAudioClassification` pass `modules_to_save=["classifier"]` so the new head trains
    and is saved with the adapter.
    """
    return LoraConfig(
        r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
        target_modules=lora_target_modules(model, towers), modules_to_save=modules_to_save,
    )
