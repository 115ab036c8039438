"""The audio encoder compiles as one graph (`fullgraph=True`, `dynamic=True`) and serves packs of
different layouts without recompiling, given the layout from the feature extractor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from slap_audio.modeling_slap import SlapAudioModel, SlapConfig, SlapFeatureExtractor

RATE = 16000
# packs of 2, 3 and 5 clips of 0.3–4.1 s: clip counts, lengths and totals all differ
PACKS = [[0.5, 1.9], [0.3, 4.1, 1.0], [0.4, 0.4, 0.8, 1.5, 2.2]]


def _pack(durations: list[float], seed: int) -> dict:
    rng = np.random.default_rng(seed)
    waves = [rng.standard_normal(int(d * RATE)).astype(np.float32) for d in durations]
    return SlapFeatureExtractor()(waves, sampling_rate=RATE, return_max_audio_length=True)


def test_feature_extractor_returns_max_audio_length():
    features = _pack([0.3, 4.1, 1.0], seed=0)
    assert isinstance(features["max_audio_length"], int)
    assert features["max_audio_length"] == int(features["audio_lengths"].max())
    assert "max_audio_length" not in SlapFeatureExtractor()([np.zeros(RATE)], sampling_rate=RATE)


def test_layout_given_equals_layout_read():
    """`max_audio_length` changes how the pack is batched for attention, not the result."""
    torch.manual_seed(0)
    model = SlapAudioModel(SlapConfig.from_size("micro").audio_config).eval()
    features = _pack(PACKS[2], seed=2)
    with torch.no_grad():
        given = model(**features)
        read = model(features["input_features"], features["audio_lengths"])
    torch.testing.assert_close(given.last_hidden_state, read.last_hidden_state, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(given.pooler_output, read.pooler_output, atol=1e-5, rtol=1e-5)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_compiled_encoder_serves_new_layouts_without_recompiling():
    torch.manual_seed(0)
    model = SlapAudioModel(SlapConfig.from_size("micro").audio_config).eval()
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, fullgraph=True, dynamic=True)
    for seed, durations in enumerate(PACKS):
        features = _pack(durations, seed)
        with torch.no_grad():
            out = compiled(**features)
            expected = model(**features)
        torch.testing.assert_close(out.last_hidden_state, expected.last_hidden_state, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(out.pooler_output, expected.pooler_output, atol=1e-4, rtol=1e-4)
    assert counters["stats"]["unique_graphs"] == 1, dict(counters["stats"])
