"""`SlapForPreTraining`: SLAP's single-stage multi-objective pretraining model.

One student pass over masked audio and one no-grad pass of the EMA teacher over the full audio:
- contrastive (InfoNCE or sigmoid) between the student's pooled audio and the text tower,
- masked self-distillation (iBOT-like): student vs. centred, sharpened teacher prototypes at the
  masked positions,
- captioning from the student's dense tokens,
- optionally FLAP's masked-patch reconstruction and Siamese SLAP's BYOL (cross- and intra-modal terms).
With `unmasked_student_pass=True` a second student pass over the full audio feeds the contrastive,
captioning and BYOL losses (the masked pass then serves the masked objectives only); in small
budgets the contrast learns several times faster per step that way (eval/ABLATION.md). Audio is
masked only when an objective needs it (self-distillation, reconstruction, `mask_mode="drop"`).
`forward` returns the weighted total and every component. The teacher is updated by
`update_teacher(momentum)` after each optimizer step (the trainer's callback does it).

No host sync in the masking and the losses: masks are drawn with sizes taken from shapes, and the
masked tokens are gathered at a row count bounded on the host (`max_masked`, `masked_index`).
Given the collator's `max_audio_length` / `audio_length_groups`, the audio passes have none either.
Only `mask_mode="drop"` reads the mask on the host: it shortens the pack by a data-dependent count
(the visible tokens), which sizes every tensor of the student's pass.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from .configuration_slap import SlapConfig
from .losses import (
    all_reduce_mean,
    byol_loss,
    captioning_loss,
    contrastive_loss,
    reconstruction_loss,
    self_distillation_loss,
    sigmoid_contrastive_loss,
)
from .modeling_audio import SlapAudioLayer, SlapAudioModel
from .modeling_base import SlapPreTrainedModel
from .modeling_decoder import SlapCaptionDecoder, pad_packed
from .modeling_slap import SlapModel, SlapTowersMixin
from .modeling_text import SlapTextModel
from .packed_attention import Rotary2D, build_layout


@dataclass
class SlapForPreTrainingOutput(ModelOutput):
    """Output of [`SlapForPreTraining`]: the weighted total `loss` and each `*_loss` component
    (None when its weight is 0), plus the student's normalised embeddings."""

    loss: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None
    self_supervised_loss: torch.FloatTensor | None = None
    captioning_loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    byol_loss: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    logit_scale: torch.FloatTensor | None = None


class SlapPrototypeHead(nn.Module):
    """iBOT/DINO head: MLP → L2-normalised bottleneck → weight-normalised prototype logits."""

    def __init__(self, hidden_size: int, head_hidden: int, bottleneck: int, num_prototypes: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(hidden_size, head_hidden), nn.GELU(),
            nn.Linear(head_hidden, head_hidden), nn.GELU(),
            nn.Linear(head_hidden, bottleneck),
        )
        self.prototypes = nn.Linear(bottleneck, num_prototypes, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.mlp(tokens), dim=-1)
        return x @ F.normalize(self.prototypes.weight, dim=-1).t()


def _predictor(dim: int) -> nn.Sequential:
    """BYOL predictor MLP."""
    return nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))


def _frozen_copy(module: nn.Module) -> nn.Module:
    teacher = copy.deepcopy(module)
    teacher.requires_grad_(False)
    return teacher


