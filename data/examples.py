"""One audio–caption example: decoding audio, reading captions and labels, counting skipped items.

Every data source of `data/sources.py` turns its rows into examples of one schema::

    {"audio": {"array": float32 ndarray (samples,) or (samples, channels), "sampling_rate": int},
     "captions": list[str], "label": str | None, "category": str | None, "attributes": dict,
     "duration": float, "clip_id": str, "skip_reason": None}

`category` (a coarse class: "instrument", "speech"...) and `attributes` (what else a row knows:
`{"family": "piano", "language": "Italian", ...}`, `{}` when nothing) are carried through from the
rows' `category` / `attributes` columns for evaluation by any field (`eval/cli.py`); training reads
neither.

An item that cannot be used never raises: it becomes `{"audio": None, ..., "skip_reason": reason}`
(reasons: `missing_file`, `undecodable`, `empty_audio`, `non_finite_audio`, `no_text`,
`bad_metadata`), which `SlapCollator` drops and counts in a `SkipStats`. Only what a broken item
can raise is caught (`DECODE_ERRORS` from the decoder, `SkippedItem` from our checks): a bug in
this code still raises.

Audio is decoded with soundfile from a path, `{"bytes"|"path"}` (the storage of a `datasets.Audio`
column) or `{"array", "sampling_rate"}`; `datasets`' own decoder (torchcodec) is not used.
Label-only rows get one caption per keyword template (`CAPTION_TEMPLATES`, LAION-CLAP's
keyword-to-caption); the collator draws one per (seed, epoch, clip).
"""

from __future__ import annotations

import io
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import soundfile

EXAMPLE_COLUMNS = ("audio", "captions", "label", "category", "attributes", "duration", "clip_id", "skip_reason")
# Keyword-to-caption templates for label-only data; `{label}` is the label text ("dog and rain").
CAPTION_TEMPLATES = (
    "The sound of {label}.",
    "{label} can be heard.",
    "A recording of {label}.",
    "An audio clip of {label}.",
    "This is the sound of {label}.",
    "{label} is heard in this recording.",
    "A clip in which {label} can be heard.",
    "There is the sound of {label}.",
)

# Skip reasons (keys of `SkipStats.counts`).
MISSING_FILE = "missing_file"
UNDECODABLE = "undecodable"
EMPTY_AUDIO = "empty_audio"
NON_FINITE = "non_finite_audio"
NO_TEXT = "no_text"
BAD_METADATA = "bad_metadata"

# What soundfile raises for a file it cannot read: its own errors (`LibsndfileError`), OS and
# end-of-file errors, and TypeError / ValueError for a format it cannot know (headerless RAW
# needs a rate). Caught only around the soundfile call itself, whose arguments are constants.
DECODE_ERRORS = (soundfile.SoundFileError, RuntimeError, OSError, EOFError, TypeError, ValueError)

# Column names tried in order when a mapping leaves a column unset.
AUDIO_COLUMNS = ("audio", "file_name", "path", "audio_path", "filepath")
CAPTION_COLUMNS = ("captions", "caption", "text")
LABEL_COLUMNS = ("label", "labels")
CLIP_ID_COLUMNS = ("clip_id", "id")
DURATION_COLUMNS = ("duration",)
CATEGORY_COLUMN = "category"
ATTRIBUTES_COLUMN = "attributes"


