"""The SLAP `PreTrainedModel` base (one `_init_weights`) and the output dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_slap import SlapAudioConfig, SlapConfig
from .packed_attention import SlapAttentionPooling


class SlapPreTrainedModel(PreTrainedModel):
    """Weight initialisation and `from_pretrained` plumbing shared by the SLAP models."""

    config_class = SlapConfig
    base_model_prefix = "slap"
    main_input_name = "input_features"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flex_attn = True  # our packed FlexAttention kernels (attention_backends.py)
    _no_split_modules = ["SlapAudioLayer", "SlapDecoderLayer"]

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained`. A model saved as remote code (after
        `register_auto_classes()`, or loaded with `trust_remote_code=True`) lists every SLAP Auto class
        in `auto_map`, so the folder serves `AutoModelForAudioClassification`, the captioning and
        pretraining classes and the processor too, not only the class that saved it."""
        if self.is_remote_code():
            # Imported here: registration imports the model classes. Being a relative import of this
            # file, it also makes `save_pretrained` copy every module that `auto_map` names.
            from .registration import remote_code_auto_map

            self.config.auto_map = remote_code_auto_map()
        super().save_pretrained(save_directory, *args, **kwargs)

    def get_correct_attn_implementation(self, requested_attention: str | None, is_init_check: bool = False) -> str:
        """`PreTrainedModel`'s check, plus `"varlen"`: a backend of our packed kernels only
        (`attention_backends.py`), so it is not registered in transformers' `AttentionInterface`."""
        if requested_attention == "varlen":
            return requested_attention
        return super().get_correct_attn_implementation(requested_attention, is_init_check)

    def _init_weights(self, module: nn.Module) -> None:
        config = self.config
        std = getattr(config, "initializer_range", None)
        if std is None:  # SlapConfig: use the audio tower's range
            std = config.audio_config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.RMSNorm, nn.LayerNorm)):
            if module.weight is not None:
                nn.init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, SlapAttentionPooling):
            nn.init.trunc_normal_(module.query, std=std, a=-2 * std, b=2 * std)
            # The pooled vector leaves the tower with no norm after it: key, value and output
            # projections at a unit-gain std (hidden_size^-0.5) keep it near the scale of the normed
            # token states. At `initializer_range` (0.02) the value and output gains multiply: for
            # `tiny` on built-in clips (token states of RMS 1) it started at RMS 0.05, not 0.54, and
            # training crawled: the tower could not fit 16 clips' event labels in 60 steps
            # (eval/ABLATION.md, "The demo's budget").
            gain_std = (module.head_dim * module.num_heads) ** -0.5
            for projection in (module.k_proj, module.v_proj, module.o_proj):
                nn.init.trunc_normal_(projection.weight, std=gain_std, a=-2 * gain_std, b=2 * gain_std)
        if isinstance(getattr(module, "ssl_center", None), torch.Tensor):  # the teacher-output centre
            nn.init.zeros_(module.ssl_center)
        if isinstance(getattr(module, "mask_token", None), nn.Parameter):
            nn.init.trunc_normal_(module.mask_token, std=std, a=-2 * std, b=2 * std)
        if isinstance(getattr(module, "logit_scale", None), nn.Parameter):
            nn.init.constant_(module.logit_scale, torch.log(torch.tensor(config.logit_scale_init_value)))


def audio_config_of(config: SlapConfig | SlapAudioConfig) -> SlapAudioConfig:
    """The audio sub-config, whether given the joint config or the audio config itself.

    Duck-typed: remote code may load the config classes from another module copy than this one.
    """
    return config.audio_config if hasattr(config, "audio_config") else config


@dataclass
class SlapAudioModelOutput(ModelOutput):
    """Output of [`SlapAudioModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(total_tokens, hidden_size)`):
            Dense token states of all clips, packed (clip after clip, time-major, no padding).
        pooler_output (`torch.FloatTensor` of shape `(num_clips, hidden_size)`):
            Attention-pooled clip vectors.
        token_lengths (`torch.LongTensor` of shape `(num_clips,)`):
            Tokens per clip, to split `last_hidden_state`.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Packed token states after the embedding and after each block.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    token_lengths: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class SlapEmbeddingOutput(ModelOutput):
    """Output of `get_audio_features` / `get_text_features`.

    Args:
        pooler_output (`torch.FloatTensor` of shape `(batch_size, projection_dim)`):
            The L2-normalised projected embedding.
        last_hidden_state (`torch.FloatTensor`):
            The tower's token states (packed for audio, `(batch, seq, dim)` for text).
        unnormalized_embeds (`torch.FloatTensor` of shape `(batch_size, projection_dim)`):
            The projection before normalisation.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned with `output_hidden_states=True`):
            The tower's token states after the embedding and after each block.
        attentions (`tuple(torch.FloatTensor)`, *optional*, returned with `output_attentions=True`):
            The text tower's attention weights (the packed audio tower returns none).
    """

    pooler_output: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    unnormalized_embeds: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class SlapOutput(ModelOutput):
    """Output of [`SlapModel`].

    Args:
        loss (`torch.FloatTensor`, *optional*, returned with `return_loss=True`):
            Symmetric contrastive (InfoNCE) loss.
        logits_per_audio (`torch.FloatTensor` of shape `(audio_batch_size, text_batch_size)`):
            Scaled cosine similarities, audio against text.
        logits_per_text (`torch.FloatTensor` of shape `(text_batch_size, audio_batch_size)`):
            The transpose.
        audio_embeds (`torch.FloatTensor` of shape `(audio_batch_size, projection_dim)`):
            L2-normalised audio embeddings.
        text_embeds (`torch.FloatTensor` of shape `(text_batch_size, projection_dim)`):
            L2-normalised text embeddings.
        audio_model_output ([`SlapAudioModelOutput`]): the audio tower's output.
        text_model_output (`BaseModelOutputWithPooling`): the text tower's output.
    """

    loss: torch.FloatTensor | None = None
    logits_per_audio: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    audio_model_output: SlapAudioModelOutput | None = None
    text_model_output: ModelOutput | None = None

    def to_tuple(self) -> tuple:
        return tuple(
            self[k].to_tuple() if k.endswith("model_output") else self[k] for k in self.keys()
        )
