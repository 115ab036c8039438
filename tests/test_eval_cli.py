"""The `slap-eval` command end to end on micro checkpoints saved to a temporary folder.

    pytest tests/test_eval_cli.py
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import soundfile
import torch

from slap_audio.data.builtin_data import LABELS, generate_clip
from slap_audio.eval import caption_metrics as cm
from slap_audio.eval.cli import console_main, main, probe_split
from slap_audio.hub_cards.metrics import read_metrics
from slap_audio.modeling_slap import SlapForConditionalGeneration

PLOTS = {"similarity_matrix.png", "retrieval_examples.png", "embedding_projection.png", "metrics.png",
         "confusion_matrix.png"}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, micro_model, micro_config, processor):
    """A SlapModel and a captioner saved as `slap-train` writes them (weights, code, processor)."""
    root = tmp_path_factory.mktemp("checkpoints")
    micro_model.save_pretrained(root / "slap")
    processor.save_pretrained(root / "slap")
    torch.manual_seed(1)
    SlapForConditionalGeneration(micro_config).save_pretrained(root / "captioner")
    processor.save_pretrained(root / "captioner")
    return root


def _unit(value) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


def test_cli_writes_results_json_and_plots(checkpoints, tmp_path):
    out = tmp_path / "eval"
    results = main([str(checkpoints / "slap"), "--dataset", "builtin:test", "--num-clips", "8",
                    "--captioner", str(checkpoints / "captioner"), "--output-dir", str(out),
                    "--pipeline-check", "4", "--no-java-metrics"])  # METEOR's JVM: 10 s; tested in test_caption_metrics
    written = json.loads((out / "results.json").read_text())
    assert written == results
    assert [p.name for p in out.glob("*.json")] == ["results.json"]

    assert list(results) == ["model", "dataset", "metrics", "examples", "versions", "elapsed_seconds"]
    assert results["model"] == str(checkpoints / "slap")
    assert results["dataset"] == {"name": "slap-builtin", "split": "test", "num_clips": 8,
                                  "skipped": {"total": 0, "counts": {}, "examples": {}}}
    metrics = results["metrics"]
    assert list(metrics) == ["retrieval", "zero_shot", "captioning", "modality_gap", "linear_probe"]
    for direction in ("text_to_audio", "audio_to_text"):
        section = metrics["retrieval"][direction]
        assert list(section) == ["R@1", "R@5", "R@10", "mAP@10"]
        assert all(_unit(v) for v in section.values())
        assert section["R@1"] <= section["R@5"] <= section["R@10"]
    zero_shot = metrics["zero_shot"]
    assert list(zero_shot) == ["top1", "top5", "pipeline_agreement", "num_classes"]
    assert zero_shot["num_classes"] == len(LABELS)
    assert _unit(zero_shot["top1"]) and _unit(zero_shot["top5"]) and zero_shot["top1"] <= zero_shot["top5"]
    assert zero_shot["pipeline_agreement"] == 1.0
    captioning = metrics["captioning"]
    assert {"BLEU-4", "ROUGE-L", "CIDEr-D", "unavailable"} <= set(captioning)
    assert set(captioning) <= {"BLEU-4", "ROUGE-L", "CIDEr-D", "METEOR", "SPICE", "SPIDEr", "unavailable", "tokenizer"}
    assert captioning["tokenizer"] == ("ptb" if cm.ptb_unavailable_reason() is None else "simple")
    assert "METEOR" not in captioning and "skipped" in captioning["unavailable"]["METEOR"]
    assert all(_unit(captioning[k]) for k in ("BLEU-4", "ROUGE-L", "METEOR", "SPICE", "SPIDEr") if k in captioning)
    assert 0.0 <= captioning["CIDEr-D"] <= 10.0
    assert 0.0 <= metrics["modality_gap"] <= 2.0
    assert list(metrics["linear_probe"]) == ["accuracy"] and _unit(metrics["linear_probe"]["accuracy"])

    captions = results["examples"]["captions"]
    assert [c["clip_id"] for c in captions] == [f"slap-test-s0-{i:06d}" for i in range(8)]
    for example in captions:
        assert list(example) == ["clip_id", "generated", "references"]
        assert isinstance(example["generated"], str) and example["references"]
    assert list(results["versions"]) == ["python", "torch", "transformers", "slap_audio"]
    assert results["elapsed_seconds"] > 0

    assert {p.name for p in out.glob("*.png")} == PLOTS
    for name in PLOTS:
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 2000, name

    # what the model card reads: every metric lands in its section, only the reasons are skipped
    report = read_metrics(out / "results.json")
    assert {"text_to_audio", "audio_to_text", "zero_shot", "captioning", "representation"} <= set(report.results)
    assert report.results["text_to_audio"]["R@1"] == metrics["retrieval"]["text_to_audio"]["R@1"]
    assert all(s.startswith(("captioning/unavailable/", "captioning/tokenizer:")) for s in report.skipped)


def test_broken_items_are_skipped_and_counted(checkpoints, tmp_path, monkeypatch):
    rows = []
    for index in range(3):
        clip = generate_clip(0, "test", index, max_duration=4.0)
        soundfile.write(tmp_path / f"clip{index}.wav", clip["audio"], clip["sampling_rate"], subtype="FLOAT")
        rows.append({"audio": f"clip{index}.wav", "captions": clip["captions"][:2], "label": clip["label"]})
    rows.append({"audio": "missing.wav", "captions": ["a sound that is not there"], "label": "hum"})
    broken = np.zeros(16000, dtype=np.float32)
    broken[100] = np.nan  # the header is fine: found only when decoding
    soundfile.write(tmp_path / "nan.wav", broken, 16000, subtype="FLOAT")
    rows.append({"audio": "nan.wav", "captions": ["a broken file"], "label": "hum"})
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))

    out = tmp_path / "eval"
    # through the console-script entry point: it exits 0 and leaves the JSON
    monkeypatch.setattr(sys, "argv", ["slap-eval", str(checkpoints / "slap"), "--dataset", str(manifest),
                                      "--output-dir", str(out), "--templates", "builtin", "--pipeline-check", "2",
                                      "--no-plots"])
    assert console_main() == 0
    results = json.loads((out / "results.json").read_text())
    dataset = results["dataset"]
    assert dataset["name"] == str(manifest) and dataset["num_clips"] == 3
    assert dataset["skipped"]["total"] == 2
    assert dataset["skipped"]["counts"] == {"missing_file": 1, "non_finite_audio": 1}
    classes = sorted({row["label"] for row in rows[:3]})
    zero_shot = results["metrics"]["zero_shot"]
    assert zero_shot["num_classes"] == len(classes)
    assert zero_shot["top5"] is None  # <= 5 classes: top-5 would count every clip
    assert zero_shot["pipeline_agreement"] == 1.0  # checked against the first template alone
    assert "captioning" not in results["metrics"] and results["examples"]["captions"] == []
    assert not list(out.glob("*.png"))


def test_probe_split_is_stratified_and_deterministic():
    labels = ["a", "b", "a", "c", "a", "b", "a"]
    train, test = probe_split(labels, seed=0)
    assert (train, test) == probe_split(labels, seed=0)
    assert sorted(train + test) == list(range(len(labels)))
    assert [labels[i] for i in train].count("a") == 2 and [labels[i] for i in test].count("a") == 2
    assert {labels[i] for i in train} == {"a", "b", "c"}  # every class is trained on
