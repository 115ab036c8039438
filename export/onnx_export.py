"""ONNX export of SLAP's two encoders as separate graphs (the layout of the CLAP ONNX repositories).

`export_onnx(model, out_dir)` (the command line: `slap-export onnx MODEL OUT`) writes into OUT:

| file | what it is |
| --- | --- |
| `audio_encoder.onnx` | packed log-mel frames `input_features (total_frames, num_mel_bins)` float32 and `audio_lengths (num_clips,)` int64 → `audio_embeds (num_clips, projection_dim)` |
| `text_encoder.onnx` | `input_ids`, `attention_mask (batch, sequence)` int64 → `text_embeds (batch, projection_dim)` |
| processor files, `config.json` | the front end, which stays in Python (`SlapFeatureExtractor`'s log-mel, the tokenizer): `AutoProcessor.from_pretrained(OUT, trust_remote_code=True)` |
| `onnx_export.json` | the manifest: opset, each graph's inputs and outputs, the logit scale, the agreement with PyTorch |
| `README.md` | how to run the graphs with ONNX Runtime |

The embeddings are L2-normalised, as `SlapModel.get_audio_features(...).pooler_output` and
`get_text_features(...).pooler_output` return them. The total length, the clip count, the text batch
and its length are dynamic. Both graphs are traced with `torch.onnx.export(dynamo=True)`, then run
with ONNX Runtime on inputs of other shapes than the traced ones: the export fails unless they agree
with PyTorch within `TOLERANCE`.
"""

from __future__ import annotations

import copy
import json
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir
import onnxruntime
import torch
from onnxscript import opset18 as op
from onnxscript.function_libs.torch_lib.ops import nn as torch_lib_nn
from torch import nn
from torch.export import Dim
from transformers import PreTrainedConfig

from slap_audio.modeling_slap import SlapConfig, SlapModel, SlapProcessor, register_auto_classes

DEFAULT_OPSET = 18  # run by every maintained ONNX Runtime (1.14+), on the web and mobile builds too
TOLERANCE = 1e-4  # largest |ONNX Runtime − PyTorch| accepted on the fp32 embeddings
MANIFEST_NAME = "onnx_export.json"


class SlapAudioEncoderForExport(nn.Module):
    """`SlapModel.get_audio_features` as one graph: packed frames and clip lengths → `audio_embeds`.

    The longest clip is read inside the graph (`ReduceMax`) and given to the encoder as
    `max_audio_length`, so the pack layout needs no value known at export time: one graph serves
    any number of clips of any durations.
    """

    def __init__(self, model: SlapModel):
        super().__init__()
        self.model = model

    def forward(self, input_features: torch.Tensor, audio_lengths: torch.Tensor) -> torch.Tensor:
        # (total_frames, num_mel_bins), (num_clips,) → (num_clips, projection_dim)
        max_audio_length = audio_lengths.max().item()
        torch._check(max_audio_length >= self.model.config.audio_config.patch_frames)  # a clip has a patch or more
        torch._check(max_audio_length <= input_features.shape[0])
        audio = self.model.audio_model(
            input_features, audio_lengths, max_audio_length=max_audio_length, return_dict=True
        )
        return self.model._embedding_output(audio, self.model.audio_projection, return_dict=True).pooler_output


