"""SLAP's objectives, each a small function of model outputs (open_clip style).

Contrastive losses gather features across processes with gradient (`gather_with_grad`): each rank
scores its local rows against the gathered set, labels offset by rank, and scales its loss so that
DDP's gradient average equals the gradient of one process holding the concatenated batch.

No host sync of the accelerator: local batch sizes may differ across ranks (token-budget batches),
so each gather first exchanges the row counts — Python ints from the tensors' shapes, sent as CPU
tensors on a gloo group (`host_group`), which never waits for the device — then gathers the
audio and text rows of all ranks in one collective (`all_gather_single`, which carries gradients).
That is one tiny host-side exchange and one device collective per contrastive loss.
Masked-token losses take `valid (rows,)`: rows gathered at a static count (see
`SlapForPreTraining.masked_positions`) of which only the valid ones count.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed._functional_collectives import all_gather_single

_host_groups: dict[str, tuple[object, object]] = {}  # "gloo": (default group it was made for, gloo group)


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def host_group() -> dist.ProcessGroup:
    """A process group for host-side values (CPU tensors): the default group when its backend
    handles CPU tensors (gloo, or e.g. "cpu:gloo,cuda:nccl"), else a gloo group over all ranks,
    created at the first call — a collective: every rank makes its first call at the same point."""
    world_group = dist.group.WORLD
    if "gloo" in dist.get_backend():
        return world_group
    made_for, group = _host_groups.get("gloo", (None, None))
    if made_for is not world_group:  # first call, or a new default group since
        group = dist.new_group(backend="gloo")
        _host_groups["gloo"] = (world_group, group)
    return group


def all_gather_ints(values: list[int]) -> list[list[int]]:
    """Every rank's `values` (Python ints, as many on every rank), in rank order; `[values]` in one
    process. Exchanged as CPU tensors on `host_group`: the accelerator is not synchronised. The one
    place where the training step reads tensors on the host, and those were made from ints there."""
    world, _ = _world()
    if world == 1:
        return [list(values)]
    local = torch.tensor(values, dtype=torch.int64)
    gathered = [torch.zeros_like(local) for _ in range(world)]
    dist.all_gather(gathered, local, group=host_group())
    return torch.stack(gathered).tolist()


def gather_with_grad(*local: torch.Tensor) -> tuple[list[torch.Tensor], int]:
    """All ranks' rows of each tensor `(rows, dim_i)` (the same rows in every tensor), concatenated
    in rank order, in one collective; gradients flow back to the rows' owners.

    Returns `([gathered (total_rows, dim_i) for each tensor], offset of this rank's rows)`.
    """
    world, rank = _world()
    if world == 1:
        return list(local), 0
    rows = local[0].shape[0]
    sizes = [size for (size,) in all_gather_ints([rows])]
    longest = max(sizes)
    packed = F.pad(torch.cat(local, dim=1), (0, 0, 0, longest - rows))  # (longest, sum of dims)
    gathered = all_gather_single(packed.contiguous(), 0, dist.group.WORLD)  # (world · longest, sum of dims)
    if any(size != longest for size in sizes):  # drop the padding rows (host ints: no sync)
        gathered = torch.cat([gathered[r * longest : r * longest + size] for r, size in enumerate(sizes)])
    return list(gathered.split([t.shape[1] for t in local], dim=1)), sum(sizes[:rank])


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
    (all_audio, all_text), offset = gather_with_grad(audio_embeds, text_embeds)
    total = all_audio.shape[0]
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
    (all_text,), offset = gather_with_grad(text_embeds)
    total = all_text.shape[0]
    logits = logit_scale * audio_embeds @ all_text.t() + logit_bias  # (local, total)
    signs = -torch.ones_like(logits)
    rows = torch.arange(audio_embeds.shape[0], device=logits.device)
    signs[rows, rows + offset] = 1.0
    return -F.logsigmoid(signs * logits).sum() * world / total


def _valid_mean(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean of `values (rows,)` over the rows where `valid (rows,)` is set (all rows if None)."""
    if valid is None:
        return values.mean()
    weights = valid.to(values.dtype)
    return (values * weights).sum() / weights.sum()


def self_distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    center: torch.Tensor,
    student_temperature: float,
    teacher_temperature: float,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """iBOT's masked-token loss: cross-entropy between the teacher's centred, sharpened distribution
    and the student's, averaged over the masked tokens `(rows, prototypes)` (the `valid` rows)."""
    targets = F.softmax((teacher_logits - center) / teacher_temperature, dim=-1)
    per_token = -(targets * F.log_softmax(student_logits / student_temperature, dim=-1)).sum(-1)
    return _valid_mean(per_token, valid)


def reconstruction_loss(
    predicted: torch.Tensor, patches: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """FLAP/MAE masked-patch reconstruction: MSE against per-patch normalised targets `(rows, 256)`,
    averaged over the valid rows."""
    mean, var = patches.mean(-1, keepdim=True), patches.var(-1, keepdim=True)
    per_token = (predicted - (patches - mean) / (var + 1e-6).sqrt()).square().mean(-1)
    return _valid_mean(per_token, valid)


def byol_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL's negative-free regression: 2 − 2·cos(prediction, stop-gradient target), row mean."""
    return (2 - 2 * F.cosine_similarity(prediction, target.detach(), dim=-1)).mean()


def captioning_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy; `labels` are the caption ids with -100 where ignored."""
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
    )
