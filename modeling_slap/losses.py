"""SLAP's objectives, each a small function of model outputs (open_clip style).

Contrastive losses gather features across processes with gradient (`gather_with_grad`): each rank
scores its local rows against the gathered set, labels offset by rank, and scales its loss so that
DDP's gradient average equals the gradient of one process holding the concatenated batch.
Local batch sizes may differ across ranks (token-budget batches).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def gather_with_grad(local: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """All ranks' rows concatenated (gradients flow back to their owners).

    Returns `(gathered (total_rows, dim), offset of this rank's rows, total_rows)`.
    """
    world, rank = _world()
    if world == 1:
        return local, 0, local.shape[0]
    sizes = torch.tensor([local.shape[0]], device=local.device)
    all_sizes = [torch.zeros_like(sizes) for _ in range(world)]
    dist.all_gather(all_sizes, sizes)
    all_sizes = [int(s) for s in all_sizes]
    padded = F.pad(local, (0, 0, 0, max(all_sizes) - local.shape[0]))
    from torch.distributed.nn.functional import all_gather  # differentiable all-gather

    pieces = all_gather(padded)
    gathered = torch.cat([piece[:size] for piece, size in zip(pieces, all_sizes, strict=True)])
    return gathered, sum(all_sizes[:rank]), sum(all_sizes)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean over processes (no gradient); identity in one process."""
    world, _ = _world()
    if world == 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / world


def contrastive_loss(
    audio_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE over L2-normalised pairs `(rows, dim)`, matching pairs share a row index.

    Across processes the value on each rank is `world × (its rows' loss sum) / total_rows`.
    """
    world, _ = _world()
    all_audio, offset, total = gather_with_grad(audio_embeds)
    all_text, _, _ = gather_with_grad(text_embeds)
    labels = torch.arange(audio_embeds.shape[0], device=audio_embeds.device) + offset
    audio_to_text = logit_scale * audio_embeds @ all_text.t()  # (local, total)
    text_to_audio = logit_scale * text_embeds @ all_audio.t()
    summed = F.cross_entropy(audio_to_text, labels, reduction="sum") + F.cross_entropy(
        text_to_audio, labels, reduction="sum"
    )
    return summed * world / (2 * total)


def sigmoid_contrastive_loss(
    audio_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor, logit_bias: torch.Tensor
) -> torch.Tensor:
    """SigLIP's pairwise sigmoid loss: every (audio, text) pair is a binary match / no-match.

    Normalised like the paper: summed over all pairs of a row, averaged over rows.
    """
    world, _ = _world()
    all_text, offset, total = gather_with_grad(text_embeds)
    logits = logit_scale * audio_embeds @ all_text.t() + logit_bias  # (local, total)
    signs = -torch.ones_like(logits)
    rows = torch.arange(audio_embeds.shape[0], device=logits.device)
    signs[rows, rows + offset] = 1.0
    return -F.logsigmoid(signs * logits).sum() * world / total


def self_distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    center: torch.Tensor,
    student_temperature: float,
    teacher_temperature: float,
) -> torch.Tensor:
    """iBOT's masked-token loss: cross-entropy between the teacher's centred, sharpened distribution
    and the student's, averaged over the masked tokens `(masked_tokens, prototypes)`."""
    targets = F.softmax((teacher_logits - center) / teacher_temperature, dim=-1)
    return -(targets * F.log_softmax(student_logits / student_temperature, dim=-1)).sum(-1).mean()


def reconstruction_loss(predicted: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
    """FLAP/MAE masked-patch reconstruction: MSE against per-patch normalised targets `(masked, 256)`."""
    mean, var = patches.mean(-1, keepdim=True), patches.var(-1, keepdim=True)
    return F.mse_loss(predicted, (patches - mean) / (var + 1e-6).sqrt())


def byol_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL's negative-free regression: 2 − 2·cos(prediction, stop-gradient target), row mean."""
    return (2 - 2 * F.cosine_similarity(prediction, target.detach(), dim=-1)).mean()


def captioning_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy; `labels` are the caption ids with -100 where ignored."""
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
    )
