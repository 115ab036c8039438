"""Attention over packed variable-duration audio: the layout of a pack, 2-D rotary embeddings,
the local (banded) and global (whole-clip) SDPA kernels, and attention pooling.

A pack is all clips' tokens concatenated, `(total_tokens, dim)`, with no padding between clips.
`PackedLayout` describes it once per forward (clip boundaries as `cu_seqlens`, each token's clip,
position in its clip, time column and frequency row, the blocks of the local kernel) and every
layer reuses it. Attention never crosses a clip boundary; the tests check every kernel against a
plain per-clip reference.

Neither kernel loops over clips:
- local layers cut the pack into fixed blocks of `(local_window + 1) * freq_patches` tokens; each
  block attends to itself and both neighbours under a band mask (`LocalBlocks`);
- global layers sort the clips by length and pad them in `NUM_LENGTH_GROUPS` groups of similar
  length, `(clips, width, heads, head_dim)` each: one batched call per group with a key-padding
  mask, then one gather of the tokens back (`PaddedClips`).
The groups are `length_groups` of the clip lengths: host ints, cut where padding costs least. Given
them (the feature extractor's `audio_length_groups`), or just a bound `max_seqlen` (one group of all
clips), nothing here reads a tensor's value on the host: a forward queues kernels without waiting on
the device, and compiles as one graph for packs of any layout (the group count is fixed). Without
either, the layout reads the clip lengths once and groups them itself (on the CPU, where the
lengths are on the host anyway, this is the default).

The score kernel of those two is chosen by `config._attn_implementation`: `"sdpa"`
(`torch.nn.functional.scaled_dot_product_attention`, the default) or `"eager"` (the same softmax
written out in plain matmuls). FlexAttention and varlen flash kernels live in `attention_backends.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def eager_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
) -> torch.Tensor:
    """softmax(q kᵀ / √d) v in plain matmuls, with SDPA's signature (boolean `attn_mask`, True = may attend)."""
    scores = query @ key.transpose(-2, -1) * query.shape[-1] ** -0.5  # (..., queries, keys)
    if is_causal:
        attn_mask = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).tril()
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, -torch.inf)
    return scores.softmax(-1).to(value.dtype) @ value


# Dense (batched, padded) score kernels. The packed-only backends ("flex_attention", "varlen") change
# the audio encoder's kernels; dense attention (the caption decoder) runs SDPA under them.
ATTENTION_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "sdpa": F.scaled_dot_product_attention,
    "eager": eager_attention,
    "flex_attention": F.scaled_dot_product_attention,
    "varlen": F.scaled_dot_product_attention,
}


def attention_function(implementation: str | None) -> Callable[..., torch.Tensor]:
    """The dense score kernel for `config._attn_implementation` (None: SDPA)."""
    if implementation is None:
        return F.scaled_dot_product_attention
    if implementation not in ATTENTION_FUNCTIONS:
        raise ValueError(
            f"attn_implementation={implementation!r} is not supported by SLAP; choose one of {sorted(ATTENTION_FUNCTIONS)}"
        )
    return ATTENTION_FUNCTIONS[implementation]


@dataclass
class LocalBlocks:
    """Blocks of the banded kernel: each query block attends to its own and both neighbour blocks.

    A block holds `block_size = (local_window + 1) * freq_patches` consecutive tokens. As a time
    column has at most `freq_patches` tokens, any token within ±`local_window` columns of a query
    lies in the query's block or a neighbour, also when tokens were dropped (FLAP-style masking).
    """

    block_size: int
    num_blocks: int
    key_index: torch.Tensor  # (num_blocks, 3 * block_size) into the margin-padded sequence
    mask: torch.Tensor  # (num_blocks, 1, block_size, 3 * block_size), True = may attend


# Clips padded for the global kernel come in this many groups of similar length, each padded to its
# longest clip: a fixed count, so a compiled encoder keeps one graph whatever the pack ...
NUM_LENGTH_GROUPS = 4
# ... and each group pads at least two clips: `torch.compile(dynamic=True)` specialises a size that
# is 1 when first seen (a graph per pattern of lone clips), never one that is 2 or more.
MIN_GROUP_CLIPS = 2