@dataclass
class SkipStats:
    """Items skipped, counted by reason, with the first few clip ids of each reason.

    Several counters (load time, collators in DataLoader workers) merge with `update`.
    """

    max_examples: int = 5
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, clip_id: str | None = None) -> None:
        self.counts[reason] += 1
        ids = self.examples.setdefault(reason, [])
        if clip_id is not None and len(ids) < self.max_examples:
            ids.append(str(clip_id))

    def update(self, other: SkipStats | Mapping[str, int]) -> None:
        """Add another `SkipStats` (counts and example ids) or a plain {reason: count} mapping."""
        counts = other.counts if isinstance(other, SkipStats) else other
        for reason, count in counts.items():
            self.counts[reason] += int(count)
            ids = self.examples.setdefault(reason, [])
            if isinstance(other, SkipStats):
                ids.extend(other.examples.get(reason, [])[: self.max_examples - len(ids)])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "counts": dict(self.counts), "examples": dict(self.examples)}

    def summary(self) -> str:
        """One line for a log: `skipped 3 items: missing_file=2 (a.wav, b.wav); no_text=1 (c.wav)`."""
        if not self.total:
            return "skipped 0 items"
        parts = [f"{reason}={count} ({', '.join(self.examples.get(reason, []))})"
                 for reason, count in sorted(self.counts.items())]
        return f"skipped {self.total} items: " + "; ".join(parts)


# `(total_frames, sampling_rate) -> (start, frames)`: the part of a clip to decode (`frames=-1`: to
# the end); `SlapCollator.window_for` gives a training crop's window.
CropWindow = Callable[[int, int], tuple[int, int]]


