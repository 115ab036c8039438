"""Tests of the SLAP audio front end (`SlapFeatureExtractor`).

Run: `pytest tests/test_feature_extraction.py` (a few seconds on CPU).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from slap_audio.modeling_slap import feature_extraction_slap as fes
from slap_audio.modeling_slap.feature_extraction_slap import SlapFeatureExtractor

SR = 16000


@pytest.fixture(scope="module")
def fe() -> SlapFeatureExtractor:
    return SlapFeatureExtractor()


def noise(seconds: float, seed: int, sr: int = SR, scale: float = 0.1) -> np.ndarray:
    generator = np.random.default_rng(seed)
    return (scale * generator.standard_normal(int(round(seconds * sr)))).astype(np.float32)


def sine(freq: float, seconds: float, sr: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_mel_bin(fe: SlapFeatureExtractor, audio: np.ndarray, sr: int) -> int:
    features = fe(audio, sampling_rate=sr)["input_features"]
    return int(features[2:-20].mean(0).argmax())  # skip edge frames


# --- shapes and framing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "frames"), [(0.01, 16), (0.1, 16), (1.0, 112), (10.005, 1008)]
)
def test_frame_counts(fe, seconds, frames):
    audio = noise(seconds, seed=0)
    out = fe(audio, sampling_rate=SR)
    assert out["input_features"].shape == (frames, 64)
    assert out["input_features"].dtype == torch.float32
    assert out["audio_lengths"].tolist() == [frames]
    assert out["audio_lengths"].dtype == torch.int64
    assert fe.num_frames(len(audio)) == frames


def test_ten_minute_clip(fe):
    audio = noise(600.0, seed=1)
    out = fe(audio, sampling_rate=SR)
    assert out["input_features"].shape == (60000, 64)
    assert out["audio_lengths"].tolist() == [60000]
    assert torch.isfinite(out["input_features"]).all()


def test_packed_equals_padded(fe):
    clips = [noise(s, seed=i) for i, s in enumerate([0.3, 2.0, 0.05, 1.1])]
    packed = fe(clips, sampling_rate=SR)
    padded = fe(clips, sampling_rate=SR, packing=False)
    assert set(padded) == {"input_features", "audio_attention_mask"}
    lengths = packed["audio_lengths"]
    mask = padded["audio_attention_mask"]
    assert padded["input_features"].shape == (4, int(lengths.max()), 64)
    assert mask.dtype == torch.int64 and mask.sum(1).tolist() == lengths.tolist()
    torch.testing.assert_close(
        padded["input_features"][mask.bool()], packed["input_features"], rtol=0, atol=0
    )
    assert (padded["input_features"][~mask.bool()] == fe.padding_value).all()


def test_clip_alone_equals_clip_in_batch(fe):
    clip = noise(1.37, seed=3)
    alone = fe(clip, sampling_rate=SR)["input_features"]
    batch = fe([noise(5.0, seed=4), clip, noise(0.2, seed=5)], sampling_rate=SR)
    start = int(batch["audio_lengths"][0])
    inside = batch["input_features"][start : start + alone.shape[0]]
    torch.testing.assert_close(inside, alone, rtol=0, atol=1e-5)


def test_frame_is_centred_with_zero_padding(fe):
    # Frame f's window covers samples [160 f - 200, 160 f + 200): an impulse at sample 960 = 6 * 160
    # is seen by frames 5, 6, 7 only, symmetrically (Hann weights w[360] == w[40]), and most by 6.
    audio = np.zeros(3200, dtype=np.float32)
    audio[960] = 1.0
    features = fe(audio, sampling_rate=SR)["input_features"]
    silence = (math.log(fe.log_offset) - fe.norm_mean) / fe.norm_std
    touched = [f for f in range(features.shape[0]) if features[f].max() > silence + 1e-3]
    assert touched == [5, 6, 7]
    torch.testing.assert_close(features[5], features[7], rtol=0, atol=1e-5)
    assert features[6].mean() > features[5].mean() + 0.5
    # Zeros (not a reflection) before the clip: an impulse at sample 0 reaches frames 0 and 1 only.
    audio = np.zeros(3200, dtype=np.float32)
    audio[0] = 1.0
    features = fe(audio, sampling_rate=SR)["input_features"]
    touched = [f for f in range(features.shape[0]) if features[f].max() > silence + 1e-3]
    assert touched == [0, 1]


def test_stft_chunking_does_not_change_features(fe, monkeypatch):
    clips = [noise(s, seed=i) for i, s in enumerate([3.0, 0.4, 1.3])]
    reference = fe(clips, sampling_rate=SR)["input_features"]
    monkeypatch.setattr(fes, "_MAX_FRAMES_PER_STFT", 48)  # split clips into 48-frame pieces
    chunked = fe(clips, sampling_rate=SR)["input_features"]
    torch.testing.assert_close(chunked, reference, rtol=0, atol=1e-5)


def test_batch_of_64(fe):
    clips = [noise(0.05 + 0.03 * i, seed=i) for i in range(64)]
    out = fe(clips, sampling_rate=SR)
    expected = [fe.num_frames(len(c)) for c in clips]
    assert out["audio_lengths"].tolist() == expected
    assert out["input_features"].shape == (sum(expected), 64)
    assert all(n % 16 == 0 for n in expected)


# --- determinism and value checks ---------------------------------------------------------


def test_two_calls_identical(fe):
    clips = [noise(2.0, seed=7), noise(0.7, seed=8)]
    first = fe(clips, sampling_rate=SR)["input_features"]
    second = fe(clips, sampling_rate=SR)["input_features"]
    assert torch.equal(first, second)


def test_silence_is_finite_and_fixed(fe):
    features = fe(np.zeros(8000, dtype=np.float32), sampling_rate=SR)["input_features"]
    expected = (math.log(1e-6) + 6.0) / 4.0  # ≈ -1.95
    assert torch.isfinite(features).all()
    torch.testing.assert_close(features, torch.full_like(features, expected))


def test_loud_audio_in_documented_range(fe):
    features = fe(noise(1.0, seed=9, scale=0.3), sampling_rate=SR)["input_features"][2:-20]
    assert 1.5 < features.mean() < 3.0 and features.max() < 3.5


def test_tone_peaks_at_its_mel_bin(fe):
    bin_index = peak_mel_bin(fe, sine(440.0, 1.0, SR, amplitude=0.9), SR)
    # Centres of the 64 HTK-mel filters between 0 and 8 kHz.
    mels = np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 66)[1:-1]
    centres = 700 * (10 ** (mels / 2595) - 1)
    assert abs(bin_index - int(np.argmin(abs(centres - 440.0)))) <= 1
    assert 300 < centres[bin_index] < 600


# --- input formats ------------------------------------------------------------------------


def test_int16_matches_float(fe):
    audio = noise(1.0, seed=10)
    pcm = np.round(audio * 32768).clip(-32768, 32767).astype(np.int16)
    from_pcm = fe(pcm, sampling_rate=SR)["input_features"]
    from_float = fe(pcm.astype(np.float32) / 32768, sampling_rate=SR)["input_features"]
    torch.testing.assert_close(from_pcm, from_float, rtol=0, atol=1e-5)
    close = fe(audio, sampling_rate=SR)["input_features"]
    assert (from_pcm - close).abs().max() < 0.05  # quantisation only


@pytest.mark.parametrize(
    ("dtype", "value", "expected"),
    [(np.int32, 2**30, 0.5), (np.int8, -64, -0.5), (np.uint8, 192, 0.5), (np.int16, 16384, 0.5)],
)
def test_integer_pcm_scaling(dtype, value, expected):
    mono = fes.waveform_to_mono_float(np.full(100, value, dtype=dtype), 0)
    assert mono.dtype == torch.float32
    torch.testing.assert_close(mono, torch.full((100,), expected))


def test_torch_float64_and_list_inputs(fe):
    audio = noise(0.5, seed=11)
    reference = fe(audio, sampling_rate=SR)["input_features"]
    for variant in (torch.from_numpy(audio).double(), torch.from_numpy(audio).half().float(),
                    audio.tolist()):
        out = fe(variant, sampling_rate=SR)["input_features"]
        assert out.shape == reference.shape
        assert (out - reference).abs().max() < 1e-2


def test_stereo_downmix(fe):
    left, right = noise(1.0, seed=12), noise(1.0, seed=13)
    mono = fe((left + right) / 2, sampling_rate=SR)["input_features"]
    channels_first = fe(np.stack([left, right]), sampling_rate=SR)["input_features"]
    channels_last = fe(torch.from_numpy(np.stack([left, right], axis=1)), sampling_rate=SR)
    torch.testing.assert_close(channels_first, mono, rtol=0, atol=1e-5)
    torch.testing.assert_close(channels_last["input_features"], mono, rtol=0, atol=1e-5)


def test_return_tensors_numpy_and_lists(fe):
    audio = noise(0.3, seed=14)
    pt = fe(audio, sampling_rate=SR)
    as_np = fe(audio, sampling_rate=SR, return_tensors="np")
    as_list = fe(audio, sampling_rate=SR, return_tensors=None)
    assert isinstance(as_np["input_features"], np.ndarray)
    np.testing.assert_array_equal(as_np["input_features"], pt["input_features"].numpy())
    assert as_list["audio_lengths"] == [32] and len(as_list["input_features"]) == 32


def test_clips_carrying_their_rate(fe):
    """`{"array", "sampling_rate"}` clips (a decoded `datasets.Audio` value) need no `sampling_rate`
    argument, may mix rates in one batch, and give the features of the same clips passed by rate."""
    clip_44k, clip_16k, stereo_8k = noise(0.7, seed=20, sr=44100), noise(1.2, seed=21), noise(0.4, seed=22, sr=8000)
    stereo_8k = np.stack([stereo_8k, -0.5 * stereo_8k], axis=1)  # (samples, channels), as in training examples
    mixed = fe([{"array": clip_44k, "sampling_rate": 44100}, {"array": clip_16k, "sampling_rate": SR},
                {"array": stereo_8k, "sampling_rate": 8000.0}])
    by_rate = [fe(clip_44k, sampling_rate=44100), fe(clip_16k, sampling_rate=SR), fe(stereo_8k, sampling_rate=8000)]
    assert torch.equal(mixed["audio_lengths"], torch.cat([out["audio_lengths"] for out in by_rate]))
    torch.testing.assert_close(mixed["input_features"], torch.cat([out["input_features"] for out in by_rate]),
                               rtol=0, atol=1e-5)
    single = fe({"array": clip_16k, "sampling_rate": SR}, sampling_rate=SR)  # an agreeing argument is fine
    assert torch.equal(single["input_features"], by_rate[1]["input_features"])


# --- resampling ---------------------------------------------------------------------------


# The resampler itself (accuracy, aliasing, odd rates, chunking) is tested in test_resampling.py.


@pytest.mark.parametrize("sr", [44100, 8000, 22254])
def test_resampled_tone_peaks_at_same_bin(fe, sr):
    native = peak_mel_bin(fe, sine(1000.0, 1.0, SR), SR)
    out = fe(sine(1000.0, 1.0, sr), sampling_rate=sr)
    assert out["audio_lengths"].tolist() == [112]  # 1 s at 16 kHz whatever the input rate
    assert peak_mel_bin(fe, sine(1000.0, 1.0, sr), sr) == native


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audio", "kwargs", "word"),
    [
        (np.zeros(1600, np.float32), {}, "sampling_rate is required"),
        (np.zeros(1600, np.float32), {"sampling_rate": 0}, "positive"),
        (np.zeros(1600, np.float32), {"sampling_rate": -16000}, "positive"),
        ([np.zeros(10), np.zeros(0)], {"sampling_rate": SR}, "clip 1 is empty"),
        ([], {"sampling_rate": SR}, "empty"),
        (np.array([0.0, np.nan, 0.1]), {"sampling_rate": SR}, "NaN"),
        ([np.zeros(5), np.array([0.0, np.inf])], {"sampling_rate": SR}, "clip 1 contains NaN"),
        (np.zeros((4, 6), np.float32), {"sampling_rate": SR}, "ambiguous"),
        (np.zeros((100, 200), np.float32), {"sampling_rate": SR}, "ambiguous"),
        (np.zeros((2, 2, 1600), np.float32), {"sampling_rate": SR}, "3 dimensions"),
        (["a", "b"], {"sampling_rate": SR}, "clip 0 is non-numeric"),
        ("speech.wav", {"sampling_rate": SR}, "non-numeric"),
        (np.zeros(10, np.int64), {"sampling_rate": SR}, "unsupported integer dtype"),
        (np.zeros(10, np.uint16), {"sampling_rate": SR}, "unsupported integer dtype"),
        (torch.zeros(10, dtype=torch.complex64), {"sampling_rate": SR}, "unsupported dtype"),
        (np.zeros(1600, np.float32), {"sampling_rate": 22050.5}, "whole number"),
        (np.zeros(1600, np.float32), {"sampling_rate": "16k"}, "whole number"),
        ([{"array": np.zeros(1600), "sampling_rate": SR}, np.zeros(1600)], {}, "sampling_rate is required"),
        ({"array": np.zeros(1600), "sampling_rate": SR}, {"sampling_rate": 44100}, "clip 0 is sampled at 16000 Hz"),
        ({"array": np.zeros(1600), "sampling_rate": 0}, {}, "clip 0's sampling_rate must be positive"),
        ([np.zeros(10), {"samples": np.zeros(1600)}], {"sampling_rate": SR}, "clip 1 is a mapping without"),
    ],
)
def test_invalid_inputs_raise(fe, audio, kwargs, word):
    with pytest.raises(ValueError, match=word):
        fe(audio, **kwargs)


# --- configuration ------------------------------------------------------------------------


def test_max_duration_truncates(fe):
    audio = noise(5.0, seed=16)
    cut = fe(audio, sampling_rate=SR, max_duration=2.0)
    assert cut["audio_lengths"].tolist() == [208]  # 200 frames → rounded up to 13 patches
    first_two_seconds = fe(audio[: 2 * SR], sampling_rate=SR)["input_features"]
    assert torch.equal(cut["input_features"], first_two_seconds)
    configured = SlapFeatureExtractor(max_duration=2.0)
    assert torch.equal(configured(audio, sampling_rate=SR)["input_features"], first_two_seconds)
    resampled = configured(sine(440.0, 5.0, 44100), sampling_rate=44100)
    assert resampled["audio_lengths"].tolist() == [208]


def test_save_load_round_trip(tmp_path):
    fe = SlapFeatureExtractor(norm_mean=-5.0, max_duration=30.0, packing=False)
    clips = [noise(1.2, seed=17), noise(0.4, seed=18)]
    before = fe(clips, sampling_rate=22050)
    fe.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert not any(key.startswith("_") or "filter" in key or key in ("mel_filters", "window")
                   for key in saved)
    assert saved["norm_mean"] == -5.0 and saved["max_duration"] == 30.0
    assert saved["feature_extractor_type"] == "SlapFeatureExtractor"
    loaded = SlapFeatureExtractor.from_pretrained(tmp_path)
    after = loaded(clips, sampling_rate=22050)
    assert set(after) == set(before)
    for key in before:
        assert torch.equal(after[key], before[key])


def test_docstring_defaults_match_code():
    import inspect

    doc = SlapFeatureExtractor.__doc__
    for name, parameter in inspect.signature(SlapFeatureExtractor.__init__).parameters.items():
        if parameter.default is inspect.Parameter.empty:
            continue
        default = parameter.default
        default = f"`{default}`" if default is None or isinstance(default, bool) else str(default)
        entry = doc.split(f"{name} (`")[1].splitlines()[0]
        assert f"defaults to {default})" in entry, (name, entry)