def length_groups(lengths: Sequence[int], num_groups: int = NUM_LENGTH_GROUPS) -> tuple[tuple[int, int], ...]:
    """`(clips, longest)` per group when clips of `lengths` (host ints), longest first, are cut into
    `num_groups` runs of at least `MIN_GROUP_CLIPS` at the least padded global-attention cost,
    `sum(clips * longest²)`.

    The structure does not depend on the pack: with fewer than `num_groups * MIN_GROUP_CLIPS`
    clips, copies of the shortest clip fill the last groups (dummies whose output is never read).
    The encoder sorts the clips the same way on the device; `longest` only has to bound the
    group's clips from above, so bounds computed before FLAP-style token dropping stay valid.
    """
    if not lengths:
        raise ValueError("a pack needs at least one clip")
    ordered = sorted((int(length) for length in lengths), reverse=True)
    ordered += ordered[-1:] * (num_groups * MIN_GROUP_CLIPS - len(ordered))  # dummies, if any
    n = len(ordered)
    squares = F.pad(torch.tensor(ordered, dtype=torch.float64).square(), (0, 1))
    index = torch.arange(n + 1)
    size = index[None, :] - index[:, None]
    group_cost = torch.where(  # (start, stop): clips start..stop-1 padded to clip `start`'s length
        size >= MIN_GROUP_CLIPS, size * squares[:, None], torch.inf
    )
    best, splits = group_cost[0], []  # best[j]: least cost of the first j clips in the groups so far
    for _ in range(num_groups - 1):
        best, split = (best[:, None] + group_cost).min(0)
        splits.append(split)
    bounds = [n]
    for split in reversed(splits):
        bounds.append(int(split[bounds[-1]]))
    bounds = [0, *reversed(bounds)]
    return tuple((stop - start, ordered[start]) for start, stop in pairwise(bounds))


@dataclass
class PaddedClips:
    """The clips of a pack padded for the global kernel, in groups of similar length.

    Group `g` holds `groups[g] = (clips, width)`: its clips padded to `width` tokens, one batched
    call. Row `i` of the concatenated, flattened padding reads pack row `source_index[i]` (a
    padding slot repeats a token of its clip: masked as a key, dropped as a query); pack token `t`
    reads back row `padded_index[t]` of the output.
    """

    groups: tuple[tuple[Any, Any], ...]  # (clips, width) per group: host ints (symbolic when compiled)
    source_index: torch.Tensor  # (sum of clips * width,) rows of the pack
    padded_index: torch.Tensor  # (total_tokens,) rows of the padding
    token_lengths: torch.Tensor  # (sum of clips,) tokens of each padded clip


@dataclass
class PackedLayout:
    """Where each clip's tokens sit in a pack and where each token sits in its clip.

    `max_seqlen` only has to bound the longest clip from above: the padded global kernel and
    pooling are exact for any bound (a larger one costs padding). `padded_clips` groups the clips
    for the global kernel. `backend_state` holds what an attention backend builds once per
    forward (FlexAttention's block masks).
    """

    token_lengths: torch.Tensor  # (num_clips,) tokens per clip
    cu_seqlens: torch.Tensor  # (num_clips + 1,) cumulative token offsets, int32
    max_seqlen: int  # >= the longest clip's token count
    clip_ids: torch.Tensor  # (total_tokens,) index of the clip each token belongs to
    positions: torch.Tensor  # (total_tokens,) index of each token within its clip
    time_ids: torch.Tensor  # (total_tokens,) time column within its clip (0 = clip start)
    freq_ids: torch.Tensor  # (total_tokens,) frequency patch row
    local_blocks: LocalBlocks | None
    padded_clips: PaddedClips
    backend_state: dict[str, Any] | None = None

    @property
    def num_clips(self) -> int:
        return self.token_lengths.shape[0]