class SkippedItem(Exception):
    """An item that cannot be used; `reason` is one of the skip reasons above."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# audio: probe (header only) and decode


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _sampling_rate(value: Any) -> int:
    """A stored or decoded sampling rate as a positive int; raises `SkippedItem` otherwise."""
    if isinstance(value, (np.ndarray, np.generic)) and np.ndim(value) == 0:  # numpy-formatted rows
        value = value.item()
    if isinstance(value, float) and value.is_integer():  # False for NaN and Inf
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise SkippedItem(UNDECODABLE, f"sampling rate {value!r}")


def samples_axis(array: np.ndarray) -> int:
    """Time axis of a clip: 0 for mono; the longer axis of a `(samples, channels)` or
    `(channels, samples)` array (channels are few)."""
    return 0 if array.ndim == 1 else int(np.argmax(array.shape))


def num_samples(array: np.ndarray) -> int:
    """Samples per channel of a mono or multichannel clip."""
    return int(array.shape[samples_axis(array)])


def resolve_path(path: str | os.PathLike, base_dir: str | os.PathLike | None) -> str:
    """`path` with `~` expanded, joined to `base_dir` when it is relative."""
    path = os.path.expanduser(str(path))
    return path if base_dir is None or os.path.isabs(path) else os.path.join(str(base_dir), path)


def _audio_source(value: Any, base_dir: str | None) -> tuple[str, Any]:
    """Raw audio value → ("array", (array, rate)) | ("bytes", bytes) | ("file", path)."""
    if isinstance(value, Mapping):
        if value.get("array") is not None:
            return "array", (value["array"], value.get("sampling_rate"))
        if value.get("bytes") is not None:
            return "bytes", bytes(value["bytes"])
        value = value.get("path")
    if isinstance(value, (str, os.PathLike)) and str(value):
        return "file", resolve_path(value, base_dir)
    raise SkippedItem(MISSING_FILE, f"no audio in {type(value).__name__} value")


def _open(kind: str, payload: Any) -> Any:
    if kind == "file" and not os.path.isfile(payload):
        raise SkippedItem(MISSING_FILE, payload)
    return io.BytesIO(payload) if kind == "bytes" else payload


def probe_duration(value: Any, base_dir: str | None = None) -> float:
    """Duration in seconds from the file header (or the array length), without decoding.

    Raises:
        SkippedItem: missing file, unreadable header, zero samples.
    """
    kind, payload = _audio_source(value, base_dir)
    if kind == "array":
        samples, rate = num_samples(np.asarray(payload[0])), payload[1]
    else:
        source = _open(kind, payload)
        try:
            info = soundfile.info(source)
        except DECODE_ERRORS as err:
            raise SkippedItem(UNDECODABLE, str(err)) from err
        samples, rate = info.frames, info.samplerate
    rate = _sampling_rate(rate)
    if samples == 0:
        raise SkippedItem(EMPTY_AUDIO)
    return samples / rate


def decode_audio(value: Any, base_dir: str | None = None, window: CropWindow | None = None) -> tuple[np.ndarray, int]:
    """Decode one audio value (path, {"bytes"|"path"}, {"array", "sampling_rate"}) with soundfile.

    `window(total_frames, sampling_rate) -> (start, frames)` decodes only that part of a file: the
    decoder seeks to `start` and reads `frames` (a training crop of a long file never decodes the
    whole file). A file soundfile cannot seek in is decoded whole and then cut to the same window.

    Returns:
        float32 array `(samples,)` or `(samples, channels)` and the sampling rate.

    Raises:
        SkippedItem: missing file, undecodable, empty, NaN/Inf samples.
    """
    kind, payload = _audio_source(value, base_dir)
    if kind == "array":
        try:
            array, rate = np.asarray(payload[0]), payload[1]
        except ValueError as err:  # ragged nested lists
            raise SkippedItem(UNDECODABLE, str(err)) from err
        if array.dtype.kind not in "iuf" or array.ndim not in (1, 2):
            raise SkippedItem(UNDECODABLE, f"array of dtype {array.dtype} and shape {array.shape}")
        array = array.astype(np.float32, copy=False)
        if window is not None and array.ndim:
            start, frames = window(num_samples(array), _sampling_rate(rate))
            cut = [slice(None)] * array.ndim
            cut[samples_axis(array)] = slice(start, start + frames if frames >= 0 else None)
            array = array[tuple(cut)]
    else:
        try:
            with soundfile.SoundFile(_open(kind, payload)) as audio:
                rate = audio.samplerate
                start, frames = window(audio.frames, rate) if window is not None else (0, -1)
                if audio.seekable():
                    audio.seek(start)
                    array = audio.read(frames, dtype="float32", always_2d=False)
                else:  # e.g. a stream without an index: decode whole, then cut
                    array = audio.read(dtype="float32", always_2d=False)[start:][: frames if frames >= 0 else None]
        except DECODE_ERRORS as err:
            raise SkippedItem(UNDECODABLE, str(err)) from err
    rate = _sampling_rate(rate)
    if array.size == 0:
        raise SkippedItem(EMPTY_AUDIO)
    if not (np.isfinite(array.min()) and np.isfinite(array.max())):  # min/max propagate NaN
        raise SkippedItem(NON_FINITE)
    return array, rate


# ---------------------------------------------------------------------------------------------
# text: captions, labels, keyword-to-caption


def keyword_to_captions(label: str | Sequence[str], templates: Sequence[str] = CAPTION_TEMPLATES) -> list[str]:
    """Captions for a label-only clip, one per template; several labels read "a, b and c"."""
    names = [label] if isinstance(label, str) else list(label)
    text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    captions = []
    for template in templates:
        caption = template.format(label=text)
        captions.append(caption[:1].upper() + caption[1:])
    return captions


def _parse_duration(value: Any) -> float | None:
    """A metadata duration in seconds; `None` (unknown: probed) if missing or not a positive number."""
    try:
        duration = float(value)
    except (TypeError, ValueError):
        return None
    return duration if math.isfinite(duration) and duration > 0 else None


def _parse_captions(value: Any, separator: str | None) -> list[str]:
    if _is_missing(value):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):  # a JSON list stored in a CSV cell
            try:
                return _parse_captions(json.loads(text), None)
            except json.JSONDecodeError:
                pass
        items = text.split(separator) if separator else [text]
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = [str(item) for item in value if not _is_missing(item)]
    else:
        items = [str(value)]
    return [item.strip() for item in items if item.strip()]


def _parse_attributes(value: Any) -> str:
    """A row's attributes (a dict, or its JSON text as a CSV cell holds it) as canonical JSON text,
    `"{}"` when missing or not a dict: rows of one dataset store them in one string column whatever
    their keys (`attributes_of` reads them back)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    return json.dumps(value if isinstance(value, Mapping) else {}, sort_keys=True, ensure_ascii=False)


