"""Attention backends of the packed audio encoder, chosen the transformers way
(`config._attn_implementation`, `from_pretrained(..., attn_implementation=...)`):

| backend                | local layers (±`local_window` columns)       | global layers (whole clip)                |
|------------------------|----------------------------------------------|-------------------------------------------|
| `"sdpa"` (default)     | fixed blocks + band mask, SDPA               | clips padded per length group, SDPA each  |
| `"eager"`              | the same, softmax in plain matmuls           | the same, softmax in plain matmuls        |
| `"flex_attention"`     | FlexAttention over the pack, one `BlockMask` | FlexAttention, one `BlockMask`            |
|                        | (same clip and within the window)            | (same clip)                               |
| `"varlen"`             | as `"sdpa"`                                  | `varlen_attn` over `cu_seqlens` (flash)   |

FlexAttention's two block masks are built once per forward by `prepare_backend` and shared by
all layers; on a GPU, outside an outer `torch.compile`, `flex_attention` is compiled once per
process (uncompiled it materialises the scores, which is what runs on the CPU). `"varlen"` needs
PyTorch's flash kernels: a CUDA device and fp16/bf16 activations; elsewhere it raises. Every
backend computes the same attention as a plain per-clip reference (tests/test_attention_backends.py).
The local band is in time *columns* (frequency rows of a column share it), which is not a token
window, so `"varlen"` keeps the blocked kernel for local layers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .packed_attention import PackedLayout, attention_function, global_attention, local_attention

PACKED_ONLY_BACKENDS = ("varlen",)  # not a transformers backend: the text tower runs SDPA under it
_compiled_flex_attention: Callable[..., torch.Tensor] | None = None


def prepare_backend(layout: PackedLayout, implementation: str | None, local_window: int, needs_local: bool) -> None:
    """Build what `implementation` needs once per pack (FlexAttention: the block masks) into
    `layout.backend_state`."""
    if implementation != "flex_attention":
        return
    from torch.nn.attention.flex_attention import create_block_mask

    clip_ids, time_ids = layout.clip_ids, layout.time_ids

    def same_clip(batch, head, q_idx, kv_idx):
        return clip_ids[q_idx] == clip_ids[kv_idx]

    def within_window(batch, head, q_idx, kv_idx):
        return same_clip(batch, head, q_idx, kv_idx) & ((time_ids[q_idx] - time_ids[kv_idx]).abs() <= local_window)

    total = clip_ids.shape[0]
    build = dict(B=None, H=None, Q_LEN=total, KV_LEN=total, device=clip_ids.device, _compile=clip_ids.is_cuda)
    layout.backend_state = {"global": create_block_mask(same_clip, **build)}
    if needs_local:
        layout.backend_state["local"] = create_block_mask(within_window, **build)


def packed_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, layout: PackedLayout,
    implementation: str | None, is_global: bool,
) -> torch.Tensor:
    """Attention of one layer over a pack. `query/key/value`: (total_tokens, heads, head_dim)."""
    if implementation == "flex_attention":
        return _flex_attention(query, key, value, layout.backend_state["global" if is_global else "local"])
    if implementation == "varlen" and is_global:
        return _varlen_attention(query, key, value, layout)
    attend = attention_function(implementation)
    return (global_attention if is_global else local_attention)(query, key, value, layout, attend)


def _flex_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, block_mask) -> torch.Tensor:
    from torch.nn.attention.flex_attention import flex_attention

    global _compiled_flex_attention
    attend = flex_attention
    if query.is_cuda and not torch.compiler.is_compiling():
        if _compiled_flex_attention is None:
            _compiled_flex_attention = torch.compile(flex_attention, dynamic=True)
        attend = _compiled_flex_attention
    q, k, v = (t.transpose(0, 1)[None] for t in (query, key, value))  # (1, heads, total_tokens, head_dim)
    return attend(q, k, v, block_mask=block_mask)[0].transpose(0, 1)


def _varlen_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, layout: PackedLayout) -> torch.Tensor:
    if not query.is_cuda or query.dtype not in (torch.float16, torch.bfloat16):
        raise ValueError(
            f"attn_implementation='varlen' runs PyTorch's flash kernels, which need a CUDA device and fp16/bf16 "
            f"activations; got {query.dtype} on {query.device.type}. Use 'sdpa' (or 'flex_attention') here."
        )
    from torch.nn.attention.varlen import varlen_attn

    cu_seqlens, max_seqlen = layout.cu_seqlens, layout.max_seqlen
    return varlen_attn(query, key, value, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen)