def clip_positions(token_lengths: torch.Tensor, total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`(clip_ids, positions)` of the `total` tokens of a pack whose clips hold `token_lengths`,
    computed on the device without reading any value on the host (no `repeat_interleave` size)."""
    ends = torch.cumsum(token_lengths, 0)
    token = torch.arange(total, device=token_lengths.device)
    clip_ids = torch.searchsorted(ends, token, right=True)  # clips ending at or before a token precede it
    return clip_ids, token - (ends - token_lengths)[clip_ids]


def build_layout(
    token_lengths: torch.Tensor,
    time_ids: torch.Tensor,
    freq_ids: torch.Tensor,
    local_window: int,
    freq_patches: int,
    needs_local: bool = True,
    max_seqlen: int | None = None,
    clip_groups: Sequence[tuple[int, int]] | None = None,
) -> PackedLayout:
    """Describe a pack whose clips hold `token_lengths` tokens, in time-major order.

    `clip_groups` (`length_groups` of the clips' token counts, or upper bounds of them) or
    `max_seqlen` (an upper bound on `token_lengths`: one group of every clip) spare the layout its
    one host read; without either, the lengths are read and grouped here.
    """
    clip_ids, positions = clip_positions(token_lengths, time_ids.shape[0])
    cu_seqlens = F.pad(torch.cumsum(token_lengths, 0), (1, 0)).to(torch.int32)
    if clip_groups is None:
        clip_groups = length_groups(token_lengths.tolist()) if max_seqlen is None else ((token_lengths.shape[0], max_seqlen),)
    padded_clips = _padded_clips(token_lengths, cu_seqlens, clip_ids, positions, tuple(clip_groups))
    local_blocks = None
    if needs_local:
        local_blocks = _local_blocks(clip_ids, time_ids, local_window, (local_window + 1) * freq_patches)
    return PackedLayout(
        token_lengths, cu_seqlens, clip_groups[0][1], clip_ids, positions, time_ids, freq_ids, local_blocks,
        padded_clips,
    )


def _padded_clips(
    token_lengths: torch.Tensor, cu_seqlens: torch.Tensor, clip_ids: torch.Tensor, positions: torch.Tensor,
    groups: tuple[tuple[int, int], ...],
) -> PaddedClips:
    """Clips cut into `groups` on the device: in pack order for one group, else sorted longest first."""
    starts = cu_seqlens[:-1].long()
    if len(groups) == 1:
        width = groups[0][1]
        return PaddedClips(groups, _source_index(starts, token_lengths, width), clip_ids * width + positions, token_lengths)
    num_clips = token_lengths.shape[0]
    order = torch.sort(token_lengths, descending=True, stable=True).indices  # the clip in each slot
    rank = torch.empty_like(order).scatter_(0, order, torch.arange(num_clips, device=order.device))  # its slot
    counts = [clips for clips, _ in groups]
    slot_clips = order[torch.arange(sum(counts), device=order.device).clamp(max=num_clips - 1)]  # then dummies
    slot_lengths = token_lengths[slot_clips]
    sources, slot_rows, first_row = [], [], 0
    for (clips, width), group_starts, group_lengths in zip(
        groups, starts[slot_clips].split(counts), slot_lengths.split(counts), strict=True
    ):
        sources.append(_source_index(group_starts, group_lengths, width))
        slot_rows.append(first_row + torch.arange(clips, device=order.device) * width)
        first_row = first_row + clips * width
    padded_index = torch.cat(slot_rows)[rank[clip_ids]] + positions
    return PaddedClips(groups, torch.cat(sources), padded_index, slot_lengths)


def _source_index(starts: torch.Tensor, token_lengths: torch.Tensor, width: int) -> torch.Tensor:
    """`(num_clips * width,)` pack row of each padded slot; slots past a clip's end repeat its last token."""
    slots = torch.arange(width, device=starts.device)
    last = (token_lengths - 1).clamp(min=0)
    return (starts[:, None] + torch.minimum(slots[None, :], last[:, None])).flatten()


def _local_blocks(
    clip_ids: torch.Tensor, time_ids: torch.Tensor, local_window: int, block_size: int
) -> LocalBlocks:
    total = clip_ids.shape[0]
    num_blocks = max(1, -(-total // block_size))
    padded = num_blocks * block_size
    # margin of one block on each side so every query block has three key blocks
    key_index = (
        torch.arange(num_blocks, device=clip_ids.device)[:, None] * block_size
        + torch.arange(3 * block_size, device=clip_ids.device)[None, :]
    )  # (num_blocks, 3 * block_size) in margin-padded coordinates

    def pad(ids: torch.Tensor, left: int, right: int) -> torch.Tensor:
        return F.pad(ids, (left, right), value=-1)

    q_clip = pad(clip_ids, 0, padded - total).view(num_blocks, block_size)
    q_time = pad(time_ids, 0, padded - total).view(num_blocks, block_size)
    k_clip = pad(clip_ids, block_size, padded - total + block_size)[key_index]
    k_time = pad(time_ids, block_size, padded - total + block_size)[key_index]
    mask = (
        (q_clip[:, :, None] == k_clip[:, None, :])
        & (k_clip[:, None, :] >= 0)
        & ((q_time[:, :, None] - k_time[:, None, :]).abs() <= local_window)
    )
    # rows of padding queries would be empty (NaN softmax): let them see everything, they are dropped
    mask |= (q_clip < 0)[:, :, None]
    return LocalBlocks(block_size, num_blocks, key_index, mask[:, None])


def local_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, layout: PackedLayout,
    attend: Callable[..., torch.Tensor] = F.scaled_dot_product_attention,
) -> torch.Tensor:
    """Banded attention within clips. `query/key/value`: (total_tokens, heads, head_dim)."""
    blocks = layout.local_blocks
    total, heads, head_dim = query.shape
    size, num_blocks = blocks.block_size, blocks.num_blocks
    tail = num_blocks * size - total
    q = F.pad(query, (0, 0, 0, 0, 0, tail)).view(num_blocks, size, heads, head_dim)
    k = F.pad(key, (0, 0, 0, 0, size, tail + size))[blocks.key_index]
    v = F.pad(value, (0, 0, 0, 0, size, tail + size))[blocks.key_index]
    out = attend(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=blocks.mask
    )  # (num_blocks, heads, block_size, head_dim)
    return out.transpose(1, 2).reshape(num_blocks * size, heads, head_dim)[:total]


def pad_pack(
    packed: torch.Tensor, padded_index: torch.Tensor, num_clips: int, max_seqlen: int, fill: float = 0.0
) -> torch.Tensor:
    """`(total_tokens, ...)` → `(num_clips, max_seqlen, ...)`, `fill` after each clip's end."""
    rows = packed.new_full((num_clips * max_seqlen, *packed.shape[1:]), fill)
    rows = rows.index_copy(0, padded_index, packed)  # one writer per row: deterministic
    return rows.view(num_clips, max_seqlen, *packed.shape[1:])


def key_padding_mask(token_lengths: torch.Tensor, max_seqlen: int) -> torch.Tensor:
    """`(num_clips, max_seqlen)`, True at each clip's real tokens."""
    slots = torch.arange(max_seqlen, device=token_lengths.device)
    return slots[None, :] < token_lengths[:, None]


def global_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, layout: PackedLayout,
    attend: Callable[..., torch.Tensor] = F.scaled_dot_product_attention,
) -> torch.Tensor:
    """Full attention within each clip: one batched call per group of padded clips.
    `query/key/value`: (total_tokens, heads, head_dim)."""
    padded = layout.padded_clips
    _, heads, head_dim = query.shape
    rows = [clips * width for clips, width in padded.groups]
    counts = [clips for clips, _ in padded.groups]
    q, k, v = (t[padded.source_index].split(rows) for t in (query, key, value))  # (rows, heads, head_dim) each
    outs = []
    for (clips, width), *qkv, lengths in zip(padded.groups, q, k, v, padded.token_lengths.split(counts), strict=True):
        q_g, k_g, v_g = (t.view(clips, width, heads, head_dim).transpose(1, 2) for t in qkv)
        out = attend(q_g, k_g, v_g, attn_mask=key_padding_mask(lengths, width)[:, None, None, :])
        outs.append(out.transpose(1, 2).reshape(clips * width, heads, head_dim))
    return (outs[0] if len(outs) == 1 else torch.cat(outs))[padded.padded_index]


class Rotary2D:
    """2-D rotary position embedding: half of each head rotates with the token's time column,
    the other half with its frequency row. Tables are built once per forward."""

    def __init__(self, time_ids: torch.Tensor, freq_ids: torch.Tensor, head_dim: int, theta: float):
        quarter = head_dim // 4
        inv_freq = theta ** (-torch.arange(quarter, device=time_ids.device, dtype=torch.float32) / quarter)
        angles = torch.cat(
            [time_ids[:, None].float() * inv_freq, freq_ids[:, None].float() * inv_freq], dim=-1
        )  # (total_tokens, head_dim / 2): time angles then frequency angles
        angles = torch.cat([angles, angles], dim=-1)[:, None, :]  # (total_tokens, 1, head_dim)
        self.cos, self.sin = angles.cos(), angles.sin()

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate `x` (total_tokens, heads, head_dim); pairs are (i, i + head_dim/2)."""
        first, second = x.chunk(2, dim=-1)
        rotated = torch.cat([-second, first], dim=-1)
        return x * self.cos.to(x.dtype) + rotated * self.sin.to(x.dtype)


class SlapAttentionPooling(nn.Module):
    """Multi-head attention pooling with one learned query, computed per clip of a pack.

    Scores, softmax statistics, weights and the weighted sums are fp32 whatever the activation
    dtype (a bf16 sum over a 10-minute clip's 15,000 tokens would be off by orders of magnitude),
    and computed as one softmax and one batched matmul over the clips padded to `max_seqlen`:
    no scattered additions, so the result is deterministic on every device.
    """

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.query = nn.Parameter(torch.zeros(num_heads, self.head_dim))
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, hidden: torch.Tensor, layout: PackedLayout) -> torch.Tensor:
        """`hidden` (total_tokens, dim) of the pack `layout` describes → (num_clips, dim). The clips are
        padded to the layout's `max_seqlen` (an upper bound: no host read)."""
        num_clips, max_seqlen = layout.num_clips, layout.max_seqlen
        padded_index = layout.clip_ids * max_seqlen + layout.positions
        scores, value = self._scores_and_values(hidden)
        scores = pad_pack(scores, padded_index, num_clips, max_seqlen, fill=-torch.inf)
        values = pad_pack(value, padded_index, num_clips, max_seqlen)  # (clips, max_seqlen, heads, head_dim)
        return self._pool(scores, values, hidden.dtype)

    def forward_padded(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The same pooling of padded sequences: `hidden` (batch, seq, dim), `mask` (batch, seq), True
        at real tokens (anywhere in the row) → (batch, dim). No host read."""
        scores, values = self._scores_and_values(hidden)  # (batch, seq, heads), (batch, seq, heads, head_dim)
        return self._pool(scores.masked_fill(~mask.bool()[..., None], -torch.inf), values, hidden.dtype)

    def _scores_and_values(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """fp32 scores `(..., heads)` of the learned query against each token, and values `(..., heads, head_dim)`."""
        shape = (*hidden.shape[:-1], self.num_heads, self.head_dim)
        key = self.k_proj(hidden).view(shape).float()
        value = self.v_proj(hidden).view(shape).float()
        return (key * self.query.float()).sum(-1) * self.head_dim**-0.5, value

    def _pool(self, scores: torch.Tensor, values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Padded `scores (clips, seq, heads)` (-inf at padding) and `values (clips, seq, heads, head_dim)`
        → `(clips, dim)`: softmax statistics and weighted sums in fp32."""
        weights = scores.softmax(1)
        pooled = torch.einsum("cth,cthd->chd", weights, values)
        return self.o_proj(pooled.reshape(pooled.shape[0], -1).to(dtype))