class SlapForPreTraining(SlapTowersMixin, SlapPreTrainedModel):
    """Student towers and heads (trained) + EMA teacher (never receives gradients).

    Parameter names of the towers equal `SlapModel`'s, so `to_model(SlapModel)` (or
    `SlapModel.from_pretrained` on a pretraining checkpoint) keeps the trained towers.
    """

    _tied_weights_keys = {"caption_decoder.lm_head.weight": "caption_decoder.embed_tokens.weight"}

    def __init__(self, config: SlapConfig):
        super().__init__(config)
        audio_dim, proj = config.audio_config.hidden_size, config.projection_dim
        self.audio_model = SlapAudioModel(config.audio_config, use_mask_token=True)
        self.text_model = SlapTextModel(config)
        self.audio_projection = nn.Linear(audio_dim, proj, bias=False)
        self.text_projection = nn.Linear(config.text_config.hidden_size, proj, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(0.0))
        if config.contrastive_type == "sigmoid":
            self.logit_bias = nn.Parameter(torch.tensor(-10.0))  # SigLIP's init
        if config.captioning_weight:
            self.caption_decoder = SlapCaptionDecoder(config.decoder_config, audio_dim)
        else:
            self._tied_weights_keys = {}  # no decoder, nothing tied
        if config.mask_mode == "drop":  # one global block that sees mask tokens at dropped places
            self.mask_predictor = SlapAudioLayer(config.audio_config, config.audio_config.global_every - 1)
        if config.self_supervised_weight:
            self.ssl_head = SlapPrototypeHead(
                audio_dim, config.ssl_head_hidden_size, config.ssl_bottleneck_size, config.num_prototypes
            )
            self.register_buffer("ssl_center", torch.zeros(config.num_prototypes))
        if config.reconstruction_weight:
            patch_dim = config.audio_config.patch_frames * config.audio_config.patch_bins
            self.reconstruction_head = nn.Linear(audio_dim, patch_dim)
        if config.byol_weight:
            self.audio_predictor, self.text_predictor = _predictor(proj), _predictor(proj)
        self.post_init()
        self._build_teacher()

    def _build_teacher(self) -> None:
        """EMA copies of what the teacher needs; created from the student's current weights."""
        config = self.config
        needs_audio = config.self_supervised_weight or config.byol_weight
        if needs_audio:
            self.teacher_audio_model = _frozen_copy(SlapAudioModel(config.audio_config))
        if config.self_supervised_weight:
            self.teacher_ssl_head = _frozen_copy(self.ssl_head)
        if config.byol_weight:
            self.teacher_text_model = _frozen_copy(self.text_model)
            self.teacher_audio_projection = _frozen_copy(self.audio_projection)
            self.teacher_text_projection = _frozen_copy(self.text_projection)
        self.init_teacher_from_student()

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, keeping the teacher frozen (loading makes new parameters)."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        for teacher, _ in model.teacher_pairs():
            teacher.requires_grad_(False)
        return loaded

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True
    ) -> nn.Embedding:
        """Resize the text tower's and the caption decoder's vocabularies together: one tokenizer feeds both."""
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        if hasattr(self, "caption_decoder"):
            decoder, size = self.caption_decoder, embeddings.num_embeddings
            decoder.embed_tokens = self._get_resized_embeddings(decoder.embed_tokens, size, mean_resizing=mean_resizing)
            decoder.lm_head = self._get_resized_lm_head(decoder.lm_head, size, mean_resizing=mean_resizing)
            self.config.decoder_config.vocab_size = size
            self.tie_weights()
        return embeddings

    def teacher_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(teacher, student) module pairs kept in EMA."""
        names = [
            ("teacher_audio_model", "audio_model"), ("teacher_ssl_head", "ssl_head"),
            ("teacher_text_model", "text_model"), ("teacher_audio_projection", "audio_projection"),
            ("teacher_text_projection", "text_projection"),
        ]
        return [(getattr(self, t), getattr(self, s)) for t, s in names if hasattr(self, t)]

    def _teacher_params(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        teacher_params, student_params = [], []
        for teacher, student in self.teacher_pairs():
            student_named = dict(student.named_parameters())
            for name, param in teacher.named_parameters():
                teacher_params.append(param)
                student_params.append(student_named[name])
        return teacher_params, student_params

    @torch.no_grad()
    def init_teacher_from_student(self) -> None:
        """Teacher := student (call when starting pretraining from fresh or converted weights)."""
        for teacher_param, student_param in zip(*self._teacher_params(), strict=True):
            teacher_param.copy_(student_param)

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """EMA step: teacher ← momentum · teacher + (1 − momentum) · student."""
        teacher_params, student_params = self._teacher_params()
        if teacher_params:
            torch._foreach_lerp_(teacher_params, [p.detach() for p in student_params], 1.0 - momentum)

    def teacher_momentum_at(self, step: int, total_steps: int) -> float:
        """Cosine schedule from `config.teacher_momentum` at step 0 to 1.0 at `total_steps`."""
        start = self.config.teacher_momentum
        progress = min(max(step / max(total_steps, 1), 0.0), 1.0)
        return 1.0 - (1.0 - start) * (math.cos(math.pi * progress) + 1) / 2

    def uses_masking(self) -> bool:
        """Whether the student's audio is masked: for the masked objectives, or FLAP's dropping."""
        config = self.config
        return bool(config.mask_mode == "drop" or config.self_supervised_weight or config.reconstruction_weight)

    def unused_parameter_names(self) -> list[str]:
        """Trainable parameters that no objective of this config reaches (they get no gradient):
        the contrastive towers without a cross-modal objective, the temperature without contrast,
        FLAP's mask predictor when nothing reads the masked pass's dense tokens. Empty for the
        default recipe, so DDP can run without `find_unused_parameters` (`SlapTrainer` decides so)."""
        config = self.config
        prefixes = []
        if not config.contrastive_weight:
            prefixes += ["logit_scale", "logit_bias"]
            if not config.byol_weight:
                prefixes += ["text_model.", "audio_projection.", "text_projection.", "audio_model.pooling."]
        separate_view = config.unmasked_student_pass and self.uses_masking() and config.mask_ratio > 0
        reads_dense = config.self_supervised_weight or config.reconstruction_weight or (
            config.captioning_weight and not separate_view
        )
        if config.mask_mode == "drop" and not reads_dense:
            prefixes += ["mask_predictor.", "audio_model.mask_token"]
        return [name for name, param in self.named_parameters() if param.requires_grad and name.startswith(tuple(prefixes))]

    def choose_masked(self, time_ids: torch.Tensor, token_lengths: torch.Tensor) -> torch.Tensor:
        """Masked positions `(total_tokens,)` bool: exactly `round(ratio · n)` tokens per clip (at most
        n − 1), drawn from torch's RNG. `mask_type="random"`: random patches; `"time_block"`: blocks
        of `mask_block_columns` time columns in random order, filled column by column (only the
        last block taken may be partial, and only its last column split across frequencies).
        Sizes come from shapes only: no host sync."""
        config = self.config
        device = time_ids.device
        num_clips, total = token_lengths.shape[0], time_ids.shape[0]
        clip_ids = torch.repeat_interleave(torch.arange(num_clips, device=device), token_lengths, output_size=total)
        starts = torch.cumsum(token_lengths, 0) - token_lengths
        keys = [torch.rand(total, device=device)]  # least significant first
        if config.mask_type == "time_block":
            offsets = torch.randint(0, config.mask_block_columns, (num_clips,), device=device)
            block = (time_ids + offsets[clip_ids]) // config.mask_block_columns
            # one random key per (clip, block): a clip has no more blocks than tokens, so
            # `start + block` picks a draw of its own from `total` draws
            keys += [time_ids, torch.rand(total, device=device)[starts[clip_ids] + block]]
        order = torch.arange(total, device=device)
        for key in [*keys, clip_ids]:  # lexicographic: by clip, then block, then column, then at random
            order = order[torch.sort(key[order], stable=True).indices]
        rank = torch.empty_like(order)
        rank[order] = torch.arange(total, device=device)
        rank = rank - starts[clip_ids]
        budget = torch.minimum((token_lengths * config.mask_ratio).round().long(), token_lengths - 1)
        return rank < budget[clip_ids]

    def max_masked(self, total_tokens: int, num_clips: int) -> int:
        """An upper bound, known on the host, of the tokens `choose_masked` masks in a pack: at most
        `ratio · n + ½` per clip of n tokens (+1 for float rounding)."""
        return min(total_tokens, int(self.config.mask_ratio * total_tokens + 0.5 * num_clips) + 1)

    def _student_tokens(
        self, embeddings: torch.Tensor, time_ids: torch.Tensor, freq_ids: torch.Tensor,
        token_lengths: torch.Tensor, masked: torch.Tensor, bounds: dict[str, Any],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Student pass over patch embeddings on the masked view → (dense tokens for every
        position, pooled (clips, dim)). `bounds`: `encode`'s layout bounds of the whole clips (they
        bound the visible tokens of FLAP's dropping too)."""
        audio = self.audio_model
        if self.config.mask_mode == "replace":
            embeddings = torch.where(masked[:, None], audio.mask_token.to(embeddings.dtype), embeddings)
            out = audio.encode(embeddings, time_ids, freq_ids, token_lengths, **bounds)
            return out.last_hidden_state, out.pooler_output
        visible = ~masked
        clip_ids = torch.repeat_interleave(torch.arange(len(token_lengths), device=embeddings.device), token_lengths)
        visible_lengths = torch.bincount(clip_ids[visible], minlength=len(token_lengths))
        out = audio.encode(embeddings[visible], time_ids[visible], freq_ids[visible], visible_lengths, **bounds)
        full = audio.mask_token.to(out.last_hidden_state.dtype).expand(len(masked), -1).clone()
        full[visible] = out.last_hidden_state
        cfg = audio.config
        layout = build_layout(
            token_lengths, time_ids, freq_ids, cfg.local_window, cfg.freq_patches, needs_local=False, **bounds
        )
        rotary = Rotary2D(time_ids, freq_ids, cfg.hidden_size // cfg.num_attention_heads, cfg.rope_theta)
        return self.mask_predictor(full, rotary, layout), out.pooler_output

    def forward(
        self,
        input_features: torch.Tensor,
        input_ids: torch.Tensor,
        audio_lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        caption_labels: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        return_dict: bool | None = None,
        max_audio_length: int | None = None,
        audio_length_groups: Sequence[tuple[int, int]] | None = None,
        **kwargs,
    ) -> SlapForPreTrainingOutput | tuple:
        """The weighted total loss and each component. `bool_masked_pos (total_tokens,)` fixes the
        student's masked patches (e.g. for a reproducible evaluation); by default `choose_masked` draws
        them from torch's RNG when an objective needs masking. `max_audio_length` /
        `audio_length_groups` (host ints from the feature extractor or `SlapCollator`) spare every
        audio pass its host reads (see `SlapAudioModel.forward`)."""
        config = self.config
        bounds = self.audio_model.layout_bounds(max_audio_length, audio_length_groups)
        patches, time_ids, freq_ids, token_lengths = self.audio_model.patchify(
            input_features, audio_lengths, audio_attention_mask, validate=bounds is None
        )
        bounds = bounds or {}
        patches = patches.to(self.audio_model.patch_embed.weight.dtype)
        masking = self.uses_masking()
        masked_rows = time_ids.shape[0]  # host-side bound of the masked tokens (see `masked_index`)
        if bool_masked_pos is not None:
            masked = bool_masked_pos.bool()
        elif masking:
            masked = self.choose_masked(time_ids, token_lengths)
            masked_rows = self.max_masked(time_ids.shape[0], token_lengths.shape[0])
        else:
            masked = torch.zeros_like(time_ids, dtype=torch.bool)
        embeddings = self.audio_model.patch_embed(patches)
        dense, pooled = self._student_tokens(embeddings, time_ids, freq_ids, token_lengths, masked, bounds)
        view_dense, view_pooled = dense, pooled  # what the contrastive, captioning and BYOL losses see
        if config.unmasked_student_pass and masking and config.mask_ratio > 0:
            unmasked = self.audio_model.encode(embeddings, time_ids, freq_ids, token_lengths, **bounds)
            view_dense, view_pooled = unmasked.last_hidden_state, unmasked.pooler_output

        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        text = self.text_model(input_ids, attention_mask, **extra)
        audio_embeds = F.normalize(self.audio_projection(view_pooled), dim=-1)
        text_embeds = F.normalize(self.text_projection(text.pooler_output), dim=-1)
        scale = self.logit_scale_value()
        terms: dict[str, torch.Tensor] = {}
        if config.contrastive_weight:
            if config.contrastive_type == "sigmoid":
                terms["contrastive_loss"] = sigmoid_contrastive_loss(audio_embeds, text_embeds, scale, self.logit_bias)
            else:
                terms["contrastive_loss"] = contrastive_loss(audio_embeds, text_embeds, scale)

        needs_teacher = config.self_supervised_weight or config.byol_weight
        if needs_teacher:
            with torch.no_grad():
                teacher = self.teacher_audio_model.encode(
                    self.teacher_audio_model.patch_embed(patches), time_ids, freq_ids, token_lengths, **bounds
                )
        if config.self_supervised_weight or config.reconstruction_weight:
            index, valid = masked_index(masked, masked_rows)  # the masked tokens' rows
        if config.self_supervised_weight:
            student_logits = self.ssl_head(dense[index])
            with torch.no_grad():
                teacher_logits = self.teacher_ssl_head(teacher.last_hidden_state[index])
            terms["self_supervised_loss"] = self_distillation_loss(
                student_logits, teacher_logits, self.ssl_center,
                config.student_temperature, config.teacher_temperature, valid,
            )
            if self.training:
                self._update_center(teacher_logits, valid)
        if config.captioning_weight:
            if caption_labels is None:
                raise ValueError("captioning_weight > 0 needs caption_labels (caption ids, -100 at padding)")
            memory, memory_mask = pad_packed(view_dense, token_lengths, bounds.get("max_seqlen"))
            logits = self.caption_decoder(input_ids, memory, memory_mask).logits
            terms["captioning_loss"] = captioning_loss(logits, caption_labels)
        if config.reconstruction_weight:
            terms["reconstruction_loss"] = reconstruction_loss(
                self.reconstruction_head(dense[index]), patches[index], valid
            )
        if config.byol_weight:
            with torch.no_grad():
                target_audio = self.teacher_audio_projection(teacher.pooler_output)
                target_text = self.teacher_text_projection(self.teacher_text_model(input_ids, attention_mask, **extra).pooler_output)
            predicted_audio = self.audio_predictor(self.audio_projection(view_pooled))
            predicted_text = self.text_predictor(self.text_projection(text.pooler_output))
            cross = byol_loss(predicted_audio, target_text) + byol_loss(predicted_text, target_audio)
            intra = byol_loss(predicted_audio, target_audio) + byol_loss(predicted_text, target_text)
            terms["byol_loss"] = (cross + config.byol_intra_weight * intra) / (2 * (1 + config.byol_intra_weight))
        weights = {
            "contrastive_loss": config.contrastive_weight, "self_supervised_loss": config.self_supervised_weight,
            "captioning_loss": config.captioning_weight, "reconstruction_loss": config.reconstruction_weight,
            "byol_loss": config.byol_weight,
        }
        if not terms:
            raise ValueError("every objective weight is 0: nothing to train")
        total = sum(weights[name] * value for name, value in terms.items())
        output = SlapForPreTrainingOutput(
            loss=total, audio_embeds=audio_embeds, text_embeds=text_embeds, logit_scale=scale.detach(), **terms
        )
        return output if (return_dict if return_dict is not None else config.return_dict) else output.to_tuple()

    @torch.no_grad()
    def _update_center(self, teacher_logits: torch.Tensor, valid: torch.Tensor) -> None:
        batch_center = all_reduce_mean_rows(teacher_logits, valid)
        self.ssl_center.mul_(self.config.center_momentum).add_(batch_center, alpha=1 - self.config.center_momentum)

    def to_model(self, model_class: type[SlapPreTrainedModel] = SlapModel) -> SlapPreTrainedModel:
        """The trained parts as a release model (`SlapModel`, `SlapForConditionalGeneration`, …):
        every weight the target needs must come from this model."""
        model = model_class(self.config)
        missing, _ = model.load_state_dict(self.state_dict(), strict=False)
        missing = [k for k in missing if k not in getattr(model, "_tied_weights_keys", {})]
        if missing:
            raise RuntimeError(f"{model_class.__name__} weights missing from the pretraining model: {missing[:5]}")
        return model.eval()


def all_reduce_mean_rows(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of the `valid (rows,)` rows of `values (rows, dim)` over all processes."""
    weights = valid.to(values.dtype)
    stats = torch.cat([weights @ values, weights.sum()[None]])
    stats = all_reduce_mean(stats)  # the mean of sums and counts: their ratio is the global mean
    return stats[:-1] / stats[-1].clamp(min=1)


def masked_index(masked: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The positions of the set entries of `masked (total_tokens,)` at a size fixed on the host:
    `(index (rows,), valid (rows,))`, padded with position 0 (not valid) when fewer are set.
    Unlike `tensor[masked]`, no host sync; `rows` must be at least the number set."""
    index = torch.nonzero_static(masked, size=rows, fill_value=-1).squeeze(1)
    return index.clamp(min=0), index >= 0
