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
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import torch
from torch import nn
from torch.export import Dim
from transformers import PreTrainedConfig

from slap_audio.export.onnx_translations import ONNX_TRANSLATIONS
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
        return self.model.get_audio_features(
            input_features, audio_lengths, max_audio_length=max_audio_length, return_dict=True
        ).pooler_output


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
            audio_inputs, traced=(5, 12, 3), checked=((2, 9), (1,), (7, 1, 30, 4, 2), (70, 3)),
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
        patch_frames=manifest["front_end"]["patch_frames"],
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

`audio_lengths` are frame counts per clip (multiples of {patch_frames}: the feature extractor rounds each clip
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
