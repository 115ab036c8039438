"""Attention over packed variable-duration audio: the layout of a pack, 2-D rotary embeddings,
and the local (banded) and global (whole-clip) attention kernels.

A pack is all clips' tokens concatenated, `(total_tokens, dim)`, with no padding between clips.
`PackedLayout` describes it once per forward (clip boundaries, each token's time column and
frequency row, the blocks of the local kernel) and every layer reuses it. Attention never
crosses a clip boundary; the tests check both kernels against a plain per-clip reference.

The score kernel is chosen the transformers way, by `config._attn_implementation`: `"sdpa"`
(`torch.nn.functional.scaled_dot_product_attention`, the default) or `"eager"` (the same softmax
written out in plain matmuls); both compute the same attention on the same blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


ATTENTION_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "sdpa": F.scaled_dot_product_attention,
    "eager": eager_attention,
}


def attention_function(implementation: str | None) -> Callable[..., torch.Tensor]:
    """The score kernel for `config._attn_implementation` (None: SDPA)."""
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
class PackedLayout:
    """Where each clip's tokens sit in a pack and where each token sits in its clip."""

    token_lengths: torch.Tensor  # (num_clips,) tokens per clip
    cu_seqlens: torch.Tensor  # (num_clips + 1,) cumulative token offsets, int32
    max_seqlen: int
    clip_ids: torch.Tensor  # (total_tokens,) index of the clip each token belongs to
    time_ids: torch.Tensor  # (total_tokens,) time column within its clip (0 = clip start)
    freq_ids: torch.Tensor  # (total_tokens,) frequency patch row
    local_blocks: LocalBlocks | None

    @property
    def segments(self) -> list[tuple[int, int]]:
        """`(start, end)` token offsets of each clip."""
        bounds = self.cu_seqlens.tolist()
        return list(zip(bounds[:-1], bounds[1:], strict=True))


def build_layout(
    token_lengths: torch.Tensor,
    time_ids: torch.Tensor,
    freq_ids: torch.Tensor,
    local_window: int,
    freq_patches: int,
    needs_local: bool = True,
) -> PackedLayout:
    """Describe a pack whose clips hold `token_lengths` tokens, in time-major order."""
    device = time_ids.device
    num_clips = token_lengths.shape[0]
    clip_ids = torch.repeat_interleave(torch.arange(num_clips, device=device), token_lengths)
    cu_seqlens = F.pad(torch.cumsum(token_lengths, 0), (1, 0)).to(torch.int32)
    max_seqlen = int(token_lengths.max()) if num_clips else 0
    local_blocks = None
    if needs_local:
        local_blocks = _local_blocks(clip_ids, time_ids, local_window, (local_window + 1) * freq_patches)
    return PackedLayout(
        token_lengths, cu_seqlens, max_seqlen, clip_ids, time_ids, freq_ids, local_blocks
    )


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


def global_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, layout: PackedLayout,
    attend: Callable[..., torch.Tensor] = F.scaled_dot_product_attention,
) -> torch.Tensor:
    """Full attention within each clip. `query/key/value`: (total_tokens, heads, head_dim)."""
    out = torch.empty_like(query)
    for start, end in layout.segments:
        seg = [t[start:end].transpose(0, 1).unsqueeze(0) for t in (query, key, value)]
        out[start:end] = attend(*seg)[0].transpose(0, 1)
    return out


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
    """Multi-head attention pooling with one learned query, computed per clip of a pack."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.query = nn.Parameter(torch.zeros(num_heads, self.head_dim))
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, hidden: torch.Tensor, clip_ids: torch.Tensor, num_clips: int) -> torch.Tensor:
        """`hidden` (total_tokens, dim), `clip_ids` (total_tokens,) → (num_clips, dim)."""
        shape = (hidden.shape[0], self.num_heads, self.head_dim)
        key, value = self.k_proj(hidden).view(shape), self.v_proj(hidden).view(shape)
        scores = (key * self.query).sum(-1) * self.head_dim**-0.5  # (total_tokens, heads)
        index = clip_ids[:, None].expand_as(scores)
        with torch.no_grad():  # per-clip max, only for numerical stability
            peak = scores.new_full((num_clips, self.num_heads), -torch.inf)
            peak = peak.scatter_reduce(0, index, scores, "amax")
        weights = torch.exp(scores - peak[clip_ids])
        total = weights.new_zeros(num_clips, self.num_heads).index_add(0, clip_ids, weights)
        weights = weights / total[clip_ids]
        contributions = weights[..., None] * value  # (total_tokens, heads, head_dim)
        pooled = contributions.new_zeros(num_clips, self.num_heads, self.head_dim)
        pooled = pooled.index_add(0, clip_ids, contributions)
        return self.o_proj(pooled.reshape(num_clips, -1))
