"""The SLAP audio encoder: packed log-mel patches → dense token states and a pooled clip vector.

Clips of any duration run as one pack `(total_tokens, dim)` through linear layers with no
padding; attention alternates [local, local, global] (`SlapAudioConfig.is_global_layer`) and
never crosses clip boundaries (see `packed_attention.py`; the kernels per `attn_implementation`
are in `attention_backends.py`).

Given `audio_length_groups` and/or `max_audio_length` (the feature extractor and the training
collator return both with `return_max_audio_length=True`: host ints), the forward reads no tensor
value on the host: the pack layout is derived on the device from `audio_lengths`, input validation
that needs host values is skipped, and `torch.compile(model, fullgraph=True, dynamic=True)` serves
packs of any layout with one graph. The groups also let global attention pad each clip only to
the longest of its length group, as the host-read default does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .attention_backends import packed_attention, prepare_backend
from .configuration_slap import SlapAudioConfig, SlapConfig
from .modeling_base import SlapAudioModelOutput, SlapPreTrainedModel, audio_config_of
from .packed_attention import (
    PackedLayout,
    Rotary2D,
    SlapAttentionPooling,
    build_layout,
    clip_positions,
)


class SlapMLP(nn.Module):
    """SwiGLU feed-forward, no biases."""

    def __init__(self, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.down_proj(nn.functional.silu(self.gate_proj(hidden)) * self.up_proj(hidden))


class SlapAudioAttention(nn.Module):
    """Multi-head self-attention over a pack, local or global by the layer's index."""

    def __init__(self, config: SlapAudioConfig, layer_idx: int):
        super().__init__()
        self.config = config  # read at each call: `set_attn_implementation` may change the kernel
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.is_global = config.is_global_layer(layer_idx)
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(self, hidden: torch.Tensor, rotary: Rotary2D, layout: PackedLayout) -> torch.Tensor:
        shape = (hidden.shape[0], self.num_heads, self.head_dim)
        query = rotary.apply(self.q_proj(hidden).view(shape))
        key = rotary.apply(self.k_proj(hidden).view(shape))
        value = self.v_proj(hidden).view(shape)
        attended = packed_attention(query, key, value, layout, self.config._attn_implementation, self.is_global)
        return self.o_proj(attended.reshape(hidden.shape))


class SlapAudioLayer(GradientCheckpointingLayer):
    """Pre-norm block: RMSNorm → attention → residual, RMSNorm → SwiGLU → residual."""

    def __init__(self, config: SlapAudioConfig, layer_idx: int):
        super().__init__()
        self.attn_norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.self_attn = SlapAudioAttention(config, layer_idx)
        self.mlp_norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mlp = SlapMLP(config.hidden_size, config.intermediate_size)

    def forward(self, hidden: torch.Tensor, rotary: Rotary2D, layout: PackedLayout) -> torch.Tensor:
        hidden = hidden + self.self_attn(self.attn_norm(hidden), rotary, layout)
        return hidden + self.mlp(self.mlp_norm(hidden))


