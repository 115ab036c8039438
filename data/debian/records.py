"""The records every Debian source yields, and the protocol a source implements.

A source (soundfonts rendered with fluidsynth, a package of recorded speech, a game's sound
effects...) reads the Debian packages it names, unpacked (never installed), and yields one
`Clip` per sound it keeps and one `Skipped` per file it leaves out, with the reason. The
corpus writer (`corpus.py`) resamples, deduplicates, captions and splits them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

CATEGORIES = ("instrument", "drums", "speech", "environmental")
SIZES = ("small", "default", "full")


@dataclass(frozen=True)
class Clip:
    """One sound kept for the corpus, with everything known about it.

    `key` is unique and stable within the corpus ("<source>/<...>"): file names and resume
    use it. `audio` is float32 in [-1, 1], shaped (samples,) or (samples, channels), of any
    length and at any rate; the writer resamples it to 16 kHz mono. `group` is the unit of
    the train/test split: "<package>" or "<package>:<sub>" (a soundfont, a drum kit, a voice,
    a speaker). `attributes` holds what is known (see the design in `data/debian/__init__.py`)
    and feeds the caption templates.
    """

    key: str
    audio: np.ndarray
    sampling_rate: int
    label: str
    category: str
    source: str
    licence: str
    original_path: str
    group: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """A file a source left out, and why ("music track", "cryptic name", "undecodable"...)."""

    source: str
    original_path: str
    reason: str


class Source(Protocol):
    """A producer of clips from a few Debian packages (and the tools that render them).

    `clips(unpacked, size)` gets `unpacked[package]` = the folder its .deb was unpacked into
    and a size in `SIZES`; it must be deterministic (same order, same audio): any randomness
    comes from `np.random.default_rng` seeded with a fixed seed and a stable key hash.
    """

    name: str
    packages: tuple[str, ...]
    tools: tuple[str, ...]

    def clips(self, unpacked: Mapping[str, Path], size: str) -> Iterator[Clip | Skipped]: ...
