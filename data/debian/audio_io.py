"""Decoding and the canonical form of the corpus's audio: 16 kHz mono float32.

`decode_audio` reads any file a Debian package ships (or its bytes, e.g. a file inside a Qt
resource): libsndfile first (WAV of any bit depth including 8-bit, FLAC, Ogg Vorbis, AIFF, any
rate), ffmpeg for the rest (WavPack, Opus, MP3 without libsndfile support, odd containers).
`to_corpus_audio` downmixes and resamples with the feature extractor's own resampler, so a
corpus clip is what `SlapFeatureExtractor` would have computed from the original.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch

from slap_audio.modeling_slap.resampling import resample_waveform

CORPUS_SAMPLING_RATE = 16_000
SILENCE_DBFS = -60.0  # peak below this: a silent clip; trailing samples below it: a decayed tail


class UndecodableAudio(ValueError):
    """Raised when neither libsndfile nor ffmpeg can decode a file."""


def decode_audio(source: str | os.PathLike | bytes) -> tuple[np.ndarray, int]:
    """Decode a file (a path, or its bytes) to float32 samples in [-1, 1] and its sampling rate.

    Returns `(audio, rate)` with `audio` shaped `(samples,)` for mono and `(samples, channels)`
    otherwise, at the file's own rate. Raises `UndecodableAudio` if no decoder reads it."""
    import soundfile

    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else source
        audio, rate = soundfile.read(handle, dtype="float32", always_2d=False)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        libsndfile_error = error
    else:
        return _checked(audio, rate, source)
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise UndecodableAudio(f"{_name(source)}: {libsndfile_error} (and ffmpeg is not installed)")
    return _checked(*_decode_with_ffmpeg(source), source)


def _decode_with_ffmpeg(source: str | os.PathLike | bytes) -> tuple[np.ndarray, int]:
    data = source if isinstance(source, bytes) else None
    target = "pipe:0" if data is not None else str(Path(source))
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=sample_rate,channels",
            "-of",
            "json",
            target,
        ],
        input=data,
        capture_output=True,
        check=False,
    )
    streams = json.loads(probe.stdout or b"{}").get("streams") or []
    if probe.returncode != 0 or not streams:
        raise UndecodableAudio(
            f"{_name(source)}: no audio stream ({probe.stderr.decode(errors='replace').strip()})"
        )
    rate, channels = int(streams[0]["sample_rate"]), int(streams[0]["channels"])
    decoded = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-i",
            target,
            "-map",
            "0:a:0",
            "-f",
            "f32le",
            "-acodec",
            "pcm_f32le",
            "-ar",
            str(rate),
            "-ac",
            str(channels),
            "pipe:1",
        ],
        input=data,
        capture_output=True,
        check=False,
    )
    if decoded.returncode != 0:
        raise UndecodableAudio(
            f"{_name(source)}: ffmpeg: {decoded.stderr.decode(errors='replace').strip()}"
        )
    audio = np.frombuffer(decoded.stdout, dtype="<f4").copy()
    audio = audio[: len(audio) // channels * channels].reshape(-1, channels)
    return (audio[:, 0] if channels == 1 else audio), rate


def _checked(
    audio: np.ndarray, rate: int, source: str | os.PathLike | bytes
) -> tuple[np.ndarray, int]:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size == 0:
        raise UndecodableAudio(f"{_name(source)}: no samples")
    if not np.isfinite(audio).all():
        raise UndecodableAudio(f"{_name(source)}: non-finite samples")
    return np.clip(audio, -1.0, 1.0), int(rate)


def _name(source: str | os.PathLike | bytes) -> str:
    return f"<{len(source)} bytes>" if isinstance(source, bytes) else str(source)


def to_corpus_audio(audio: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Downmix to mono (channel mean) and resample to `CORPUS_SAMPLING_RATE`; float32 in [-1, 1]."""
    audio = np.asarray(audio, dtype=np.float32)
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    resampled = resample_waveform(
        torch.from_numpy(np.ascontiguousarray(mono)), int(sampling_rate), CORPUS_SAMPLING_RATE
    )
    return np.clip(resampled.numpy(), -1.0, 1.0).astype(np.float32)


def peak_dbfs(audio: np.ndarray) -> float:
    """Peak level in dBFS (`-inf` for digital silence)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def trim_trailing_silence(audio: np.ndarray, threshold_dbfs: float = SILENCE_DBFS) -> np.ndarray:
    """Cut the tail after the last sample louder than `threshold_dbfs` (a decayed note's tail)."""
    loud = np.flatnonzero(
        (np.abs(audio) if audio.ndim == 1 else np.abs(audio).max(axis=1))
        > 10 ** (threshold_dbfs / 20)
    )
    return audio[: loud[-1] + 1] if loud.size else audio[:0]
