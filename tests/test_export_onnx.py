"""`slap-export onnx`: the audio and text graphs equal PyTorch under ONNX Runtime (packs of clips of
different durations up to 10 minutes, captions of mixed lengths), the exported folder runs where this
package is not installed, and a folder that is not a SLAP model is refused with a clear message.

The micro model is exported once, by the console script in a fresh process (as users run it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from transformers import BertConfig

from slap_audio.export.onnx_export import MANIFEST_NAME, TOLERANCE, export_onnx, folder_readme

from conftest import tone
from fresh_process import run_python

SLAP_EXPORT = Path(sys.executable).parent / "slap-export"


@pytest.fixture(scope="module")
def exported(micro_model, processor, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The micro model and its processor saved, then exported by `slap-export onnx` in a fresh process."""
    root = tmp_path_factory.mktemp("export")
    micro_model.save_pretrained(root / "model")
    processor.save_pretrained(root / "model")
    script = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"
    result = run_python(script, str(SLAP_EXPORT), "onnx", str(root / "model"), str(root / "onnx"), cwd=root)
    return root / "onnx", result


def session(path: Path) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def embed_audio_onnx(folder: Path, features) -> np.ndarray:
    inputs = {"input_features": features["input_features"].numpy(), "audio_lengths": features["audio_lengths"].numpy()}
    return session(folder / "audio_encoder.onnx").run(None, inputs)[0]


def test_cli_writes_both_graphs_and_a_manifest(exported, micro_model):
    folder, result = exported
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["opset"] == 18
    audio, text = manifest["graphs"]["audio_encoder"], manifest["graphs"]["text_encoder"]
    projection_dim = micro_model.config.projection_dim
    assert audio["inputs"] == [
        {"name": "input_features", "dtype": "float32", "shape": ["total_frames", 64]},
        {"name": "audio_lengths", "dtype": "int64", "shape": ["num_clips"]},
    ]
    assert audio["outputs"] == [{"name": "audio_embeds", "dtype": "float32", "shape": ["num_clips", projection_dim]}]
    assert [v["name"] for v in text["inputs"]] == ["input_ids", "attention_mask"]
    assert text["inputs"][0]["shape"] == text["inputs"][1]["shape"] == ["batch", "sequence"]
    assert text["outputs"] == [{"name": "text_embeds", "dtype": "float32", "shape": ["batch", projection_dim]}]
    for graph in (audio, text):
        assert graph["size_bytes"] == (folder / graph["file"]).stat().st_size
        assert graph["max_abs_diff_vs_pytorch"] <= TOLERANCE
        assert f"{graph['file']}: {graph['size_bytes'] / 1e6:.1f} MB" in result.stdout
    assert manifest["logit_scale"] == pytest.approx(micro_model.logit_scale_value().detach().item())
    for name in ("config.json", "processor_config.json", "tokenizer_config.json", "README.md"):
        assert (folder / name).is_file(), name


@pytest.mark.parametrize(
    "seconds",
    [(0.5, 3.2, 7.0, 1.0), (12.3,), (0.16, 0.16, 2.0), (1.0, 600.0, 4.5)],
    ids=["four_clips", "one_clip", "shortest_clips", "with_a_10_minute_clip"],
)
def test_audio_graph_equals_pytorch(exported, micro_model, processor, seconds):
    folder, _ = exported
    clips = [tone(s, freq=220.0 * (i + 1), seed=i) for i, s in enumerate(seconds)]
    features = processor(audio=clips, sampling_rate=16000)
    with torch.no_grad():
        expected = micro_model.get_audio_features(**features).pooler_output.numpy()
    got = embed_audio_onnx(folder, features)
    assert got.shape == (len(seconds), micro_model.config.projection_dim)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert np.linalg.norm(got, axis=-1) == pytest.approx(1.0, abs=1e-5)


def test_audio_graph_embeds_a_clip_alike_alone_and_in_a_pack(exported, processor):
    folder, _ = exported
    clips = [tone(2.0, 330.0, seed=1), tone(5.5, 550.0, seed=2), tone(0.8, 770.0, seed=3)]
    packed = embed_audio_onnx(folder, processor(audio=clips, sampling_rate=16000))
    alone = np.concatenate([embed_audio_onnx(folder, processor(audio=[clip], sampling_rate=16000)) for clip in clips])
    assert np.abs(packed - alone).max() <= 1e-5


def test_text_graph_equals_pytorch_on_mixed_lengths(exported, micro_model, processor):
    folder, _ = exported
    captions = ["a", "a low hum then three sharp clicks while rain falls over the wind", "two beeps", "a quiet bell then rain"]
    tokens = processor(text=captions)
    with torch.no_grad():
        expected = micro_model.get_text_features(tokens["input_ids"], tokens["attention_mask"]).pooler_output.numpy()
    inputs = {"input_ids": tokens["input_ids"].numpy(), "attention_mask": tokens["attention_mask"].numpy()}
    got = session(folder / "text_encoder.onnx").run(None, inputs)[0]
    assert tokens["attention_mask"].sum(1).unique().numel() == len(captions)  # all lengths differ
    assert np.abs(got - expected).max() <= TOLERANCE


def test_folder_readme_runs_without_the_package(exported, micro_model, tmp_path):
    """The README's script, run where only transformers and onnxruntime are installed, gives the
    model's embeddings and logits."""
    folder, _ = exported
    (script,) = re.findall(r"```python\n(.*?)```", (folder / "README.md").read_text(), re.S)
    script += (
        "np.savez(__import__('sys').argv[1], logits=logits_per_audio, audio_embeds=audio_embeds, "
        "text_embeds=text_embeds, **audio, **text)\n"
    )
    run_python(script, str(tmp_path / "out.npz"), cwd=tmp_path, hide_package=True)
    saved = dict(np.load(tmp_path / "out.npz"))
    with torch.no_grad():
        expected = micro_model(
            input_ids=torch.from_numpy(saved["input_ids"]), attention_mask=torch.from_numpy(saved["attention_mask"]),
            input_features=torch.from_numpy(saved["input_features"]),
            audio_lengths=torch.from_numpy(saved["audio_lengths"]),
        )
    assert np.abs(saved["audio_embeds"] - expected.audio_embeds.numpy()).max() <= TOLERANCE
    assert np.abs(saved["text_embeds"] - expected.text_embeds.numpy()).max() <= TOLERANCE
    assert np.abs(saved["logits"] - expected.logits_per_audio.numpy()).max() <= 1e-3  # logit scale ~14 × 1e-4


def test_a_folder_that_is_not_slap_is_refused(tmp_path):
    model = tmp_path / "bert"
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(model)
    result = subprocess.run(
        [str(SLAP_EXPORT), "onnx", str(model), str(tmp_path / "onnx")], capture_output=True, text=True,
        env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"), timeout=300, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"slap-export: error: {model} is not a SLAP model: its config.json has model_type 'bert', not 'slap'"
    )
    assert not (tmp_path / "onnx").exists()


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="is not a SLAP model: it has no readable config.json"):
        export_onnx(tmp_path / "missing", tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


def test_folder_readme_states_the_model_s_patch_frames(tmp_path):
    graph = {"file": "audio_encoder.onnx", "inputs": [], "outputs": [], "size_bytes": 1, "max_abs_diff_vs_pytorch": 0.0}
    manifest = {"opset": 18, "source_model": "m", "logit_scale": 10.0, "graphs": {"audio_encoder": graph},
                "front_end": {"sampling_rate": 16000, "num_mel_bins": 64, "patch_frames": 8}}
    assert "(multiples of 8:" in folder_readme(tmp_path, manifest)
