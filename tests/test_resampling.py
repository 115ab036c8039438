"""Tests of the band-limited resampler (`modeling_slap/resampling.py`): any rate, never refused.

Common rates take the exact polyphase path, every other rate (22,254, 44,099, 7,999 Hz…) the
Farrow path; both must equal the definition of the filter, the analytic signal and each other.

Run: `pytest tests/test_resampling.py` (a few seconds on CPU).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from slap_audio.modeling_slap import SlapFeatureExtractor, register_auto_classes, resampling
from slap_audio.modeling_slap.resampling import resample_waveform

from fresh_process import run_python

SR = 16000
# Rates with a fine reduced ratio against 16 kHz (Farrow path), and common ones (polyphase).
ODD_RATES = [22254, 11127, 44099, 7999, 16001, 12345, 383999]
COMMON_RATES = [8000, 22050, 32000, 44100, 48000, 96000, 192000]


def tones(freqs: list[float], rate: int, seconds: float = 1.0, amplitude: float = 0.2) -> np.ndarray:
    """Sum of sines (phase `i` for the i-th), sampled at `rate`, in float64."""
    t = np.arange(int(round(seconds * rate)), dtype=np.float64) / rate
    return sum(amplitude * np.sin(2 * np.pi * freq * t + i) for i, freq in enumerate(freqs))


def passband_tones(rate: int) -> list[float]:
    """Tones inside the pass band of both rates (below 85 % of the lower Nyquist frequency)."""
    return [f for f in (97.0, 440.0, 1234.5, 3000.0, 5555.0) if f < 0.85 * min(rate, SR) / 2]


def reference_resample(waveform: np.ndarray, orig: int, new: int) -> np.ndarray:
    """The filter's definition, summed densely in float64: output `m` at time `m / new` is
    `sum_n x[n] * s * sinc(s * u) * kaiser(s * u / 24)`, `u = n - m * orig / new` input samples,
    `s = 0.95 * min(orig, new) / orig`, zero where `|s * u| > 24`."""
    step = resampling.RESAMPLE_ROLLOFF * min(orig, new) / orig
    width, beta = resampling.RESAMPLE_LOWPASS_WIDTH, resampling.RESAMPLE_KAISER_BETA
    num_out = math.ceil(len(waveform) * new / orig)
    u = np.arange(len(waveform))[None, :] - np.arange(num_out)[:, None] * orig / new
    t = step * u
    inside = np.abs(t) <= width
    window = np.i0(beta * np.sqrt(np.clip(1 - (t / width) ** 2, 0, 1))) / np.i0(beta)
    return (np.where(inside, step * np.sinc(t) * window, 0.0) @ waveform).astype(np.float64)


def resample(waveform: np.ndarray, orig: int, new: int = SR) -> np.ndarray:
    return resample_waveform(torch.from_numpy(waveform).to(torch.float32), orig, new).double().numpy()


# --- accuracy -----------------------------------------------------------------------------


@pytest.mark.parametrize("rate", ODD_RATES + COMMON_RATES)
def test_multitone_equals_analytic_signal(rate):
    freqs = passband_tones(rate)
    out = resample(tones(freqs, rate), rate)
    assert out.shape == (SR,)
    expected = tones(freqs, SR)
    edge = 800  # 50 ms: the filter reaches past the clip's zero-padded ends
    np.testing.assert_allclose(out[edge:-edge], expected[edge:-edge], rtol=0, atol=1e-5)


@pytest.mark.parametrize(("orig", "new"), [(22254, SR), (44099, SR), (7999, SR), (383999, SR), (1, SR),
                                           (44100, SR), (8000, SR), (SR, 44099), (SR, 22050), (3, 7)])
def test_equals_definition_of_the_filter(orig, new):
    waveform = np.random.default_rng(orig).standard_normal(3 * orig // 100 + 5)  # 30 ms of noise
    out = resample(waveform, orig, new)
    np.testing.assert_allclose(out, reference_resample(waveform, orig, new), rtol=0, atol=3e-6)


@pytest.mark.parametrize(("orig", "new"), [(44100, SR), (48000, SR), (8000, SR), (SR, 44100)])
def test_farrow_path_agrees_with_exact_path(orig, new, monkeypatch):
    waveform = np.random.default_rng(1).standard_normal(orig // 2)
    exact = resample(waveform, orig, new)
    monkeypatch.setattr(resampling, "_MAX_POLYPHASE_KERNEL", 0)
    # both are float32 sums of ~50-150 products of unit-variance noise: a few ulps apart
    np.testing.assert_allclose(resample(waveform, orig, new), exact, rtol=0, atol=5e-6)


@pytest.mark.parametrize("rate", [44099, 22254, 44100])
@pytest.mark.parametrize(("freq", "min_db"), [(8500.0, 60.0), (9000.0, 90.0), (10000.0, 100.0), (11000.0, 100.0)])
def test_energy_above_new_nyquist_is_removed(rate, freq, min_db):
    out = resample(tones([freq], rate, amplitude=1.0), rate)[800:-800]
    assert -20 * math.log10(np.abs(out).max()) > min_db


# --- shapes and edge cases ----------------------------------------------------------------


@pytest.mark.parametrize("rate", [44099, 22254, 7999, 44100, 13])
@pytest.mark.parametrize("samples", [1, 2, 5, 40])
def test_inputs_shorter_than_the_filter(rate, samples):
    waveform = np.random.default_rng(samples).standard_normal(samples)
    out = resample(waveform, rate)
    assert out.shape == (math.ceil(samples * SR / rate),)
    np.testing.assert_allclose(out, reference_resample(waveform, rate, SR), rtol=0, atol=3e-6)


@pytest.mark.parametrize("rate", [44100, 48000, 8000, 22254, 11127])
def test_chunking_does_not_change_the_result(monkeypatch, rate):
    audio = torch.from_numpy(np.random.default_rng(15).standard_normal(rate // 2)).to(torch.float32)
    reference = resample_waveform(audio, rate, SR)
    assert reference.shape == (SR // 2,)
    monkeypatch.setattr(resampling, "_RESAMPLE_CHUNK_ELEMENTS", 5000)  # several chunks
    torch.testing.assert_close(resample_waveform(audio, rate, SR), reference, rtol=0, atol=1e-6)


@pytest.mark.parametrize("rate", [22254, 44100])
def test_deterministic(rate):
    audio = torch.from_numpy(np.random.default_rng(2).standard_normal(rate)).to(torch.float32)
    assert torch.equal(resample_waveform(audio, rate, SR), resample_waveform(audio.clone(), rate, SR))


def test_same_rate_and_empty_input_are_returned_as_is():
    audio = torch.randn(100)
    assert resample_waveform(audio, 22254, 22254) is audio
    for rate in (22254, 44100):
        assert resample_waveform(torch.zeros(0), rate, SR).shape == (0,)


# --- through the feature extractor --------------------------------------------------------


@pytest.mark.parametrize("rate", [22254, 11127, 44099])
def test_feature_extractor_accepts_odd_rates(rate):
    fe = SlapFeatureExtractor()
    out = fe(tones([1000.0], rate, amplitude=0.5).astype(np.float32), sampling_rate=rate)
    assert out["audio_lengths"].tolist() == [112]  # 1 s → 100 frames → 7 patches
    native = fe(tones([1000.0], SR, amplitude=0.5).astype(np.float32), sampling_rate=SR)
    # the same sound at 16 kHz: equal features wherever the frame lies inside the clip
    torch.testing.assert_close(out["input_features"][3:97], native["input_features"][3:97], rtol=0, atol=1e-3)


def test_feature_extractor_22254_hz_pcm_batch():
    """The issue's case: 22,254 Hz int16 PCM; in a batch, each clip's features equal its own."""
    fe = SlapFeatureExtractor()
    pcm = (tones([440.0, 2500.0], 22254, seconds=2.5) * 32767).astype(np.int16)
    out = fe([pcm, pcm], sampling_rate=22254)
    assert out["audio_lengths"].tolist() == [256, 256]  # 2.5 s → 250 frames → 16 patches
    alone = fe(pcm, sampling_rate=22254)["input_features"]
    assert torch.equal(out["input_features"][:256], alone)
    assert torch.isfinite(alone).all()


@pytest.mark.parametrize(
    ("rate", "word"),
    [(0, "positive"), (-22254, "positive"), (float("nan"), "whole number"), (float("inf"), "whole number"),
     (22254.5, "whole number"), (True, "whole number"), ("22254", "whole number"), (None, "required")],
)
def test_invalid_rates_raise(rate, word):
    with pytest.raises(ValueError, match=word):
        SlapFeatureExtractor()(np.zeros(1000, np.float32), sampling_rate=rate)
    if rate is not None:
        with pytest.raises(ValueError, match=word):
            resample_waveform(torch.zeros(1000), rate, SR)
        with pytest.raises(ValueError, match=word):
            resample_waveform(torch.zeros(1000), SR, rate)


def test_integral_rates_of_other_types_are_accepted():
    audio = torch.from_numpy(tones([440.0], 22254)).to(torch.float32)
    expected = resample_waveform(audio, 22254, SR)
    for rate in (np.int64(22254), 22254.0, np.float32(22254)):
        assert torch.equal(resample_waveform(audio, rate, SR), expected)


# --- shipped as remote code ---------------------------------------------------------------


def test_remote_code_resamples_without_the_package(tmp_path):
    """A saved feature extractor carries `resampling.py`; loaded with `trust_remote_code` in a
    fresh process where `slap_audio` cannot be imported, it gives the package's features."""
    register_auto_classes()
    fe = SlapFeatureExtractor()
    fe.save_pretrained(tmp_path)
    assert (tmp_path / "resampling.py").is_file()
    audio = tones([440.0, 3000.0], 22254, seconds=0.7).astype(np.float32)
    np.save(tmp_path / "audio.npy", audio)
    script = f"""
        import numpy as np
        from transformers import AutoFeatureExtractor
        fe = AutoFeatureExtractor.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
        out = fe(np.load({str(tmp_path / "audio.npy")!r}), sampling_rate=22254)
        np.save({str(tmp_path / "features.npy")!r}, out["input_features"].numpy())
    """
    run_python(script, cwd=tmp_path, hide_package=True)
    expected = fe(audio, sampling_rate=22254)["input_features"].numpy()
    np.testing.assert_array_equal(np.load(tmp_path / "features.npy"), expected)
