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
- global layers scatter clips into `(num_clips, max_seqlen, heads, head_dim)` and run one
  batched call with a key-padding mask, then gather the tokens back (`ClipBatch`).
Given `max_seqlen` as an int (the feature extractor's `max_audio_length` gives it), nothing here
reads a tensor's value on the host: a forward queues kernels without waiting on the device and
compiles as one graph, with all clips in one `ClipBatch`. Without it the layout reads the clip
lengths once and groups clips of similar length into a few `ClipBatch`es, so padding wastes
little compute when short and long clips share a pack (on the CPU, where the lengths are on the
host anyway, this is the default).

The score kernel of those two is chosen by `config._attn_implementation`: `"sdpa"`
(`torch.nn.functional.scaled_dot_product_attention`, the default) or `"eager"` (the same softmax
written out in plain matmuls). FlexAttention and varlen flash kernels live in `attention_backends.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass
class ClipBatch:
    """Clips padded together for one call of the global kernel. Row `i` of the flattened
    `(num_clips * max_seqlen)` padding reads pack row `source_index[i]` (a padding slot repeats a
    token of its clip: masked as a key, dropped as a query); pack rows `token_index` (None: every
    token, in order) read back rows `padded_index` of the output."""

    source_index: torch.Tensor  # (num_clips * max_seqlen,) rows of the pack
    token_index: torch.Tensor | None  # (tokens,) rows of the pack
    padded_index: torch.Tensor  # (tokens,) rows of the flattened padding
    token_lengths: torch.Tensor  # (num_clips,)
    max_seqlen: int  # >= every clip's token count

    @property
    def num_clips(self) -> int:
        return self.token_lengths.shape[0]


# A clip shorter than this fraction of its batch's longest clip starts a new `ClipBatch` (so
# padding adds at most 1 / 0.75² - 1 = 78 % to a batch's scores, far less on a usual mix)...
_CLIP_BATCH_RATIO = 0.75
# ... unless that longest clip is this short (attention of short clips is cheap; calls are not).
_CLIP_BATCH_MIN_TOKENS = 64


@dataclass
class PackedLayout:
    """Where each clip's tokens sit in a pack and where each token sits in its clip.

    `max_seqlen` only has to bound the longest clip from above: the padded global kernel and
    pooling are exact for any bound (a larger one costs padding). `clip_batches` group the clips
    for the global kernel. `backend_state` holds what an attention backend builds once per
    forward (FlexAttention's block masks).
    """

    token_lengths: torch.Tensor  # (num_clips,) tokens per clip
    cu_seqlens: torch.Tensor  # (num_clips + 1,) cumulative token offsets, int32
    max_seqlen: int  # >= the longest clip's token count
    clip_ids: torch.Tensor  # (total_tokens,) index of the clip each token belongs to
    time_ids: torch.Tensor  # (total_tokens,) time column within its clip (0 = clip start)
    freq_ids: torch.Tensor  # (total_tokens,) frequency patch row
    local_blocks: LocalBlocks | None
    clip_batches: list[ClipBatch]
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
) -> PackedLayout:
    """Describe a pack whose clips hold `token_lengths` tokens, in time-major order.

    `max_seqlen` (an upper bound on `token_lengths`) avoids the one host read of the layout and
    puts all clips in one `ClipBatch`; without it the lengths are read and clips of similar
    length are batched together.
    """
    clip_ids, positions = clip_positions(token_lengths, time_ids.shape[0])
    cu_seqlens = F.pad(torch.cumsum(token_lengths, 0), (1, 0)).to(torch.int32)
    if max_seqlen is None:
        lengths = token_lengths.tolist()
        max_seqlen = max(lengths, default=0)
        clip_batches = _clip_batches(lengths, token_lengths, cu_seqlens)
    else:
        whole = ClipBatch(
            _source_index(cu_seqlens[:-1].long(), token_lengths, max_seqlen), None,
            clip_ids * max_seqlen + positions, token_lengths, max_seqlen,
        )
        clip_batches = [whole]
    local_blocks = None
    if needs_local:
        local_blocks = _local_blocks(clip_ids, time_ids, local_window, (local_window + 1) * freq_patches)
    return PackedLayout(
        token_lengths, cu_seqlens, max_seqlen, clip_ids, time_ids, freq_ids, local_blocks, clip_batches
    )


def _clip_batches(lengths: list[int], token_lengths: torch.Tensor, cu_seqlens: torch.Tensor) -> list[ClipBatch]:
    """Clips grouped by length (longest first) for the global kernel; `lengths` on the host."""
    groups: list[list[int]] = []
    for clip in sorted(range(len(lengths)), key=lambda c: -lengths[c]):
        longest = lengths[groups[-1][0]] if groups else 0
        if not groups or (lengths[clip] < _CLIP_BATCH_RATIO * longest and longest > _CLIP_BATCH_MIN_TOKENS):
            groups.append([])
        groups[-1].append(clip)
    batches = []
    for group in groups:
        clips = torch.tensor(group, device=token_lengths.device)
        group_lengths = token_lengths[clips]
        slot, position = clip_positions(group_lengths, sum(lengths[c] for c in group))
        width = lengths[group[0]]
        starts = cu_seqlens[:-1].long()[clips]
        source_index = _source_index(starts, group_lengths, width)
        batches.append(ClipBatch(source_index, starts[slot] + position, slot * width + position, group_lengths, width))
    return batches


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
    """Full attention within each clip: one batched call per `ClipBatch` of padded clips.
    `query/key/value`: (total_tokens, heads, head_dim)."""
    if layout.clip_batches[0].token_index is None:  # one batch of all clips, in pack order
        return _padded_attention(query, key, value, layout.clip_batches[0], attend)
    out = torch.empty_like(query)
    for batch in layout.clip_batches:
        out[batch.token_index] = _padded_attention(query, key, value, batch, attend)
    return out


def _padded_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, batch: ClipBatch,
    attend: Callable[..., torch.Tensor],
) -> torch.Tensor:
    """Attention of the batch's clips → `(tokens, heads, head_dim)` in the batch's token order."""
    _, heads, head_dim = query.shape
    num_clips, width = batch.num_clips, batch.max_seqlen
    q, k, v = (
        t[batch.source_index].view(num_clips, width, heads, head_dim).transpose(1, 2) for t in (query, key, value)
    )  # (clips, heads, width, head_dim)
    out = attend(q, k, v, attn_mask=key_padding_mask(batch.token_lengths, width)[:, None, None, :])
    return out.transpose(1, 2).reshape(num_clips * width, heads, head_dim)[batch.padded_index]


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

    def forward(
        self, hidden: torch.Tensor, clip_ids: torch.Tensor, num_clips: int, max_seqlen: int | None = None
    ) -> torch.Tensor:
        """`hidden` (total_tokens, dim), `clip_ids` (total_tokens,), non-decreasing → (num_clips, dim).

        `max_seqlen` (an upper bound on the tokens of a clip) spares a host read of the longest clip.
        """
        total = hidden.shape[0]
        token_lengths = torch.zeros(num_clips, dtype=torch.long, device=hidden.device)
        token_lengths = token_lengths.index_add(0, clip_ids, torch.ones_like(clip_ids))  # integer: exact
        if max_seqlen is None:
            max_seqlen = int(token_lengths.max())
        _, positions = clip_positions(token_lengths, total)
        padded_index = clip_ids * max_seqlen + positions
        shape = (total, self.num_heads, self.head_dim)
        key = self.k_proj(hidden).view(shape).float()
        value = self.v_proj(hidden).view(shape).float()
        scores = (key * self.query.float()).sum(-1) * self.head_dim**-0.5  # (total_tokens, heads) fp32
        scores = pad_pack(scores, padded_index, num_clips, max_seqlen, fill=-torch.inf)
        weights = scores.softmax(1)  # (clips, max_seqlen, heads), fp32 statistics
        values = pad_pack(value, padded_index, num_clips, max_seqlen)  # (clips, max_seqlen, heads, head_dim)
        pooled = torch.einsum("cth,cthd->chd", weights, values)  # fp32 sums
        return self.o_proj(pooled.reshape(num_clips, -1).to(hidden.dtype))