def attributes_of(row: Mapping) -> dict[str, Any]:
    """The attributes dict of a canonical row (`{}` when it has none)."""
    return json.loads(row.get(ATTRIBUTES_COLUMN) or "{}")


def _parse_label(value: Any, names: Sequence[str] | None) -> list[str]:
    """Label value (string, ClassLabel id, list of either) → label names; -1 / "" mean none, an id
    without a name is kept as its number."""
    if _is_missing(value):
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return [name for item in value for name in _parse_label(item, names)]
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 0:
            return []
        return [names[int(value)] if names is not None and value < len(names) else str(int(value))]
    text = str(value).strip()
    return [text] if text else []


@dataclass(frozen=True)
class ColumnMapping:
    """Which columns of a source hold what; `None` tries the usual names in order.

    Args:
        audio_column: audio path (relative to the source) or `{"bytes"|"path"|"array"}`.
        caption_column: one column or several (e.g. Clotho's `caption_1`..`caption_5`).
        label_column: class name(s) or `ClassLabel` id(s); used for captions when none are given.
        clip_id_column: stable id of a clip (seeds its crop and caption choice); default: the
            audio path, else the row index.
        duration_column: trusted only with `probe=False` (probing reads exact durations).
        caption_separator: splits a string of several captions ("a|b"); `None` keeps it whole.
        label_names: `ClassLabel` names (read from the dataset's features when it has them).
        templates: keyword-to-caption templates for label-only rows.
    """

    audio_column: str | None = None
    caption_column: str | Sequence[str] | None = None
    label_column: str | None = None
    clip_id_column: str | None = None
    duration_column: str | None = None
    caption_separator: str | None = "|"
    label_names: Sequence[str] | None = None
    templates: Sequence[str] = CAPTION_TEMPLATES

    @classmethod
    def pop_from(cls, options: dict[str, Any]) -> ColumnMapping:
        """Take this class's fields out of a loader's `**options`."""
        return cls(**{f.name: options.pop(f.name) for f in fields(cls) if f.name in options})

    @staticmethod
    def _first(row: Mapping, given: str | None, candidates: Sequence[str]) -> str | None:
        if given is not None:
            return given
        return next((name for name in candidates if not _is_missing(row.get(name))), None)

    def audio_value(self, row: Mapping) -> Any:
        """The row's audio value (`None` if it has none)."""
        name = self._first(row, self.audio_column, AUDIO_COLUMNS)
        return row.get(name) if name is not None else None

    def audio_name(self, columns: Sequence[str]) -> str:
        """The audio column among `columns`; raises if there is none (a configuration error)."""
        name = self.audio_column or next((c for c in AUDIO_COLUMNS if c in columns), None)
        if name is None or name not in columns:
            raise ValueError(f"no audio column among {list(columns)}; pass audio_column=...")
        return name

    def text_fields(self, row: Mapping, index: int) -> dict[str, Any]:
        """captions, label, category, attributes (JSON text), clip_id and duration (`None` if unknown)
        of one metadata row."""
        if isinstance(self.caption_column, (list, tuple)):
            captions = [c for name in self.caption_column for c in _parse_captions(row.get(name), self.caption_separator)]
        else:
            names = [self.caption_column] if self.caption_column else CAPTION_COLUMNS
            captions = next((parsed for name in names
                             if (parsed := _parse_captions(row.get(name), self.caption_separator))), [])
        label_name = self._first(row, self.label_column, LABEL_COLUMNS)
        labels = _parse_label(row.get(label_name), self.label_names) if label_name else []
        if not captions and labels:
            captions = keyword_to_captions(labels, self.templates)
        id_name = self._first(row, self.clip_id_column, CLIP_ID_COLUMNS)
        audio = self.audio_value(row)
        if id_name is not None and not _is_missing(row.get(id_name)):
            clip_id = str(row[id_name])
        else:
            clip_id = str(audio) if isinstance(audio, str) and audio else str(index)
        duration_name = self._first(row, self.duration_column, DURATION_COLUMNS)
        duration = row.get(duration_name) if duration_name else None
        category = row.get(CATEGORY_COLUMN)
        return {"captions": captions, "label": ", ".join(labels) if labels else None,
                "category": None if _is_missing(category) or not str(category).strip() else str(category).strip(),
                "attributes": _parse_attributes(row.get(ATTRIBUTES_COLUMN)), "clip_id": clip_id,
                "duration": _parse_duration(duration)}


