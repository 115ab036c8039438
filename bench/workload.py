"""The fixed, seeded audio workload every benchmark runs on.

48 clips, a realistic duration mix: 12 short clips of 1–5 s, 18 clips of exactly 10 s (the
length LAION-CLAP was built around) and 18 long clips of 15–30 s, shuffled once with the seed so
batches of 8 mix durations the way a real data set does. Each clip is a coloured-noise bed with a
few sound events on top (harmonic tones with envelopes, chirps, click trains, AM tones) and a
silence gap now and then, so front ends and models see signals with real spectral structure.

A clip is a `ClipSpec` (duration + seed); `render(spec, sampling_rate)` draws the same events at
any rate, so the 48 kHz audio fed to `ClapFeatureExtractor` and the 16 kHz audio fed to
`SlapFeatureExtractor` are the same sounds. Long recordings (`render_long`) are rendered in
30-second segments, so a 60-minute clip never needs more than a few segments of temporaries.

    python -m bench.workload          # prints the duration mix
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEED = 0
BATCH_SIZE = 8
CLAP_WINDOW_S = 10.0  # LAION-CLAP's input window: 10 s at 48 kHz
CAPTION_TOKENS = 16  # caption length of the training benchmark (token ids are random)
RENDER_VERSION = 1  # bump when `render` changes, to invalidate cached audio


@dataclass(frozen=True)
class ClipSpec:
    """One clip of the workload: its duration in seconds and the seed of its sound events."""

    index: int
    duration: float
    seed: int


def workload(quick: bool = False, seed: int = SEED) -> list[ClipSpec]:
    """The benchmark's clips in batch order: 48 clips (12 × 1–5 s, 18 × 10 s, 18 × 15–30 s),
    or 4 clips of 1–11 s with `quick=True` (smoke tests)."""
    rng = np.random.default_rng(seed)
    if quick:
        durations = [1.0, 2.5, 11.0, 3.0]
    else:
        durations = (
            list(rng.uniform(1.0, 5.0, 12)) + [10.0] * 18 + list(rng.uniform(15.0, 30.0, 18))
        )
        rng.shuffle(durations)
    return [
        ClipSpec(index=i, duration=round(float(d), 3), seed=int(rng.integers(2**31)))
        for i, d in enumerate(durations)
    ]


def batches(items: Sequence, size: int = BATCH_SIZE) -> Iterator[list]:
    """Consecutive batches of `size` items (the last one may be shorter)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _coloured_noise(rng: np.random.Generator, samples: int, exponent: float) -> np.ndarray:
    """Noise with a 1/f**exponent power spectrum (0 white, 1 pink, 2 brown), unit RMS."""
    size = 1 << max(0, samples - 1).bit_length()  # a power of two: fast FFT whatever the length
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.arange(spectrum.shape[0], dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n=size)[:samples]
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def _envelope(samples: int, sampling_rate: int, attack: float, release: float) -> np.ndarray:
    """Linear attack, flat sustain, exponential release."""
    t = np.arange(samples) / sampling_rate
    env = np.minimum(1.0, t / max(attack, 1e-3))
    tail = t[-1] - t if samples else t
    return env * np.minimum(1.0, np.exp(-(release - tail) * 4.0 / max(release, 1e-3)))


def _event(
    kind: str, params: dict, samples: int, sampling_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """One sound event of `samples` samples."""
    t = np.arange(samples) / sampling_rate
    nyquist = sampling_rate / 2
    if kind == "tone":  # harmonic tone, 1–4 partials with decaying amplitude
        out = np.zeros(samples)
        for k in range(1, params["partials"] + 1):
            if params["freq"] * k < nyquist:
                out += np.sin(2 * np.pi * params["freq"] * k * t + params["phase"]) / k
        return out * _envelope(samples, sampling_rate, 0.02, 0.3)
    if kind == "chirp":  # linear sweep between two frequencies
        f0, f1 = params["f0"], min(params["f1"], nyquist * 0.9)
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * max(t[-1], 1e-3)))
        return np.sin(phase) * _envelope(samples, sampling_rate, 0.05, 0.1)
    if kind == "clicks":  # click train: short noise bursts at a fixed rate
        out = np.zeros(samples)
        burst = max(1, int(0.004 * sampling_rate))
        for start in range(0, samples - burst, max(1, int(sampling_rate / params["rate"]))):
            out[start : start + burst] = rng.standard_normal(burst) * np.hanning(burst)
        return out
    # "am": amplitude-modulated tone
    carrier = np.sin(2 * np.pi * params["freq"] * t)
    return carrier * (0.5 + 0.5 * np.sin(2 * np.pi * params["mod"] * t))


