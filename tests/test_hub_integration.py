"""Checkpoints as users meet them: Auto classes, remote code without the package, pipelines."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch
from transformers import AutoFeatureExtractor, AutoModel, AutoProcessor, pipeline

from slap_audio.modeling_slap import SlapModel, register_auto_classes

from conftest import tone
from fresh_process import run_python

LABELS = ["low hum", "siren", "rain", "three clicks"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, micro_model, processor):
    path = tmp_path_factory.mktemp("checkpoint")
    micro_model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def _embed(model, processor, clips) -> torch.Tensor:
    with torch.no_grad():
        return model.get_audio_features(**processor(audio=clips, sampling_rate=16000)).pooler_output


def test_save_writes_auto_map_and_code(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_slap.SlapModel"
    assert config["auto_map"]["AutoConfig"] == "configuration_slap.SlapConfig"
    for name in ("modeling_slap.py", "modeling_audio.py", "packed_attention.py", "feature_extraction_slap.py"):
        assert (checkpoint / name).is_file(), name
    processor_config = json.loads((checkpoint / "processor_config.json").read_text())
    assert "auto_map" in processor_config["feature_extractor"]


def test_register_is_idempotent_and_auto_classes_load(checkpoint, micro_model, processor):
    register_auto_classes()
    register_auto_classes()
    model = AutoModel.from_pretrained(checkpoint).eval()  # no trust_remote_code: the package is here
    assert type(model) is SlapModel
    assert type(AutoProcessor.from_pretrained(checkpoint)) is type(processor)
    clips = [tone(1.5), tone(0.3, 900.0)]
    torch.testing.assert_close(_embed(model, processor, clips), _embed(micro_model, processor, clips), rtol=0, atol=0)


def test_remote_code_without_the_package(checkpoint, micro_model, processor, tmp_path):
    clips = [tone(2.0, 300.0), tone(0.5, 1200.0, seed=3), tone(7.3, 80.0, seed=4)]
    np.save(tmp_path / "clips.npy", np.concatenate(clips))
    lengths = [len(c) for c in clips]
    script = f"""
        import json, numpy as np, torch
        from transformers import AutoModel, AutoFeatureExtractor
        model = AutoModel.from_pretrained({str(checkpoint)!r}, trust_remote_code=True).eval()
        extractor = AutoFeatureExtractor.from_pretrained({str(checkpoint)!r}, trust_remote_code=True)
        audio = np.load({str(tmp_path / "clips.npy")!r})
        clips = np.split(audio, np.cumsum({lengths})[:-1])
        with torch.no_grad():
            emb = model.get_audio_features(**extractor(list(clips), sampling_rate=16000)).pooler_output
        print(json.dumps({{"module": type(model).__module__, "emb": emb.tolist()}}))
    """
    result = run_python(script, cwd=tmp_path, hide_package=True)
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["module"].startswith("transformers_modules.")
    torch.testing.assert_close(torch.tensor(payload["emb"]), _embed(micro_model, processor, clips), rtol=0, atol=1e-6)


def test_zero_shot_pipeline_from_array_and_file(checkpoint, micro_model, processor, tmp_path):
    classifier = pipeline("zero-shot-audio-classification", model=str(checkpoint))
    clip = tone(3.0, 440.0)
    result = classifier(clip, candidate_labels=LABELS)
    assert sorted(r["label"] for r in result) == sorted(LABELS)
    assert sum(r["score"] for r in result) == pytest.approx(1.0, abs=1e-5)
    assert [r["score"] for r in result] == sorted((r["score"] for r in result), reverse=True)
    # the pipeline's scores are the model's softmax over prompts
    prompts = [f"This is a sound of {label}." for label in LABELS]
    with torch.no_grad():
        logits = micro_model(**processor(text=prompts, audio=[clip], sampling_rate=16000)).logits_per_audio[0]
    expected = dict(zip(LABELS, logits.softmax(-1).tolist(), strict=True))
    for r in result:
        assert r["score"] == pytest.approx(expected[r["label"]], abs=1e-5)
    # from a file path (decoded by ffmpeg inside the pipeline)
    path = tmp_path / "clip.wav"
    soundfile.write(path, clip, 16000, subtype="FLOAT")
    from_file = classifier(str(path), candidate_labels=LABELS)
    assert [r["label"] for r in from_file] == [r["label"] for r in result]
    for a, b in zip(from_file, result, strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_pipeline_with_remote_code(checkpoint):
    classifier = pipeline("zero-shot-audio-classification", model=str(checkpoint), trust_remote_code=True)
    result = classifier(tone(1.0), candidate_labels=LABELS[:2])
    assert len(result) == 2


def test_feature_extractor_from_auto(checkpoint):
    extractor = AutoFeatureExtractor.from_pretrained(checkpoint)
    with pytest.raises(ValueError, match="sampling_rate"):
        extractor(tone(1.0))