# ---------------------------------------------------------------------------------------------
# decoding rows into examples (picklable callables: they run in DataLoader workers)


def _broken(fields_: Mapping, reason: str) -> dict[str, Any]:
    return {"audio": None, "captions": list(fields_.get("captions") or []), "label": fields_.get("label"),
            "category": fields_.get("category"), "attributes": attributes_of(fields_),
            "duration": float(fields_.get("duration") or 0.0), "clip_id": str(fields_.get("clip_id")),
            "skip_reason": reason}


@dataclass
class ExampleDecoder:
    """Canonical row (`audio` value, captions, label, category, attributes, duration, clip_id) →
    example; a broken item becomes an example with `audio=None` and its `skip_reason`."""

    base_dir: str | None = None

    def __call__(self, row: Mapping, window: CropWindow | None = None) -> dict[str, Any]:
        if not len(row.get("captions") or []):
            return _broken(row, NO_TEXT)
        try:
            array, rate = decode_audio(row["audio"], self.base_dir, window)
        except SkippedItem as err:
            return _broken(row, err.reason)
        return {"audio": {"array": array, "sampling_rate": rate}, "captions": [str(c) for c in row["captions"]],
                "label": None if _is_missing(row.get("label")) else str(row["label"]),
                "category": row.get("category"), "attributes": attributes_of(row),
                "duration": num_samples(array) / rate, "clip_id": str(row["clip_id"]), "skip_reason": None}


@dataclass
class StreamDecoder:
    """A raw row of a stream (`IterableDataset.map(..., with_indices=True)`) → example."""

    mapping: ColumnMapping
    base_dir: str | None = None

    def __call__(self, row: Mapping, index: int) -> dict[str, Any]:
        fields_ = self.mapping.text_fields(row, index)  # malformed values read as missing
        fields_["audio"] = self.mapping.audio_value(row)
        return ExampleDecoder(self.base_dir)(fields_)


@dataclass
class ManifestDecoder:
    """A manifest line `{"row": JSON text | None, "where", "base_dir"}` of a stream → example."""

    mapping: ColumnMapping

    def __call__(self, line: Mapping, index: int) -> dict[str, Any]:
        if line["row"] is None:
            return _broken({"clip_id": line["where"]}, BAD_METADATA)
        return StreamDecoder(self.mapping, line["base_dir"])(json.loads(line["row"]), index)


@dataclass
class BuiltinDecoder:
    """Row `{"index"}` of a built-in split → the generated clip as an example."""

    seed: int
    split: str
    max_duration: float = 30.0
    num_captions: int = 5

    def __call__(self, row: Mapping) -> dict[str, Any]:
        from slap_audio.data.builtin_data import generate_clip

        clip = generate_clip(self.seed, self.split, int(row["index"]), max_duration=self.max_duration,
                             num_captions=self.num_captions)
        return {"audio": {"array": clip["audio"], "sampling_rate": int(clip["sampling_rate"])},
                "captions": list(clip["captions"]), "label": clip["label"], "category": None, "attributes": {},
                "duration": float(clip["duration"]),
                "clip_id": clip["clip_id"], "skip_reason": None}
