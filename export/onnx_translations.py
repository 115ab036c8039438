"""ONNX lowerings of the ops torch's ONNX library gets wrong, wasteful or not at all for the SLAP
encoders, passed to `torch.onnx.export(custom_translation_table=ONNX_TRANSLATIONS)`.

- `searchsorted` (each token's clip in the pack layout): not lowered;
- `//` and `%` on symbolic sizes (local blocks, the global kernel's gather): `//` truncated toward 0,
  `%` by a size known only at run time not lowered;
- `scaled_dot_product_attention` over a whole clip: lowered to full score matrices, gigabytes for a
  10-minute clip; here a `Scan` over blocks of queries.
"""

from __future__ import annotations

import operator

import numpy as np
import onnx
import onnx_ir
import torch
from onnxscript import opset18 as op
from onnxscript.function_libs.torch_lib.ops import nn as torch_lib_nn


def onnx_searchsorted(
    sorted_sequence, values, out_int32: bool = False, right: bool = False, side: str | None = None, sorter=None
):
    """`torch.searchsorted` on a 1-D sorted sequence, which torch's ONNX library does not lower (the pack
    layout finds each token's clip with it): for each value, how many entries precede it (entries
    ≤ value with `right`, < value without). Costs `(values, entries)` comparisons: tokens × clips."""
    if sorter is not None:
        raise NotImplementedError("searchsorted with a sorter has no ONNX translation here")
    boundaries = op.Unsqueeze(sorted_sequence, op.Constant(value_ints=[0]))  # (1, entries)
    queries = op.Unsqueeze(values, op.Constant(value_ints=[-1]))  # (..., 1)
    before = op.LessOrEqual(boundaries, queries) if right or side == "right" else op.Less(boundaries, queries)
    count = op.ReduceSum(op.Cast(before, to=onnx.TensorProto.INT64), op.Constant(value_ints=[-1]), keepdims=0)
    return op.Cast(count, to=onnx.TensorProto.INT32) if out_int32 else count


def onnx_floordiv(dividend, divisor):
    """Python's `//` on symbolic sizes, toward −∞. torch's ONNX library lowers it to `Div`, which
    truncates toward 0, so the ceil-division idiom `-(-total // block_size)` (the local kernel's
    block count) came out one block short; `Mod` of integers takes the divisor's sign, as in Python."""
    return op.Div(op.Sub(dividend, op.Mod(dividend, divisor)), divisor)


def onnx_remainder(dividend, divisor):
    """`tensor % size` with a symbolic size (torch's ONNX library needs the divisor as a constant):
    Python's remainder, which takes the divisor's sign (`Mod` of integers does the same)."""
    divisor = op.CastLike(divisor, dividend)
    if dividend.dtype in (onnx_ir.DataType.FLOAT, onnx_ir.DataType.DOUBLE, onnx_ir.DataType.FLOAT16):
        return op.Sub(dividend, op.Mul(op.Floor(op.Div(dividend, divisor)), divisor))
    return op.Mod(dividend, divisor)


def onnx_attention(
    query, key, value, attn_mask=None, dropout_p: float = 0.0, is_causal: bool = False,
    scale: float | None = None, enable_gqa: bool = False,
):
    """SDPA for a query length known only at run time (global layers: a whole clip) as an ONNX `Scan`
    over blocks of `QUERY_BLOCK` queries, so the scores held at once are `(batch, heads, QUERY_BLOCK, keys)`.
    torch's lowering materialises all `(batch, heads, queries, keys)` scores several times over: for a
    10-minute clip (15,000 tokens) that is gigabytes per head. Fixed-size query blocks (the local
    layers) and masks with a query axis keep torch's lowering."""
    query_length = query.shape[2] if query.shape is not None else None
    mask_rows = attn_mask.shape[-2] if attn_mask is not None and attn_mask.shape is not None else 1
    if isinstance(query_length, int) or mask_rows != 1 or is_causal or dropout_p or enable_gqa:
        return torch_lib_nn.aten_scaled_dot_product_attention(
            query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa
        )
    scale = scale if scale is not None else query.shape[3] ** -0.5
    keys = op.Mul(op.Transpose(key, perm=[0, 1, 3, 2]), op.CastLike(op.Constant(value_float=scale), query))
    if attn_mask is not None and attn_mask.dtype == onnx_ir.DataType.BOOL:  # True = may attend
        attn_mask = op.Where(attn_mask, op.Constant(value_float=0.0), op.Constant(value_float=-np.inf))
    length = op.Shape(query, start=2, end=3)  # (1,)
    blocks = op.Div(op.Add(length, op.Constant(value_ints=[QUERY_BLOCK - 1])), op.Constant(value_ints=[QUERY_BLOCK]))
    padding = op.Sub(op.Mul(blocks, op.Constant(value_ints=[QUERY_BLOCK])), length)
    zeros = op.Constant(value_ints=[0, 0, 0, 0, 0, 0])
    padded = op.Pad(query, op.Concat(zeros, padding, op.Constant(value_ints=[0]), axis=0))
    block_shape = op.Concat(op.Constant(value_ints=[0, 0, -1, QUERY_BLOCK]), op.Shape(query, start=3), axis=0)
    by_block = op.Transpose(op.Reshape(padded, block_shape), perm=[2, 0, 1, 3, 4])  # (blocks, batch, heads, QUERY_BLOCK, dim)
    block = onnx_ir.Value(name="query_block", type=onnx_ir.TensorType(query.dtype))
    scores = onnx_ir.node("MatMul", [block, keys])
    nodes = [scores]
    if attn_mask is not None:
        nodes.append(onnx_ir.node("Add", [nodes[-1].outputs[0], op.CastLike(attn_mask, query)]))
    nodes.append(onnx_ir.node("Softmax", [nodes[-1].outputs[0]], attributes={"axis": -1}))
    nodes.append(onnx_ir.node("MatMul", [nodes[-1].outputs[0], value]))
    body = onnx_ir.Graph([block], [nodes[-1].outputs[0]], nodes=nodes, name="attention_block")
    attended = op.Scan(by_block, body=body, num_scan_inputs=1)  # (blocks, batch, heads, QUERY_BLOCK, dim)
    merged_shape = op.Concat(op.Constant(value_ints=[0, 0, -1]), op.Shape(query, start=3), axis=0)
    merged = op.Reshape(op.Transpose(attended, perm=[1, 2, 0, 3, 4]), merged_shape)  # (batch, heads, padded, dim)
    return op.Slice(merged, op.Constant(value_ints=[0]), length, op.Constant(value_ints=[2]))


QUERY_BLOCK = 256  # queries per block of `onnx_attention`: 256 × 15,000 keys × 4 B = 15 MB of scores per head

# What torch's ONNX library lowers wrongly, wastefully or not at all, for the ops the SLAP encoders use.
ONNX_TRANSLATIONS = {
    torch.ops.aten.searchsorted.Tensor: onnx_searchsorted,
    operator.floordiv: onnx_floordiv,
    torch.ops.aten.remainder.Scalar: onnx_remainder,
    torch.ops.aten.scaled_dot_product_attention.default: onnx_attention,
}
