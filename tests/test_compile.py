"""The audio encoder compiles as one graph (`fullgraph=True`, `dynamic=True`) and serves packs of
different layouts without recompiling, given the layout from the feature extractor
(`max_audio_length`, `audio_length_groups`: host ints).

Kept cheap for a loaded 2-core machine: the no-recompile check over several layouts traces with
the `"aot_eager"` backend (Dynamo's graph capture and AOTAutograd, the parts that decide graphs and
guards, without code generation), and one Inductor compile of a two-block encoder (a local and a
global layer) checks that the graph also compiles to code and computes the eager result.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from slap_audio.modeling_slap import (
    SlapAudioConfig,
    SlapAudioModel,
    SlapConfig,
    SlapFeatureExtractor,
)
from slap_audio.modeling_slap.packed_attention import NUM_LENGTH_GROUPS

RATE = 16000
# packs of 2, 3 and 11 clips of 0.3–4.1 s: clip counts, lengths, totals and group sizes all differ
PACKS = [[0.5, 1.9], [0.3, 4.1, 1.0], [0.4, 0.4, 0.8, 1.5, 2.2, 0.3, 0.6, 1.2, 3.3, 0.9, 0.7]]


def _pack(durations: list[float], seed: int) -> dict:
    rng = np.random.default_rng(seed)
    waves = [rng.standard_normal(int(d * RATE)).astype(np.float32) for d in durations]
    return SlapFeatureExtractor()(waves, sampling_rate=RATE, return_max_audio_length=True)


def _compiled_matches_eager(
    model: SlapAudioModel, backend: str, packs: list[list[float]], given: tuple[str, ...]
) -> dict:
    """Compile `model`, run it on `packs` with the layout ints `given`, compare with eager (the
    layout read); return Dynamo's graph counters."""
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, fullgraph=True, dynamic=True, backend=backend)
    for seed, durations in enumerate(packs):
        features = _pack(durations, seed)
        with torch.no_grad():
            out = compiled(features["input_features"], features["audio_lengths"], **{k: features[k] for k in given})
            expected = model(features["input_features"], features["audio_lengths"])  # the layout read
        torch.testing.assert_close(out.last_hidden_state, expected.last_hidden_state, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(out.pooler_output, expected.pooler_output, atol=1e-4, rtol=1e-4)
    return dict(counters["stats"])


def test_feature_extractor_returns_the_layout():
    features = _pack([0.3, 4.1, 1.0], seed=0)
    assert isinstance(features["max_audio_length"], int)
    assert features["max_audio_length"] == int(features["audio_lengths"].max())
    groups = features["audio_length_groups"]
    assert len(groups) == NUM_LENGTH_GROUPS and all(isinstance(v, int) for group in groups for v in group)
    assert groups[0][1] == features["max_audio_length"] and sum(n for n, _ in groups) >= 3
    assert "max_audio_length" not in SlapFeatureExtractor()([np.zeros(RATE)], sampling_rate=RATE)


@pytest.mark.parametrize("given", ["max_audio_length", "audio_length_groups"])
def test_layout_given_equals_layout_read(given):
    """The layout ints change how the pack is padded for attention, not the result."""
    torch.manual_seed(0)
    model = SlapAudioModel(SlapConfig.from_size("micro").audio_config).eval()
    features = _pack(PACKS[2], seed=2)
    with torch.no_grad():
        out = model(features["input_features"], features["audio_lengths"], **{given: features[given]})
        read = model(features["input_features"], features["audio_lengths"])
    torch.testing.assert_close(out.last_hidden_state, read.last_hidden_state, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.pooler_output, read.pooler_output, atol=1e-5, rtol=1e-5)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_compiled_encoder_serves_new_layouts_without_recompiling():
    torch.manual_seed(0)
    model = SlapAudioModel(SlapConfig.from_size("micro").audio_config).eval()
    stats = _compiled_matches_eager(model, "aot_eager", PACKS, ("max_audio_length", "audio_length_groups"))
    assert stats["unique_graphs"] == 1, stats


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_inductor_compiles_the_encoder_once():
    """Inductor code for a local and a global block, reused by a second layout (one length group:
    `max_audio_length` only, the fewest kernels to generate)."""
    config = SlapAudioConfig(
        hidden_size=16, num_hidden_layers=2, global_every=2, num_attention_heads=2, intermediate_size=32,
        local_window=4, pooling_heads=2,
    )
    torch.manual_seed(0)
    model = SlapAudioModel(config).eval()
    assert [layer.self_attn.is_global for layer in model.layers] == [False, True]
    stats = _compiled_matches_eager(model, "inductor", PACKS[:2], ("max_audio_length",))
    assert stats["unique_graphs"] == 1, stats