class SlapAudioModel(SlapPreTrainedModel):
    """The packed variable-duration audio encoder.

    Takes packed log-mel frames `input_features (total_frames, num_mel_bins)` with
    `audio_lengths (num_clips,)` (frames per clip, multiples of `patch_frames`), or padded frames
    `(num_clips, frames, num_mel_bins)` with `audio_attention_mask (num_clips, frames)`.
    `use_mask_token=True` adds the learned mask token of masked self-distillation;
    `add_pooling_layer=False` leaves out the attention pooling (captioning reads the dense tokens
    only), and `pooler_output` is then None.
    """

    config_class = SlapAudioConfig
    main_input_name = "input_features"
    input_modalities = ("audio",)
    base_model_prefix = "audio_model"

    def __init__(
        self, config: SlapAudioConfig | SlapConfig, use_mask_token: bool = False, add_pooling_layer: bool = True
    ):
        config = audio_config_of(config)
        super().__init__(config)
        patch_dim = config.patch_frames * config.patch_bins
        self.patch_embed = nn.Linear(patch_dim, config.hidden_size, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(config.hidden_size)) if use_mask_token else None
        self.layers = nn.ModuleList(SlapAudioLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.pooling = SlapAttentionPooling(config.hidden_size, config.pooling_heads) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        """The patch embedding (a `Linear` over 16×16 log-mel patches: audio has no vocabulary)."""
        return self.patch_embed

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.patch_embed = value

    def patchify(
        self,
        input_features: torch.Tensor,
        audio_lengths: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        validate: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Frames → patches, packed: `(patches (total_tokens, 256), time_ids, freq_ids, token_lengths)`.

        `validate=False` skips the checks of `audio_lengths` that read them on the host.
        """
        frames, audio_lengths = unpad_frames(input_features, audio_lengths, audio_attention_mask, validate)
        cfg = self.config
        if frames.shape[-1] != cfg.num_mel_bins:
            raise ValueError(f"input_features have {frames.shape[-1]} mel bins, the model expects {cfg.num_mel_bins}")
        if validate and ((audio_lengths % cfg.patch_frames).any() or (audio_lengths <= 0).any()):
            raise ValueError(
                f"audio_lengths must be positive multiples of patch_frames={cfg.patch_frames} "
                f"(the feature extractor rounds clips up), got {audio_lengths.tolist()}"
            )
        fp = cfg.freq_patches
        columns = frames.shape[0] // cfg.patch_frames
        patches = frames.reshape(columns, cfg.patch_frames, fp, cfg.patch_bins).transpose(1, 2)
        patches = patches.reshape(columns * fp, cfg.patch_frames * cfg.patch_bins)  # (total_tokens, 256)
        clip_columns = audio_lengths // cfg.patch_frames
        _, time_ids = clip_positions(clip_columns, columns)  # each column's index within its clip
        time_ids = time_ids.repeat_interleave(fp)
        freq_ids = torch.arange(fp, device=frames.device).repeat(columns)
        return patches, time_ids, freq_ids, clip_columns * fp

    def layout_bounds(
        self, max_audio_length: int | None = None, audio_length_groups: Sequence[tuple[int, int]] | None = None
    ) -> dict[str, Any] | None:
        """The feature extractor's frame bounds as `encode`'s token bounds: `max_seqlen` (bounds every
        clip) and `clip_groups` (None unless `audio_length_groups` is given); None when neither is
        given (the layout then reads the lengths on the host)."""
        if max_audio_length is None and audio_length_groups is None:
            return None
        cfg = self.config

        def tokens(frames: int) -> int:
            return -(-frames // cfg.patch_frames) * cfg.freq_patches

        clip_groups = None if audio_length_groups is None else tuple((n, tokens(w)) for n, w in audio_length_groups)
        max_seqlen = clip_groups[0][1] if max_audio_length is None else tokens(max_audio_length)
        return {"max_seqlen": max_seqlen, "clip_groups": clip_groups}

    def encode(
        self,
        embeddings: torch.Tensor,
        time_ids: torch.Tensor,
        freq_ids: torch.Tensor,
        token_lengths: torch.Tensor,
        output_hidden_states: bool = False,
        max_seqlen: int | None = None,
        clip_groups: Sequence[tuple[int, int]] | None = None,
    ) -> SlapAudioModelOutput:
        """Run the blocks and the pooling over packed token embeddings `(total_tokens, dim)`.

        Tokens need not be every patch (FLAP-style dropping passes the visible ones): positions
        come from `time_ids`/`freq_ids`, clip boundaries from `token_lengths`. `clip_groups`
        (`(clips, max tokens)` per length group, see `packed_attention.length_groups`) or
        `max_seqlen` (any upper bound on `token_lengths`), e.g. of the unmasked clips, spare the
        one host read of the layout (`layout_bounds` converts the feature extractor's frames).
        """
        cfg = self.config
        needs_local = any(not layer.self_attn.is_global for layer in self.layers)
        flex = cfg._attn_implementation == "flex_attention"  # its block mask replaces the local blocks
        layout = build_layout(
            token_lengths, time_ids, freq_ids, cfg.local_window, cfg.freq_patches, needs_local and not flex,
            max_seqlen, clip_groups,
        )
        prepare_backend(layout, cfg._attn_implementation, cfg.local_window, needs_local)
        rotary = Rotary2D(time_ids, freq_ids, cfg.hidden_size // cfg.num_attention_heads, cfg.rope_theta)
        hidden = embeddings
        all_hidden = (hidden,) if output_hidden_states else None
        for layer in self.layers:
            hidden = layer(hidden, rotary, layout)  # checkpointed when enabled (GradientCheckpointingLayer)
            if output_hidden_states:
                all_hidden += (hidden,)
        hidden = self.norm(hidden)
        pooled = None if self.pooling is None else self.pooling(hidden, layout)
        return SlapAudioModelOutput(
            last_hidden_state=hidden, pooler_output=pooled, token_lengths=token_lengths,
            hidden_states=all_hidden,
        )

    def forward(
        self,
        input_features: torch.Tensor,
        audio_lengths: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        max_audio_length: int | None = None,
        audio_length_groups: Sequence[tuple[int, int]] | None = None,
        **kwargs,
    ) -> SlapAudioModelOutput | tuple:
        """Encode clips. `bool_masked_pos (total_tokens,)` replaces those patches by the mask token.

        `max_audio_length` (an int >= the longest clip's frame count) or `audio_length_groups`
        (`(clips, max frames)` per length group), from the feature extractor, make the forward free
        of host reads; `audio_lengths` are then trusted, not validated.
        """
        bounds = self.layout_bounds(max_audio_length, audio_length_groups)
        patches, time_ids, freq_ids, token_lengths = self.patchify(
            input_features, audio_lengths, audio_attention_mask, validate=bounds is None
        )
        embeddings = self.patch_embed(patches.to(self.patch_embed.weight.dtype))
        if bool_masked_pos is not None:
            if self.mask_token is None:
                raise ValueError("bool_masked_pos needs a model built with use_mask_token=True")
            embeddings = torch.where(bool_masked_pos[:, None], self.mask_token.to(embeddings.dtype), embeddings)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        output = self.encode(embeddings, time_ids, freq_ids, token_lengths, bool(output_hidden_states), **(bounds or {}))
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()


def unpad_frames(
    input_features: torch.Tensor,
    audio_lengths: torch.Tensor | None,
    audio_attention_mask: torch.Tensor | None,
    validate: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring packed or padded features to the packed form `(total_frames, bins)` + `audio_lengths`
    (`validate=False`: trust packed `audio_lengths` to sum to the frame count, no host read)."""
    if input_features.dim() == 3:
        if audio_attention_mask is None:
            if audio_lengths is None:
                raise ValueError("padded input_features (batch, frames, bins) need audio_attention_mask")
            frames = torch.arange(input_features.shape[1], device=input_features.device)
            audio_attention_mask = frames[None, :] < audio_lengths[:, None]
        mask = audio_attention_mask.bool()
        lengths = mask.sum(1)
        prefix = torch.arange(mask.shape[1], device=mask.device)[None, :] < lengths[:, None]
        if not torch.equal(prefix, mask):
            raise ValueError("audio_attention_mask must mark each clip's frames as one left-aligned run")
        return input_features[mask], lengths
    if input_features.dim() != 2:
        raise ValueError(
            f"input_features must be packed (total_frames, bins) or padded (batch, frames, bins), "
            f"got shape {tuple(input_features.shape)}"
        )
    if audio_lengths is None:
        raise ValueError("packed input_features (total_frames, bins) need audio_lengths (num_clips,)")
    audio_lengths = torch.as_tensor(audio_lengths, device=input_features.device).long()
    if validate and int(audio_lengths.sum()) != input_features.shape[0]:
        raise ValueError(
            f"audio_lengths sum to {int(audio_lengths.sum())} frames but input_features have "
            f"{input_features.shape[0]}"
        )
    return input_features, audio_lengths