def _plan(spec: ClipSpec) -> dict:
    """Rate-independent description of a clip: noise colour, events, gap (all from its seed)."""
    rng = np.random.default_rng([spec.seed, 0])
    events = []
    for _ in range(int(rng.integers(2, 7))):
        kind = str(rng.choice(["tone", "chirp", "clicks", "am"]))
        start = float(rng.uniform(0, spec.duration * 0.9))
        length = float(min(spec.duration - start, rng.uniform(0.2, 6.0)))
        params = {
            "freq": float(np.exp(rng.uniform(np.log(80), np.log(4000)))),
            "partials": int(rng.integers(1, 5)),
            "phase": float(rng.uniform(0, 2 * np.pi)),
            "f0": float(rng.uniform(100, 3000)),
            "f1": float(rng.uniform(100, 7000)),
            "rate": float(rng.uniform(2, 20)),
            "mod": float(rng.uniform(0.5, 8)),
        }
        events.append((kind, start, length, float(rng.uniform(0.2, 1.0)), params))
    gap = None
    if spec.duration > 3 and rng.random() < 0.4:
        start = float(rng.uniform(0, spec.duration - 1))
        gap = (start, float(min(spec.duration - start, rng.uniform(0.3, 2.0))))
    return {
        "noise_exponent": float(rng.choice([0.0, 1.0, 2.0])),
        "noise_level": float(rng.uniform(0.02, 0.2)),
        "events": events,
        "gap": gap,
        "peak": float(rng.uniform(0.3, 0.9)),
    }


def render(spec: ClipSpec, sampling_rate: int) -> np.ndarray:
    """The clip's waveform at `sampling_rate`: mono float32, `round(duration * rate)` samples."""
    plan = _plan(spec)
    samples = max(1, round(spec.duration * sampling_rate))
    rng = np.random.default_rng([spec.seed, sampling_rate])
    audio = plan["noise_level"] * _coloured_noise(rng, samples, plan["noise_exponent"])
    for kind, start, length, level, params in plan["events"]:
        first = int(start * sampling_rate)
        count = max(1, min(samples - first, int(length * sampling_rate)))
        audio[first : first + count] += level * _event(kind, params, count, sampling_rate, rng)
    if plan["gap"] is not None:
        first = int(plan["gap"][0] * sampling_rate)
        audio[first : first + int(plan["gap"][1] * sampling_rate)] = 0.0
    audio *= plan["peak"] / (np.abs(audio).max() + 1e-9)
    return audio.astype(np.float32)


def render_long(
    duration: float, sampling_rate: int, seed: int = SEED, segment: float = 30.0
) -> np.ndarray:
    """A long recording: consecutive `segment`-second clips rendered one by one (bounded memory)."""
    out = np.empty(max(1, round(duration * sampling_rate)), dtype=np.float32)
    count = math.ceil(duration / segment)
    rng = np.random.default_rng(seed)
    for k in range(count):
        first = round(k * segment * sampling_rate)
        last = min(out.shape[0], round((k + 1) * segment * sampling_rate))
        spec = ClipSpec(
            index=k, duration=(last - first) / sampling_rate, seed=int(rng.integers(2**31))
        )
        out[first:last] = render(spec, sampling_rate)[: last - first]
    return out


def cache_dir() -> Path:
    """Where rendered audio (and the matched-size search) is cached: `$SLAP_BENCH_CACHE`, default
    `slap_bench_cache` in the temp folder."""
    return Path(
        os.environ.get("SLAP_BENCH_CACHE", Path(tempfile.gettempdir()) / "slap_bench_cache")
    )


def load_audio(specs: Sequence[ClipSpec], sampling_rate: int) -> list[np.ndarray]:
    """`render` every clip, cached on disk (`cache_dir()`).

    Rendering the full workload takes seconds; the benchmarks start one process per
    configuration, so the parent renders once and the workers load the cached array.
    """
    key = hashlib.sha1(repr((RENDER_VERSION, sampling_rate, list(specs))).encode()).hexdigest()[:16]
    folder = cache_dir()
    path = folder / f"workload-{sampling_rate}-{key}.npy"
    if path.exists():
        flat = np.load(path)
    else:
        flat = np.concatenate([render(spec, sampling_rate) for spec in specs])
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(partial, flat)
        partial.replace(path)  # atomic: concurrent workers never read a half-written file
    sizes = [max(1, round(spec.duration * sampling_rate)) for spec in specs]
    return list(np.split(flat, np.cumsum(sizes)[:-1]))


def caption_ids(num_clips: int, vocab_size: int = 30_000, seed: int = SEED) -> np.ndarray:
    """Random caption token ids `(num_clips, CAPTION_TOKENS)` from the upper part of a vocabulary
    (clear of special tokens; 30 000 suits BERT and RoBERTa vocabularies alike).

    The text tower's cost does not depend on which tokens a caption holds, only on its length.
    """
    low = min(1000, vocab_size // 4)
    return np.random.default_rng([seed, 1]).integers(low, vocab_size, (num_clips, CAPTION_TOKENS))


def describe(specs: Sequence[ClipSpec]) -> dict:
    """Counts and total duration of a workload."""
    durations = np.array([s.duration for s in specs])
    return {
        "clips": len(specs),
        "audio_seconds": round(float(durations.sum()), 3),
        "short_1_5s": int((durations < 10).sum()),
        "exact_10s": int((durations == 10).sum()),
        "long_15_30s": int((durations > 10).sum()),
        "min_s": float(durations.min()),
        "max_s": float(durations.max()),
    }


if __name__ == "__main__":
    print(describe(workload()))
    print([s.duration for s in workload()])