class SlapTextEncoderForExport(nn.Module):
    """`SlapModel.get_text_features` as one graph: token ids and their mask → `text_embeds`."""

    def __init__(self, model: SlapModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # (batch, sequence) → (batch, projection_dim)
        return self.model.get_text_features(input_ids, attention_mask, return_dict=True).pooler_output


@dataclass
class EncoderGraph:
    """One exported graph: its module, output name, dynamic axes, and the inputs it is traced and checked on."""

    name: str
    module: nn.Module
    output_name: str
    dynamic_shapes: dict[str, dict[int, Dim]]
    make_inputs: Callable[[Sequence[int], int], dict[str, torch.Tensor]]
    traced: Sequence[int]  # clip lengths in time columns (audio), caption lengths in tokens (text)
    checked: Sequence[Sequence[int]]  # other shapes, run by ONNX Runtime against PyTorch

    @property
    def file_name(self) -> str:
        return f"{self.name}.onnx"


def encoder_graphs(model: SlapModel) -> list[EncoderGraph]:
    """The audio and the text encoder of `model`, with their tracing and checking inputs."""
    audio, text = model.config.audio_config, model.config.text_config

    def audio_inputs(clip_columns: Sequence[int], seed: int) -> dict[str, torch.Tensor]:
        lengths = torch.tensor(clip_columns) * audio.patch_frames  # frames, multiples of patch_frames
        generator = torch.Generator().manual_seed(seed)
        features = torch.randn(int(lengths.sum()), audio.num_mel_bins, generator=generator)
        return {"input_features": features, "audio_lengths": lengths}

    def text_inputs(caption_lengths: Sequence[int], seed: int) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        input_ids = torch.randint(text.vocab_size, (len(caption_lengths), max(caption_lengths)), generator=generator)
        positions = torch.arange(max(caption_lengths))[None, :]
        attention_mask = (positions < torch.tensor(caption_lengths)[:, None]).long()
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    batch, sequence = Dim("batch"), Dim("sequence")
    return [
        EncoderGraph(
            "audio_encoder", SlapAudioEncoderForExport(model).eval(), "audio_embeds",
            {"input_features": {0: Dim("total_frames")}, "audio_lengths": {0: Dim("num_clips")}},
            audio_inputs, traced=(5, 12, 3), checked=((2, 9), (1,), (7, 1, 30, 4, 2)),
        ),
        EncoderGraph(
            "text_encoder", SlapTextEncoderForExport(model).eval(), "text_embeds",
            {"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}},
            text_inputs, traced=(8, 5), checked=((3, 11, 6), (1,)),
        ),
    ]


def load_slap_model(name_or_path: str | os.PathLike) -> tuple[SlapModel, SlapProcessor]:
    """A SLAP checkpoint's `SlapModel` (fp32, eval mode) and processor. Anything else is a `ValueError`
    that says what is missing."""
    try:
        config_dict, _ = PreTrainedConfig.get_config_dict(name_or_path)
    except (OSError, ValueError) as err:  # a missing folder is looked up as a Hub id
        raise ValueError(f"{name_or_path} is not a SLAP model: it has no readable config.json ({err})") from err
    model_type = config_dict.get("model_type")
    if model_type != SlapConfig.model_type:
        raise ValueError(
            f"{name_or_path} is not a SLAP model: its config.json has model_type {model_type!r}, "
            f"not {SlapConfig.model_type!r}"
        )
    model = SlapModel.from_pretrained(name_or_path, dtype=torch.float32).eval()
    try:
        processor = SlapProcessor.from_pretrained(name_or_path)
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(
            f"{name_or_path} has no SLAP processor (processor_config.json and tokenizer files): "
            f"save the SlapProcessor next to the model ({err})"
        ) from err
    return model, processor


def export_onnx(
    model: SlapModel | str | os.PathLike,
    out_dir: str | os.PathLike,
    processor: SlapProcessor | None = None,
    opset: int = DEFAULT_OPSET,
) -> dict[str, Any]:
    """Export the audio and text encoders of `model` (a `SlapModel` or a SLAP folder / Hub id) to
    ONNX in `out_dir`, with the processor, the config, a manifest and a README; the manifest.

    A model given as an object is copied, so it stays on its device, in its dtype and mode; its
    `processor` must then be given too. Raises `RuntimeError` when ONNX Runtime and PyTorch disagree.
    """
    source = str(model) if isinstance(model, (str, os.PathLike)) else model.name_or_path or "a SlapModel in memory"
    if isinstance(model, (str, os.PathLike)):
        model, processor = load_slap_model(model)
    elif processor is None:
        raise ValueError("export_onnx needs the model's processor when given a model object")
    else:
        model = copy.deepcopy(model).to("cpu", torch.float32).eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    graphs = {}
    for graph in encoder_graphs(model):
        path = out / graph.file_name
        export_graph(graph, path, opset)
        graphs[graph.name] = {
            "file": graph.file_name, **graph_signature(path), "size_bytes": path.stat().st_size,
            "max_abs_diff_vs_pytorch": check_graph(graph, path),
        }
    register_auto_classes()  # the config and processor files get `auto_map` and the front end's code
    model.config.save_pretrained(out)
    processor.save_pretrained(out)
    manifest = {
        "format": "onnx",
        "opset": opset,
        "exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}, onnx {onnx.__version__}",
        "source_model": source,
        "projection_dim": model.config.projection_dim,
        "logit_scale": model.logit_scale_value().detach().item(),
        "front_end": {
            "processor": "AutoProcessor.from_pretrained(folder, trust_remote_code=True)",
            "sampling_rate": processor.feature_extractor.sampling_rate,
            "num_mel_bins": model.config.audio_config.num_mel_bins,
            "patch_frames": model.config.audio_config.patch_frames,
        },
        "graphs": graphs,
        "tolerance": TOLERANCE,
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "README.md").write_text(folder_readme(out.resolve(), manifest))
    return manifest


def export_graph(graph: EncoderGraph, path: Path, opset: int = DEFAULT_OPSET) -> None:
    """Trace `graph` on its tracing inputs with `torch.onnx.export(dynamo=True)` and save it at `path`."""
    with torch.no_grad():
        program = torch.onnx.export(
            graph.module, kwargs=graph.make_inputs(graph.traced, 0), dynamo=True,
            input_names=list(graph.dynamic_shapes), output_names=[graph.output_name],
            dynamic_shapes=graph.dynamic_shapes, opset_version=opset, optimize=True, verbose=False,
            custom_translation_table=ONNX_TRANSLATIONS,
        )
    program.save(str(path))


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


def check_graph(graph: EncoderGraph, path: Path) -> float:
    """The largest |ONNX Runtime − PyTorch| over the graph's checking inputs; `RuntimeError` above `TOLERANCE`."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # tiny inputs; also keeps the check deterministic
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    worst = 0.0
    for seed, shape in enumerate(graph.checked, start=1):
        inputs = graph.make_inputs(shape, seed)
        with torch.no_grad():
            expected = graph.module(**inputs).numpy()
        got = session.run(None, {name: value.numpy() for name, value in inputs.items()})[0]
        if got.shape != expected.shape:
            raise RuntimeError(f"{graph.file_name} returned shape {got.shape} for {shape}, PyTorch {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
    if worst > TOLERANCE:
        raise RuntimeError(f"{graph.file_name} differs from PyTorch by up to {worst:.2e} (tolerance {TOLERANCE:.0e})")
    return worst


def graph_signature(path: Path) -> dict[str, Any]:
    """Inputs and outputs of a saved graph as the manifest lists them: name, dtype, shape (names for dynamic axes)."""
    graph = onnx.load(str(path), load_external_data=False).graph

    def describe(values) -> list[dict[str, Any]]:
        return [
            {
                "name": value.name,
                "dtype": onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).name,
                "shape": [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim],
            }
            for value in values
        ]

    return {"inputs": describe(graph.input), "outputs": describe(graph.output)}


def folder_readme(folder: Path, manifest: dict[str, Any]) -> str:
    """The exported folder's README: what each graph takes and returns, and a script that runs both."""
    rows = [
        f"| `{graph['file']}` | {signature(graph['inputs'])} | {signature(graph['outputs'])} | "
        f"{graph['size_bytes'] / 1e6:.1f} MB | {graph['max_abs_diff_vs_pytorch']:.1e} |"
        for graph in manifest["graphs"].values()
    ]
    return README_TEMPLATE.format(
        opset=manifest["opset"], source=manifest["source_model"], rows="\n".join(rows), folder=folder,
        logit_scale=manifest["logit_scale"], rate=manifest["front_end"]["sampling_rate"],
    )


def signature(values: list[dict[str, Any]]) -> str:
    return ", ".join(f"`{v['name']}` {v['dtype']} ({', '.join(map(str, v['shape']))})" for v in values)


README_TEMPLATE = """\
# SLAP encoders in ONNX

Exported from `{source}` by `slap-export onnx` (ONNX opset {opset}); `onnx_export.json` holds the same
facts for programs. The log-mel front end and the tokenizer stay in Python: the processor files here
load with `AutoProcessor.from_pretrained(folder, trust_remote_code=True)` (only `transformers` needed).

| graph | inputs | outputs | size | max abs diff vs PyTorch |
| --- | --- | --- | --- | --- |
{rows}

`audio_lengths` are frame counts per clip (multiples of 16: the feature extractor rounds each clip
up), `input_features` all clips' frames one after another (packed, no padding). Embeddings are
L2-normalised; multiply their dot products by the logit scale ({logit_scale:.4f}) for the model's
logits. The global attention layers pad every clip of a call to the longest one: embed clips of
similar durations together (a 10-minute clip alone, not beside a hundred short ones).

```python
import numpy as np
import onnxruntime
from transformers import AutoProcessor

folder = "{folder}"
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
audio_encoder = onnxruntime.InferenceSession(f"{{folder}}/audio_encoder.onnx")
text_encoder = onnxruntime.InferenceSession(f"{{folder}}/text_encoder.onnx")

rate = {rate}
seconds = np.arange(3 * rate) / rate  # two tones, 3 s and 1 s: put your clips here, any length and rate
clips = [np.sin(2 * np.pi * 440 * seconds).astype(np.float32), np.sin(2 * np.pi * 880 * seconds[:rate]).astype(np.float32)]
audio = processor(audio=clips, sampling_rate=rate, return_tensors="np")
(audio_embeds,) = audio_encoder.run(None, {{"input_features": audio["input_features"], "audio_lengths": audio["audio_lengths"]}})
text = processor(text=["a low tone", "a high tone"], padding=True, truncation=True, return_tensors="np")
(text_embeds,) = text_encoder.run(None, {{"input_ids": text["input_ids"], "attention_mask": text["attention_mask"]}})
logits_per_audio = {logit_scale!r} * audio_embeds @ text_embeds.T  # (clips, captions)
```
"""
