"""A sound library on disk: which files it holds, whether they changed, and their decoded audio.

`scan_library` lists the audio files under a folder (by extension, recursively, symlinks to files
followed) with the size and modification time that tell a re-index which files changed.
`read_audio` decodes one file with libsndfile, falling back to ffmpeg for what libsndfile cannot
read (the corpus decoder of `data/debian/audio_io.py`), and downmixes to mono at the file's own
rate; the feature extractor resamples.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from slap_audio.data.debian.audio_io import decode_audio

# What libsndfile or ffmpeg decode; other files in the folder (text, images) are not audio.
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au",
    ".snd", ".caf", ".w64", ".rf64", ".m4a", ".aac", ".wv", ".wma", ".webm", ".mka", ".voc",
})


@dataclass(frozen=True)
class LibraryFile:
    """One audio file of a library: its path relative to the library root, and what identifies
    its content version (a file whose size or modification time changed is embedded again)."""

    path: str  # relative to the root, "/"-separated
    size: int
    mtime_ns: int

    def as_dict(self) -> dict:
        return asdict(self)


def scan_library(root: str | os.PathLike) -> list[LibraryFile]:
    """The audio files under `root`, sorted by relative path.

    Raises:
        NotADirectoryError: if `root` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder of audio files")
    files = []
    for folder, _, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(folder) / name
            if path.suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            try:
                stat = path.stat()  # follows a symlink to a file; a dangling one is skipped
            except OSError:
                continue
            files.append(LibraryFile(path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns))
    return sorted(files, key=lambda file: file.path)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int, int]:
    """Decode a file to mono float32 samples `(samples,)` at its own rate.

    Returns `(audio, sampling_rate, channels)` (channels of the file, before the downmix).

    Raises:
        UndecodableAudio: if neither libsndfile nor ffmpeg decodes it, or it holds no samples or
            non-finite ones.
    """
    audio, rate = decode_audio(path)  # a file deleted since the scan is undecodable too
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    mono = audio if audio.ndim == 1 else audio.mean(axis=1, dtype=np.float32)  # (samples, channels)
    return np.ascontiguousarray(mono, dtype=np.float32), rate, channels
