"""Sound-event synthesisers for the built-in procedural audio–caption data (SPEC §7).

Each `EventKind` draws its parameters from a seeded `numpy.random.Generator` (`sample`) and
renders them as a mono float64 waveform at 16 kHz (`render`). Parameters are plain JSON types
(they end up in the dataset's `events` column and drive the caption writer); everything that is
heard is decided by the parameters plus the generator handed to `render`, so a clip can be
re-rendered from its seed alone.

Rendering uses plain numpy arithmetic (sin/exp/cumsum/FFT) and no global RNG. Levels are applied
by the mixer (`builtin_data.py`), which first normalises each event with `frame_loudness`.

Pitches are white-key MIDI notes so that captions can name them ("A4", "a D minor chord").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SAMPLING_RATE = 16_000
TWO_PI = 2.0 * np.pi
NOTE_LETTERS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
WHITE_KEY_OFFSETS = (0, 2, 4, 5, 7, 9, 11)
LOUDNESS_FRAME = 320  # 20 ms frames: loudness = RMS of the loudest frame


# ---------------------------------------------------------------------------------------------
# helpers


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12.0)


def note_name(midi: int) -> str:
    """`note_name(69) == "A4"` (scientific pitch notation)."""
    return f"{NOTE_LETTERS[midi % 12]}{midi // 12 - 1}"


def _white_key(rng: np.random.Generator, low: int, high: int) -> int:
    keys = [m for m in range(low, high + 1) if m % 12 in WHITE_KEY_OFFSETS]
    return int(keys[rng.integers(len(keys))])


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _duration(rng: np.random.Generator, low: float, high: float, max_duration: float) -> float:
    """Log-uniform duration in [low, min(high, max_duration)], rounded to whole milliseconds."""
    high = max(low, min(high, max_duration))
    return round(_log_uniform(rng, low, high), 3)


def _num_samples(seconds: float) -> int:
    return max(1, int(round(seconds * SAMPLING_RATE)))


def _time(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64) / SAMPLING_RATE


def _fade(x: np.ndarray, attack: float = 0.01, release: float = 0.01) -> np.ndarray:
    """Linear fade-in/out (seconds) so events start and stop without a click."""
    a = min(_num_samples(attack), len(x) // 2)
    r = min(_num_samples(release), len(x) // 2)
    if a > 0:
        x[:a] *= np.linspace(0.0, 1.0, a, endpoint=False)
    if r > 0:
        x[len(x) - r :] *= np.linspace(1.0, 0.0, r, endpoint=False)
    return x


def _place(n: int, onsets: list[float], sound: np.ndarray) -> np.ndarray:
    """Add copies of `sound` at each onset (seconds) into a silent buffer of n samples."""
    out = np.zeros(n)
    for onset in onsets:
        start = int(round(onset * SAMPLING_RATE))
        if start >= n:  # a jittered last beat can land past the end
            continue
        stop = min(n, start + len(sound))
        out[start:stop] += sound[: stop - start]
    return out


def _fft_size(n: int) -> int:
    """Smallest 2^a * 3^b * 5^c >= n (fast sizes for numpy's FFT)."""
    best = 1 << max(0, int(np.ceil(np.log2(max(n, 1)))))
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            size = power35
            while size < n:
                size *= 2
            best = min(best, size)
            power35 *= 3
        power5 *= 5
    return best


def _noise_spectrum(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Spectrum of white Gaussian noise of a fast FFT size >= n, with its bin frequencies (Hz).
    Single precision: plenty for noise, and twice as fast."""
    size = _fft_size(n)
    frequency = np.fft.rfftfreq(size, 1.0 / SAMPLING_RATE).astype(np.float32)
    return np.fft.rfft(rng.standard_normal(size, dtype=np.float32)), frequency, size


def _shaped_noise(rng: np.random.Generator, n: int, weight: Callable[[np.ndarray], np.ndarray]):
    """White Gaussian noise filtered in the frequency domain by `weight(frequency_hz)`."""
    spectrum, frequency, size = _noise_spectrum(rng, n)
    return np.fft.irfft(spectrum * weight(frequency), size)[:n]


def _smooth_envelope(rng: np.random.Generator, n: int, rate: float, low: float = 0.2) -> np.ndarray:
    """Piecewise-linear random envelope in [low, 1] with one control point per 1/rate s."""
    points = int(np.ceil(n / SAMPLING_RATE * rate)) + 2
    values = rng.uniform(low, 1.0, points)
    return np.interp(_time(n) * rate, np.arange(points, dtype=np.float64), values)


def _harmonics(phase: np.ndarray, amplitudes: tuple[float, ...]) -> np.ndarray:
    """sum_k amplitudes[k-1] * sin(k * phase), with one sin and one cos in all (Chebyshev
    recurrence sin((k+1)x) = 2 cos(x) sin(kx) - sin((k-1)x))."""
    previous, current = np.zeros_like(phase), np.sin(phase)
    two_cos = 2.0 * np.cos(phase) if len(amplitudes) > 1 else None
    out = amplitudes[0] * current
    for amplitude in amplitudes[1:]:
        previous, current = current, two_cos * current - previous
        out += amplitude * current
    return out


def _phase(frequency: np.ndarray) -> np.ndarray:
    """Instantaneous phase (radians) of a time-varying frequency track (Hz)."""
    return TWO_PI * np.cumsum(frequency) / SAMPLING_RATE


def frame_loudness(x: np.ndarray) -> float:
    """RMS of the loudest 20 ms frame: one loudness scale for tones, noises and clicks."""
    pad = (-len(x)) % LOUDNESS_FRAME
    frames = np.concatenate([x, np.zeros(pad)]).reshape(-1, LOUDNESS_FRAME)
    return float(np.sqrt(np.max(np.mean(frames * frames, axis=1))))


# ---------------------------------------------------------------------------------------------
# event kinds: sample(rng, max_duration) -> params (always with "duration");
#              render(params, rng) -> float64 waveform of round(duration * 16 kHz) samples


def _sample_hum(rng, max_duration):
    return {
        "duration": _duration(rng, 1.0, 20.0, max_duration),
        "midi": _white_key(rng, 28, 52),
        "harmonics": int(rng.integers(3, 7)),
    }


def _render_hum(p, rng):
    phase = TWO_PI * midi_to_hz(p["midi"]) * _time(_num_samples(p["duration"])) + rng.uniform(
        0, TWO_PI
    )
    x = _harmonics(phase, tuple(1.0 / k for k in range(1, p["harmonics"] + 1)))
    return _fade(x, 0.05, 0.05)


def _sample_tone(rng, max_duration):
    return {"duration": _duration(rng, 0.3, 15.0, max_duration), "midi": _white_key(rng, 60, 96)}


def _render_tone(p, rng):
    return _fade(np.sin(TWO_PI * midi_to_hz(p["midi"]) * _time(_num_samples(p["duration"]))))


def _sample_whistle(rng, max_duration):
    return {
        "duration": _duration(rng, 0.3, 6.0, max_duration),
        "midi": _white_key(rng, 88, 103),
        "vibrato_hz": round(rng.uniform(4.0, 7.0), 2),
    }


def _render_whistle(p, rng):
    n = _num_samples(p["duration"])
    freq = midi_to_hz(p["midi"]) * (1.0 + 0.012 * np.sin(TWO_PI * p["vibrato_hz"] * _time(n)))
    breath = 0.03 * rng.standard_normal(n)
    return _fade(np.sin(_phase(freq)) + breath, 0.04, 0.06)


def _sample_chord(rng, max_duration):
    return {
        "duration": _duration(rng, 0.5, 12.0, max_duration),
        "root": _white_key(rng, 48, 72),
        "quality": str(rng.choice(["major", "minor"])),
    }


def _render_chord(p, rng):
    t = _time(_num_samples(p["duration"]))
    third = 4 if p["quality"] == "major" else 3
    x = np.zeros_like(t)
    for semitones in (0, third, 7):
        phase = TWO_PI * midi_to_hz(p["root"] + semitones) * t + rng.uniform(0, TWO_PI)
        x += _harmonics(phase, (1.0, 0.4, 0.2))
    return _fade(x, 0.02, 0.1)


def _noise_sampler(low: float, high: float):
    def sample(rng, max_duration):
        return {"duration": _duration(rng, low, high, max_duration)}

    return sample


def _render_white_noise(p, rng):
    return _fade(rng.standard_normal(_num_samples(p["duration"]), dtype=np.float32))


def _render_pink_noise(p, rng):
    return _fade(
        _shaped_noise(
            rng, _num_samples(p["duration"]), lambda f: (f > 0) / np.sqrt(np.maximum(f, 20.0))
        )
    )


def _render_brown_noise(p, rng):
    return _fade(
        _shaped_noise(rng, _num_samples(p["duration"]), lambda f: (f > 0) / np.maximum(f, 20.0)),
        0.05,
        0.05,
    )


def _chirp_sampler(direction: str):
    def sample(rng, max_duration):
        low = _log_uniform(rng, 100.0, 800.0)
        high = min(7000.0, low * rng.uniform(3.0, 12.0))
        chirp = _duration(rng, 0.15, 4.0, max_duration)
        count, gap = 1, 0.0
        if chirp < 0.6:
            gap = round(rng.uniform(0.1, 0.3), 3)
            fits = int((max_duration + gap) // (chirp + gap))
            count = int(rng.integers(1, max(1, min(3, fits)) + 1))
        start, end = (low, high) if direction == "up" else (high, low)
        return {
            "duration": round(count * chirp + (count - 1) * gap, 3),
            "count": count,
            "chirp_duration": chirp,
            "gap": gap,
            "f_start": round(start, 1),
            "f_end": round(end, 1),
        }

    return sample


def _render_chirp(p, rng):
    n_chirp = _num_samples(p["chirp_duration"])
    t = _time(n_chirp)
    ratio = p["f_end"] / p["f_start"]
    # exponential sweep: f(t) = f_start * ratio**(t/T)
    phase = (
        TWO_PI
        * p["f_start"]
        * p["chirp_duration"]
        / np.log(ratio)
        * (ratio ** (t / p["chirp_duration"]) - 1)
    )
    chirp = _fade(np.sin(phase), 0.005, 0.01)
    onsets = [k * (p["chirp_duration"] + p["gap"]) for k in range(p["count"])]
    return _place(_num_samples(p["duration"]), onsets, chirp)


def _click_sound(rng) -> np.ndarray:
    t = _time(_num_samples(0.008))
    return np.exp(-t / 0.0012) * (
        np.sin(TWO_PI * rng.uniform(2200, 3500) * t) + 0.5 * rng.standard_normal(len(t))
    )


def _sample_clicks(rng, max_duration):
    if max_duration < 1.0 or rng.random() < 0.5:  # a countable handful of clicks
        interval = round(rng.uniform(0.12, 0.6), 3)
        count = int(rng.integers(1, 9))
        count = max(1, min(count, int((max_duration - 0.05) // interval) + 1))
        return {
            "duration": round((count - 1) * interval + 0.05, 3),
            "mode": "count",
            "count": count,
            "interval": interval,
        }
    return {
        "duration": _duration(rng, 1.0, 10.0, max_duration),
        "mode": "rate",
        "rate": round(_log_uniform(rng, 1.0, 40.0), 2),
    }


def _render_clicks(p, rng):
    n = _num_samples(p["duration"])
    if p["mode"] == "count":
        onsets = [k * p["interval"] for k in range(p["count"])]
    else:
        period = 1.0 / p["rate"]
        beats = np.arange(int(p["duration"] / period) + 1) * period
        onsets = list(np.clip(beats + rng.uniform(-0.02, 0.02, len(beats)) * period, 0.0, None))
    return _place(n, onsets, _click_sound(rng))


def _sample_beeps(rng, max_duration):
    beep, gap = (
        round(min(rng.uniform(0.06, 0.5), max_duration), 3),
        round(rng.uniform(0.06, 0.4), 3),
    )
    count = int(rng.integers(1, 7))
    count = max(1, min(count, int((max_duration + gap) // (beep + gap))))
    return {
        "duration": round(count * beep + (count - 1) * gap, 3),
        "count": count,
        "beep_duration": beep,
        "gap": gap,
        "midi": _white_key(rng, 72, 96),
    }


def _render_beeps(p, rng):
    phase = TWO_PI * midi_to_hz(p["midi"]) * _time(_num_samples(p["beep_duration"]))
    beep = _fade(np.sin(phase) + 0.2 * np.sin(3 * phase), 0.005, 0.005)
    onsets = [k * (p["beep_duration"] + p["gap"]) for k in range(p["count"])]
    return _place(_num_samples(p["duration"]), onsets, beep)


def _sample_siren(rng, max_duration):
    mode = str(rng.choice(["wail", "hilo"]))
    low = rng.uniform(450.0, 900.0)
    high = low * (rng.uniform(1.3, 2.2) if mode == "wail" else rng.uniform(1.2, 1.5))
    rate = rng.uniform(0.2, 1.2) if mode == "wail" else rng.uniform(0.8, 2.0)
    return {
        "duration": _duration(rng, 1.5, 15.0, max_duration),
        "mode": mode,
        "f_low": round(low, 1),
        "f_high": round(high, 1),
        "rate": round(rate, 3),
    }


def _render_siren(p, rng):
    t = _time(_num_samples(p["duration"]))
    cycle = (t * p["rate"]) % 1.0
    if p["mode"] == "wail":
        sweep = 0.5 - 0.5 * np.cos(TWO_PI * cycle)
    else:  # two alternating pitches
        sweep = (cycle >= 0.5).astype(np.float64)
    phase = _phase(p["f_low"] + (p["f_high"] - p["f_low"]) * sweep)
    return _fade(_harmonics(phase, (1.0, 0.3, 0.15)), 0.05, 0.1)


def _sample_tremolo(rng, max_duration):
    return {
        "duration": _duration(rng, 1.0, 12.0, max_duration),
        "midi": _white_key(rng, 55, 84),
        "rate": round(_log_uniform(rng, 2.0, 12.0), 2),
        "depth": round(rng.uniform(0.6, 1.0), 2),
    }


def _render_tremolo(p, rng):
    t = _time(_num_samples(p["duration"]))
    gain = 1.0 - p["depth"] * (0.5 - 0.5 * np.cos(TWO_PI * p["rate"] * t))
    return _fade(np.sin(TWO_PI * midi_to_hz(p["midi"]) * t + rng.uniform(0, TWO_PI)) * gain)


def _sample_vibrato(rng, max_duration):
    return {
        "duration": _duration(rng, 1.0, 12.0, max_duration),
        "midi": _white_key(rng, 55, 84),
        "rate": round(rng.uniform(4.0, 8.0), 2),
        "depth": round(rng.uniform(0.015, 0.06), 3),
    }


def _render_vibrato(p, rng):
    t = _time(_num_samples(p["duration"]))
    freq = midi_to_hz(p["midi"]) * (
        1.0 + p["depth"] * np.sin(TWO_PI * p["rate"] * t + rng.uniform(0, TWO_PI))
    )
    phase = _phase(freq)
    return _fade(np.sin(phase) + 0.25 * np.sin(2 * phase))


# Risset's bell: inharmonic partial ratios, amplitudes and relative decay times
BELL_PARTIALS = (
    (0.56, 1.0, 1.0),
    (0.92, 0.67, 0.9),
    (1.19, 1.0, 0.65),
    (1.7, 1.8, 0.55),
    (2.0, 2.67, 0.325),
    (2.74, 1.67, 0.35),
    (3.0, 1.46, 0.25),
    (3.76, 1.33, 0.2),
    (4.07, 1.33, 0.15),
)


def _sample_bell(rng, max_duration):
    tail, interval = round(rng.uniform(1.0, 2.5), 3), round(rng.uniform(0.4, 1.2), 3)
    tail = min(tail, max_duration)
    strikes = int(rng.integers(1, 5))
    strikes = max(1, min(strikes, int((max_duration - tail) // interval) + 1))
    return {
        "duration": round((strikes - 1) * interval + tail, 3),
        "strikes": strikes,
        "interval": interval,
        "tail": tail,
        "midi": _white_key(rng, 60, 88),
    }


def _render_bell(p, rng):
    t = _time(_num_samples(p["tail"]))
    f0 = midi_to_hz(p["midi"])
    strike = sum(
        amp * np.exp(-t / (0.5 * p["tail"] * decay)) * np.sin(TWO_PI * f0 * ratio * t)
        for ratio, amp, decay in BELL_PARTIALS
    )
    strike = _fade(strike, 0.002, 0.05)
    return _place(
        _num_samples(p["duration"]), [k * p["interval"] for k in range(p["strikes"])], strike
    )


def _sample_drum(rng, max_duration):
    decay, interval = (
        round(min(rng.uniform(0.08, 0.25), max_duration / 5), 3),
        round(rng.uniform(0.2, 0.7), 3),
    )
    count = int(rng.integers(1, 9))
    count = max(1, min(count, int((max_duration - 5 * decay) // interval) + 1))
    return {
        "duration": round((count - 1) * interval + 5 * decay, 3),
        "count": count,
        "interval": interval,
        "decay": decay,
        "f_start": round(rng.uniform(100.0, 180.0), 1),
        "f_end": round(rng.uniform(40.0, 60.0), 1),
    }


def _render_drum(p, rng):
    t = _time(_num_samples(5 * p["decay"]))
    freq = p["f_end"] + (p["f_start"] - p["f_end"]) * np.exp(-t / 0.04)  # pitch drops after the hit
    hit = np.sin(_phase(freq)) * np.exp(-t / p["decay"]) + 0.3 * rng.standard_normal(
        len(t)
    ) * np.exp(-t / 0.002)
    hit = _fade(hit, 0.001, 0.02)
    return _place(_num_samples(p["duration"]), [k * p["interval"] for k in range(p["count"])], hit)


def _sample_rain(rng, max_duration):
    return {
        "duration": _duration(rng, 1.0, 20.0, max_duration),
        "density": round(_log_uniform(rng, 30.0, 600.0), 1),
    }


def _render_rain(p, rng):
    n = _num_samples(p["duration"])
    drops = rng.poisson(p["density"] * p["duration"])
    impulses = np.bincount(
        rng.integers(0, n, drops), weights=rng.exponential(1.0, drops), minlength=n
    )
    t = _time(_num_samples(0.004))
    kernel = np.exp(-t / 0.0008) * (np.sin(TWO_PI * 2300.0 * t) + np.sin(TWO_PI * 4700.0 * t))
    patter = np.convolve(impulses, kernel)[:n]
    hiss = _shaped_noise(rng, n, lambda f: f / (f + 2000.0))
    return _fade(patter / (np.std(patter) + 1e-12) + 0.4 * hiss / (np.std(hiss) + 1e-12), 0.1, 0.1)


def _sample_wind(rng, max_duration):
    return {
        "duration": _duration(rng, 2.0, 20.0, max_duration),
        "centre_hz": round(_log_uniform(rng, 250.0, 1200.0), 1),
        "gust_rate": round(rng.uniform(0.15, 0.8), 3),
    }


def _render_wind(p, rng):
    n = _num_samples(p["duration"])
    spectrum, frequency, size = _noise_spectrum(rng, n)
    octaves = np.log2(np.maximum(frequency, 1.0) / p["centre_hz"])
    x = np.zeros(n)
    for shift in (-1.0, 0.0, 1.0):  # three octave bands whose gusts move the perceived centre
        band = np.fft.irfft(spectrum * np.exp(-0.5 * ((octaves - shift) / 0.35) ** 2), size)[:n]
        x += band / (np.std(band) + 1e-12) * _smooth_envelope(rng, n, p["gust_rate"], low=0.05)
    return _fade(x, 0.3, 0.3)


def _sample_buzz(rng, max_duration):
    return {
        "duration": _duration(rng, 0.3, 10.0, max_duration),
        "midi": _white_key(rng, 36, 60),
        "wave": str(rng.choice(["sawtooth", "square"])),
    }


def _render_buzz(p, rng):
    cycle = (midi_to_hz(p["midi"]) * _time(_num_samples(p["duration"])) + rng.random()) % 1.0
    x = 2.0 * cycle - 1.0 if p["wave"] == "sawtooth" else np.where(cycle < 0.5, 1.0, -1.0)
    return _fade(np.convolve(x, [0.25, 0.5, 0.25], mode="same"))


def _sample_engine(rng, max_duration):
    return {
        "duration": _duration(rng, 1.5, 15.0, max_duration),
        "rate": round(rng.uniform(12.0, 35.0), 2),
        "mode": str(rng.choice(["idle", "revving"])),
        "rev_factor": round(rng.uniform(1.6, 2.6), 2),
    }


def _render_engine(p, rng):
    n = _num_samples(p["duration"])
    t = _time(n)
    rate = np.full(n, p["rate"])
    if p["mode"] == "revving":
        rate *= 1.0 + (p["rev_factor"] - 1.0) * np.clip(t / (0.7 * p["duration"]), 0.0, 1.0)
    rate *= 1.0 + 0.03 * (_smooth_envelope(rng, n, 4.0, low=0.0) - 0.5)
    cycle = (np.cumsum(rate) / SAMPLING_RATE) % 1.0
    firing = np.exp(-8.0 * cycle)  # one decaying pressure pulse per cylinder firing
    rumble = _shaped_noise(rng, n, lambda f: (f > 0) / np.maximum(f, 30.0))
    x = (firing - firing.mean()) + 0.5 * firing * rumble / (np.std(rumble) + 1e-12)
    return _fade(np.convolve(x, np.full(16, 1.0 / 16), mode="same"), 0.1, 0.2)


def _sample_heartbeat(rng, max_duration):
    bpm = round(rng.uniform(50.0, 140.0), 1)
    period = 60.0 / bpm
    beats = max(2, int(_duration(rng, 2.0, 15.0, max_duration) / period))
    beats = max(1, min(beats, int(max_duration / period)))
    return {"duration": round(beats * period, 3), "bpm": bpm, "beats": beats}


def _render_heartbeat(p, rng):
    t = _time(_num_samples(0.15))
    lub = np.sin(TWO_PI * rng.uniform(45.0, 60.0) * t) * np.exp(-t / 0.035)
    dub = 0.7 * np.sin(TWO_PI * rng.uniform(60.0, 80.0) * t) * np.exp(-t / 0.03)
    beat = _place(_num_samples(0.45), [0.0], _fade(lub, 0.003, 0.02)) + _place(
        _num_samples(0.45), [0.28], _fade(dub, 0.003, 0.02)
    )
    period = 60.0 / p["bpm"]
    return _place(_num_samples(p["duration"]), [k * period for k in range(p["beats"])], beat)


def _sample_phone(rng, max_duration):
    ring, gap = round(rng.uniform(0.6, 1.5), 3), round(rng.uniform(0.4, 1.2), 3)
    ring = min(ring, max_duration)
    rings = int(rng.integers(1, 5))
    rings = max(1, min(rings, int((max_duration + gap) // (ring + gap))))
    return {
        "duration": round(rings * ring + (rings - 1) * gap, 3),
        "rings": rings,
        "ring_duration": ring,
        "gap": gap,
        "style": str(rng.choice(["classic", "electronic"])),
        "warble_hz": round(rng.uniform(16.0, 25.0), 2),
    }


def _render_phone(p, rng):
    t = _time(_num_samples(p["ring_duration"]))
    if p["style"] == "classic":  # the dual 440 + 480 Hz ring
        ring = np.sin(TWO_PI * 440.0 * t) + np.sin(TWO_PI * 480.0 * t)
    else:  # two tones alternating at the warble rate
        base = rng.uniform(1000.0, 1400.0)
        ring = np.sin(_phase(base * (1.0 + 0.25 * (((t * p["warble_hz"]) % 1.0) >= 0.5))))
    onsets = [k * (p["ring_duration"] + p["gap"]) for k in range(p["rings"])]
    return _place(_num_samples(p["duration"]), onsets, _fade(ring, 0.01, 0.02))


def _sample_trill(rng, max_duration):
    return {
        "duration": _duration(rng, 0.4, 4.0, max_duration),
        "midi": _white_key(rng, 81, 98),
        "interval": int(rng.integers(1, 4)),
        "rate": round(rng.uniform(8.0, 16.0), 2),
    }


def _render_trill(p, rng):
    t = _time(_num_samples(p["duration"]))
    position = t * p["rate"] * 2.0  # two notes per trill cycle
    upper = (np.floor(position) % 2.0) * p["interval"]
    freq = midi_to_hz(p["midi"]) * 2.0 ** (upper / 12.0)
    bumps = 0.5 - 0.5 * np.cos(TWO_PI * (position % 1.0))
    return _fade(np.sin(_phase(freq) + rng.uniform(0, TWO_PI)) * bumps)


MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)


def _sample_melody(rng, max_duration):
    note = round(min(rng.uniform(0.12, 0.45), max_duration / 3), 3)  # at least three notes fit
    notes = int(rng.integers(3, 7))
    notes = max(1, min(notes, int(max_duration // note)))
    return {
        "duration": round(notes * note, 3),
        "notes": notes,
        "note_duration": note,
        "start_midi": _white_key(rng, 60, 79),
        "contour": str(rng.choice(["rising", "falling", "arch"])),
    }


def melody_pitches(p: dict) -> list[int]:
    """MIDI notes of a melody event: steps along the C-major scale following its contour."""
    degree = [i for i, s in enumerate(MAJOR_SCALE) if s == p["start_midi"] % 12][0] + 7 * (
        p["start_midi"] // 12
    )
    if p["contour"] == "rising":
        steps = list(range(p["notes"]))
    elif p["contour"] == "falling":
        steps = [-k for k in range(p["notes"])]
    else:  # arch: up, then back down
        top = (p["notes"] + 1) // 2
        steps = list(range(top)) + [top - 2 - k for k in range(p["notes"] - top)]
    return [(d // 7) * 12 + MAJOR_SCALE[d % 7] for d in (degree + s for s in steps)]


def _render_melody(p, rng):
    t = _time(_num_samples(p["note_duration"]))
    out = []
    for midi in melody_pitches(p):
        phase = TWO_PI * midi_to_hz(midi) * t
        out.append(
            _fade(
                (np.sin(phase) + 0.3 * np.sin(2 * phase)) * np.exp(-t / (0.6 * p["note_duration"])),
                0.005,
                0.01,
            )
        )
    x = np.concatenate(out)
    return np.concatenate([x, np.zeros(max(0, _num_samples(p["duration"]) - len(x)))])[
        : _num_samples(p["duration"])
    ]


# ---------------------------------------------------------------------------------------------
# registry


@dataclass(frozen=True)
class EventKind:
    """One kind of sound event: its class label, parameter sampler and renderer."""

    name: str  # identifier used in params/events, e.g. "chirp_up"
    label: str  # zero-shot class name, e.g. "rising chirp"
    sample: Callable[[np.random.Generator, float], dict]  # (rng, max_duration) -> params
    render: Callable[[dict, np.random.Generator], np.ndarray]  # (params, rng) -> waveform
    min_duration: float  # the sampler needs at least this many seconds
    texture: bool = False  # can be a background bed that plays under other events
    stretchable: bool = False  # any duration is natural (used for simultaneous companions)


EVENT_KINDS: dict[str, EventKind] = {
    k.name: k
    for k in [
        EventKind("hum", "hum", _sample_hum, _render_hum, 1.0, texture=True, stretchable=True),
        EventKind("tone", "pure tone", _sample_tone, _render_tone, 0.3, stretchable=True),
        EventKind("whistle", "whistle", _sample_whistle, _render_whistle, 0.3, stretchable=True),
        EventKind("chord", "chord", _sample_chord, _render_chord, 0.5, stretchable=True),
        EventKind(
            "white_noise",
            "white noise",
            _noise_sampler(0.3, 20.0),
            _render_white_noise,
            0.3,
            texture=True,
            stretchable=True,
        ),
        EventKind(
            "pink_noise",
            "pink noise",
            _noise_sampler(0.5, 20.0),
            _render_pink_noise,
            0.5,
            texture=True,
            stretchable=True,
        ),
        EventKind(
            "brown_noise",
            "brown noise",
            _noise_sampler(0.5, 20.0),
            _render_brown_noise,
            0.5,
            texture=True,
            stretchable=True,
        ),
        EventKind("chirp_up", "rising chirp", _chirp_sampler("up"), _render_chirp, 0.15),
        EventKind("chirp_down", "falling chirp", _chirp_sampler("down"), _render_chirp, 0.15),
        EventKind("clicks", "clicking", _sample_clicks, _render_clicks, 0.05),
        EventKind("beeps", "beeping", _sample_beeps, _render_beeps, 0.06),
        EventKind("siren", "siren", _sample_siren, _render_siren, 1.5, stretchable=True),
        EventKind("tremolo", "tremolo", _sample_tremolo, _render_tremolo, 1.0, stretchable=True),
        EventKind("vibrato", "vibrato", _sample_vibrato, _render_vibrato, 1.0, stretchable=True),
        EventKind("bell", "bell", _sample_bell, _render_bell, 1.0),
        EventKind("drum", "drum", _sample_drum, _render_drum, 0.4),
        EventKind("rain", "rain", _sample_rain, _render_rain, 1.0, texture=True, stretchable=True),
        EventKind("wind", "wind", _sample_wind, _render_wind, 2.0, texture=True, stretchable=True),
        EventKind("buzz", "buzz", _sample_buzz, _render_buzz, 0.3, texture=True, stretchable=True),
        EventKind(
            "engine", "engine", _sample_engine, _render_engine, 1.5, texture=True, stretchable=True
        ),
        EventKind("heartbeat", "heartbeat", _sample_heartbeat, _render_heartbeat, 1.3),
        EventKind("phone", "telephone ring", _sample_phone, _render_phone, 0.6),
        EventKind("trill", "trill", _sample_trill, _render_trill, 0.4),
        EventKind("melody", "melody", _sample_melody, _render_melody, 0.4),
    ]
}


def set_duration(kind: str, params: dict, duration: float) -> dict:
    """Params of a stretchable event re-timed to `duration` seconds (beds and companions)."""
    if not EVENT_KINDS[kind].stretchable:
        raise ValueError(f"event kind {kind!r} has a natural length and cannot be stretched")
    return dict(params, duration=round(duration, 3))
