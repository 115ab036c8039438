"""Audio–caption datasets for SLAP training: loaders for every kind of source, one example schema.

`load_audio_text_dataset(source, split="train", streaming=False, **options)` picks a loader from the
form of `source`:

- `"builtin:train"`, `"builtin:validation"`, `"builtin:test"`, `"builtin:test_compositional"`: the
  procedural built-in data (SPEC §7; options `num_clips`, `seed`), generated lazily clip by clip.
- a folder holding `metadata.jsonl` or `metadata.csv` (the `audiofolder` layout: `file_name` plus
  `caption`, `captions` (list or "|"-separated) and/or `label`), or a folder with such a `<split>/`
  subfolder (what `data.builtin_data.write_audiofolder` writes).
- a manifest (`*.jsonl`, `*.json`, `*.csv`, or a glob of them): `audio` / `path` relative to the
  manifest, `captions` / `caption` / `label`.
- `*.parquet` files (or a glob), or `"json"` / `"parquet"` / `"csv"` with `data_files=...`.
- anything else: a `save_to_disk` folder, another local dataset folder or a Hub dataset id, through
  `datasets.load_dataset` (`audio_column`, `caption_column`, `label_column` map the columns).

Map-style loads return an `AudioTextDataset`: a torch `Dataset` over undecoded rows (a
`datasets.Dataset`), decoding a clip with soundfile when it is read, with exact `durations` for
token-budget batching. `streaming=True` returns a `datasets.IterableDataset` of the same examples
(data that does not fit on disk), split across DataLoader workers by shard. Examples follow the
schema of `data/examples.py`.

Bad items never raise. What a header read finds (missing or undecodable file, no samples, no
caption and no label) is dropped at load time and counted in `dataset.skip_stats`; what only
decoding finds (NaN/Inf samples, a file broken after loading, any bad row of a stream) comes out
as an example with `audio=None` and a `skip_reason`, which `SlapCollator` drops and counts (and
`SlapTrainer` sums over DataLoader workers and ranks). Only decoding and validation errors are
caught (`data/examples.py`): a bug in the code raises.

    dataset = load_audio_text_dataset("data/clips", split="train")   # or "builtin:train", ...
    print(dataset.skip_stats.summary())
"""

from __future__ import annotations

import csv
import glob
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from slap_audio.data.durations import CACHE_NAME as DURATION_CACHE
from slap_audio.data.durations import probe_durations
from slap_audio.data.examples import (
    BAD_METADATA,
    CAPTION_TEMPLATES,
    EMPTY_AUDIO,
    EXAMPLE_COLUMNS,
    LABEL_COLUMNS,
    MISSING_FILE,
    NO_TEXT,
    UNDECODABLE,
    BuiltinDecoder,
    ColumnMapping,
    CropWindow,
    ExampleDecoder,
    ManifestDecoder,
    SkippedItem,
    SkipStats,
    StreamDecoder,
    keyword_to_captions,
    resolve_path,
)

__all__ = [
    "CAPTION_TEMPLATES",
    "EXAMPLE_COLUMNS",
    "AudioTextDataset",
    "ColumnMapping",
    "SkipStats",
    "keyword_to_captions",
    "load_audio_folder",
    "load_audio_text_dataset",
    "load_builtin",
    "load_hub_dataset",
    "load_manifest",
    "load_streaming_shards",
]

if TYPE_CHECKING:
    import datasets

BUILTIN_PREFIX = "builtin"
METADATA_FILES = ("metadata.jsonl", "metadata.csv")
MANIFEST_SUFFIXES = (".jsonl", ".json", ".csv")


class AudioTextDataset(torch.utils.data.Dataset):
    """Map-style audio–caption dataset: undecoded rows in a `datasets.Dataset`, decoded on access.

    Attributes:
        rows: the `datasets.Dataset` of rows (`duration` and `clip_id` columns, plus what the
            decoder reads).
        durations: seconds per clip (exact, from file headers unless `probe=False`), for
            `TokenBudgetBatchSampler.from_durations`.
        skip_stats: items dropped while loading.
    """

    def __init__(self, rows: datasets.Dataset, decoder: Callable[[Mapping], dict[str, Any]],
                 skip_stats: SkipStats | None = None):
        self.rows = rows
        self.decoder = decoder
        self.skip_stats = skip_stats if skip_stats is not None else SkipStats()
        self.durations = [float(d) for d in rows["duration"]]
        self.crops: CropSource | None = None
        audio = rows.features.get("audio")
        array_audio = isinstance(audio, dict) and "array" in audio
        # numpy formatting reads stored arrays without a detour through Python lists
        self._rows = rows.with_format("numpy", columns=["audio"], output_all_columns=True) if array_audio else rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self._rows[int(index)]
        if self.crops is None or not isinstance(self.decoder, ExampleDecoder):  # generated clips: nothing to seek
            return self.decoder(row)
        return self.decoder(row, self.crops.window_for(str(row["clip_id"])))

    def set_crops(self, crops: CropSource | None) -> None:
        """Decode only each clip's training crop (`crops.window_for(clip_id)`, e.g. the
        `SlapCollator`, whose epoch it follows): a long file is read from the crop's start for the
        crop's length, never decoded whole. The collator then finds every clip within its crop."""
        self.crops = crops

    @property
    def clip_ids(self) -> list[str]:
        return list(self.rows["clip_id"])

    def select(self, indices: Sequence[int]) -> AudioTextDataset:
        selected = AudioTextDataset(self.rows.select(indices), self.decoder, self.skip_stats)
        selected.set_crops(self.crops)
        return selected


class CropSource(Protocol):
    """What gives each clip's training crop (`SlapCollator` is one)."""

    def window_for(self, clip_id: str) -> CropWindow: ...


# ---------------------------------------------------------------------------------------------
# loaders


def _probe_rows(audio_rows: datasets.Dataset, base_dir: str | None, known: Sequence[float | None],
                cache_file: Path | None = None) -> Iterator[float | SkippedItem]:
    """Duration (or why not) of each row of a one-column ("audio") dataset, without decoding; a
    row's `known` duration is taken as is (stored arrays are always measured: it is free). File
    headers are read in parallel, through the duration cache `cache_file` (`data/durations.py`)."""
    import datasets

    feature = audio_rows.features["audio"]
    if isinstance(feature, dict) and "array" in feature:  # stored arrays: lengths from Arrow
        import pyarrow.compute as pc

        for table in audio_rows.with_format("arrow").iter(batch_size=1024):
            column = table.column("audio").combine_chunks()
            lengths = pc.list_value_length(column.field("array")).to_pylist()
            for samples, rate in zip(lengths, column.field("sampling_rate").to_pylist(), strict=True):
                if samples is None:
                    yield SkippedItem(MISSING_FILE)
                elif not rate or rate <= 0:
                    yield SkippedItem(UNDECODABLE, f"sampling rate {rate!r}")
                else:
                    yield samples / rate if samples else SkippedItem(EMPTY_AUDIO)
        return
    results: list[float | SkippedItem | None] = [None if d is None else float(d) for d in known]
    todo = [index for index, duration in enumerate(results) if duration is None]
    paths = isinstance(feature, datasets.Value)  # a column of file paths: cached, all at once
    chunk = max(len(todo), 1) if paths else 1024  # audio bytes: a chunk in memory at a time
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        values = (audio_rows if len(part) == len(audio_rows) else audio_rows.select(part))["audio"]
        for index, result in zip(part, probe_durations(values, base_dir, cache_file if paths else None), strict=True):
            results[index] = result
    yield from results


def _canonical_dataset(audio_rows: datasets.Dataset, text_rows: list[dict], base_dir: str | None, probe: bool,
                       stats: SkipStats, cache_file: Path | None = None) -> AudioTextDataset:
    """Join a one-column ("audio") dataset with its rows' text fields, drop (and count) bad rows.

    With `probe=True` every file header is read: exact durations, and missing / undecodable / empty
    files are found now rather than at training time. With `probe=False` only rows without a
    duration in the metadata are probed.
    """
    known = [None if probe else row["duration"] for row in text_rows]
    keep, durations = [], []
    probes = _probe_rows(audio_rows, base_dir, known, cache_file)
    for index, (fields_, probed) in enumerate(zip(text_rows, probes, strict=True)):
        durations.append(probed if isinstance(probed, float) else 0.0)
        if not fields_["captions"]:
            stats.add(NO_TEXT, fields_["clip_id"])
        elif isinstance(probed, SkippedItem):
            stats.add(probed.reason, fields_["clip_id"])
        else:
            keep.append(index)
    rows = audio_rows
    for name in ("captions", "label", "category", "attributes", "clip_id"):
        rows = rows.add_column(name, [fields_[name] for fields_ in text_rows])
    rows = rows.add_column("duration", durations)
    if len(keep) < len(rows):
        rows = rows.select(keep)  # an indices mapping: no audio is copied
    return AudioTextDataset(rows, ExampleDecoder(base_dir), stats)


def _metadata_rows(path: Path) -> Iterator[tuple[str, dict | None]]:
    """`(where, row)` for each row of a JSONL / JSON-array / CSV manifest; `row` is `None` for a
    line that does not parse."""
    with open(path, newline="" if path.suffix.lower() == ".csv" else None, encoding="utf-8") as handle:
        if path.suffix.lower() == ".csv":
            for number, row in enumerate(csv.DictReader(handle), 2):
                yield f"{path.name}:{number}", {k: (v if v != "" else None) for k, v in row.items()}
            return
        text = handle.read()
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError:
            rows = [None]
        for number, row in enumerate(rows, 1):
            yield f"{path.name}:{number}", row if isinstance(row, dict) else None
        return
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            yield f"{path.name}:{number}", row if isinstance(row, dict) else None


def _expand(files: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Paths and globs → sorted file list (globs expanded, order of the arguments kept)."""
    files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    out: list[str] = []
    for pattern in map(str, files):
        pattern = os.path.expanduser(pattern)
        out.extend(sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern])
    if not out:
        raise FileNotFoundError(f"no files match {files}")
    return out


def load_manifest(paths: str | os.PathLike | Sequence[str | os.PathLike], *,
                  base_dir: str | os.PathLike | None = None, probe: bool = True,
                  mapping: ColumnMapping | None = None) -> AudioTextDataset:
    """One or several JSONL / JSON / CSV manifests (paths or globs), map-style.

    Audio paths are relative to `base_dir` (default: each manifest's folder). Unparsable lines are
    counted as `bad_metadata`. Durations are cached in `.slap_durations.json` beside the (first)
    manifest (see `data/durations.py`).
    """
    import datasets

    mapping = mapping or ColumnMapping()
    stats = SkipStats()
    text_rows, audio = [], []
    for path in map(Path, _expand(paths)):
        folder = str(base_dir or path.parent)
        for where, row in _metadata_rows(path):
            if row is None:
                stats.add(BAD_METADATA, where)
                continue
            text_rows.append(mapping.text_fields(row, len(text_rows)))
            value = mapping.audio_value(row)
            value = value.get("path") if isinstance(value, dict) else value  # {"path": ...}
            audio.append(resolve_path(value, folder) if isinstance(value, str) and value else None)
    audio_rows = datasets.Dataset.from_dict({"audio": audio}, features=datasets.Features(
        {"audio": datasets.Value("string")}))
    cache_file = Path(base_dir or Path(_expand(paths)[0]).parent) / DURATION_CACHE
    return _canonical_dataset(audio_rows, text_rows, None, probe, stats, cache_file)


def _metadata_file(folder: Path) -> Path | None:
    return next((folder / name for name in METADATA_FILES if (folder / name).is_file()), None)


def load_audio_folder(folder: str | os.PathLike, *, probe: bool = True,
                      mapping: ColumnMapping | None = None) -> AudioTextDataset:
    """An audio folder with `metadata.jsonl` / `metadata.csv` (`file_name` + captions / label)."""
    metadata = _metadata_file(Path(folder))
    if metadata is None:
        raise FileNotFoundError(f"{folder} holds neither of {METADATA_FILES}")
    return load_manifest(metadata, base_dir=folder, probe=probe, mapping=mapping)


def _class_names(features, column: str | None) -> list[str] | None:
    feature = features.get(column) if features and column else None
    feature = getattr(feature, "feature", feature)  # List(ClassLabel) → ClassLabel
    return list(feature.names) if hasattr(feature, "names") else None


def _from_datasets(dataset: datasets.Dataset | datasets.IterableDataset, mapping: ColumnMapping,
                   base_dir: str | None, probe: bool) -> AudioTextDataset | datasets.IterableDataset:
    """A loaded `datasets.Dataset` / `IterableDataset` → `AudioTextDataset` / stream of examples.

    Audio stays undecoded (`datasets`' decoder needs torchcodec); `ClassLabel` names are read from
    the features.
    """
    import datasets

    columns = list(dataset.column_names or [])
    if columns:
        mapping = replace(mapping, audio_column=mapping.audio_name(columns))
    features = dataset.features or {}
    if isinstance(features.get(mapping.audio_column), datasets.Audio):
        dataset = dataset.cast_column(mapping.audio_column, datasets.Audio(decode=False))
    if mapping.label_names is None:
        label = mapping.label_column or next((c for c in LABEL_COLUMNS if c in columns), None)
        names = _class_names(features, label)
        mapping = replace(mapping, label_names=tuple(names)) if names is not None else mapping
    if isinstance(dataset, datasets.IterableDataset):
        decoded = dataset.map(StreamDecoder(mapping, base_dir), with_indices=True)
        return decoded.select_columns(list(EXAMPLE_COLUMNS))
    # Text fields in one pass that skips the audio bytes (a path column is read: it names the clip).
    audio_is_path = isinstance(features.get(mapping.audio_column), datasets.Value)
    text_columns = [c for c in columns if c != mapping.audio_column or audio_is_path]
    text_rows: list[dict] = []
    if text_columns:
        for batch in dataset.select_columns(text_columns).iter(batch_size=1024):
            for values in zip(*batch.values(), strict=True):
                text_rows.append(mapping.text_fields(dict(zip(batch, values, strict=True)), len(text_rows)))
    else:
        text_rows = [mapping.text_fields({}, index) for index in range(len(dataset))]
    audio_rows = dataset.select_columns([mapping.audio_column])
    if mapping.audio_column != "audio":
        audio_rows = audio_rows.rename_column(mapping.audio_column, "audio")
    return _canonical_dataset(audio_rows, text_rows, base_dir, probe, SkipStats())


def load_hub_dataset(name: str, split: str = "train", *, streaming: bool = False, probe: bool = True,
                     mapping: ColumnMapping | None = None, base_dir: str | None = None,
                     **load_kwargs: Any) -> AudioTextDataset | datasets.IterableDataset:
    """A Hub dataset id, a local dataset folder, or a `save_to_disk` folder, through `datasets`.

    Audio (an `Audio` column, `{"bytes", "path"}`, `{"array", "sampling_rate"}` or a path string)
    is decoded with soundfile. `load_kwargs` go to `datasets.load_dataset` (`name=`, `revision=`,
    `cache_dir=`...).
    """
    import datasets

    path = Path(name).expanduser()
    if path.is_dir() and any((path / f).is_file() for f in ("dataset_dict.json", "state.json")):
        dataset = datasets.load_from_disk(str(path))
        if isinstance(dataset, datasets.DatasetDict):
            dataset = dataset[split]
        if streaming:
            dataset = dataset.to_iterable_dataset()
    else:
        dataset = datasets.load_dataset(name, split=split, streaming=streaming, **load_kwargs)
    if base_dir is None and path.is_dir():
        base_dir = str(path)
    return _from_datasets(dataset, mapping or ColumnMapping(), base_dir, probe)


def _manifest_lines(files: list[str], base_dirs: list[str]) -> Iterator[dict[str, str | None]]:
    """Rows of manifests as JSON strings (one schema whatever the rows' keys; `None` if malformed)."""
    for file, base_dir in zip(files, base_dirs, strict=True):
        for where, row in _metadata_rows(Path(file)):
            yield {"row": None if row is None else json.dumps(row), "where": where, "base_dir": base_dir}


def load_streaming_shards(data_files: str | os.PathLike | Sequence[str | os.PathLike], *,
                          base_dir: str | os.PathLike | None = None, mapping: ColumnMapping | None = None,
                          **load_kwargs: Any) -> datasets.IterableDataset:
    """Stream shards that need not fit on disk: JSONL / JSON / CSV manifests, or parquet files.

    Returns a `datasets.IterableDataset` of examples with one shard per file, so DataLoader workers
    (and `datasets.distributed.split_dataset_by_node`) split the files. Manifests are read line by
    line; relative audio paths resolve against `base_dir` (default: each manifest's folder); a
    malformed line becomes a `bad_metadata` example. Parquet shards (audio stored inside) go through
    `datasets.load_dataset("parquet", data_files=..., streaming=True, **load_kwargs)`.
    """
    import datasets

    files = _expand(data_files)
    mapping = mapping or ColumnMapping()
    suffixes = {Path(f).suffix.lower() for f in files}
    if suffixes <= set(MANIFEST_SUFFIXES):
        base_dirs = [str(base_dir or Path(f).parent) for f in files]
        lines = datasets.IterableDataset.from_generator(
            _manifest_lines, gen_kwargs={"files": files, "base_dirs": base_dirs})
        return lines.map(ManifestDecoder(mapping), with_indices=True, remove_columns=["row", "where", "base_dir"])
    if suffixes == {".parquet"}:
        dataset = datasets.load_dataset("parquet", data_files=files, split="train", streaming=True, **load_kwargs)
        return _from_datasets(dataset, mapping, str(base_dir or Path(files[0]).parent), probe=False)
    raise ValueError(f"shards must all be manifests {MANIFEST_SUFFIXES} or all .parquet, got {sorted(suffixes)}")


def load_builtin(split: str = "train", num_clips: int | None = None, seed: int = 0, *, streaming: bool = False,
                 max_duration: float = 30.0, num_captions: int = 5) -> AudioTextDataset | datasets.IterableDataset:
    """The built-in procedural data (`data.builtin_data`), generated lazily clip by clip.

    Map-style: durations come from the clips' plans (cheap); audio is rendered when an item is
    read, so nothing is held in memory. Streaming: clips are generated as the stream is read.
    """
    import datasets

    from slap_audio.data.builtin_data import DEFAULT_NUM_CLIPS, SAMPLING_RATE, clip_id, clip_plan

    num_clips = DEFAULT_NUM_CLIPS[split] if num_clips is None else int(num_clips)
    decoder = BuiltinDecoder(seed, split, max_duration, num_captions)
    indices = list(range(num_clips))
    if streaming:  # a list in gen_kwargs is sharded across DataLoader workers
        rows = datasets.IterableDataset.from_generator(_index_rows, gen_kwargs={"indices": indices})
        return rows.map(decoder, remove_columns=["index"])
    durations = [clip_plan(seed, split, i, max_duration)["num_samples"] / SAMPLING_RATE for i in indices]
    rows = datasets.Dataset.from_dict({"index": indices, "clip_id": [clip_id(seed, split, i) for i in indices],
                                       "duration": durations})
    return AudioTextDataset(rows, decoder)


def _index_rows(indices: list[int]) -> Iterator[dict[str, int]]:
    for index in indices:
        yield {"index": index}


def _split_folder(folder: Path, split: str) -> Path | None:
    """`folder` itself or its `<split>` subfolder, whichever holds metadata."""
    from slap_audio.data.builtin_data import SPLIT_DIRS

    for candidate in (folder, folder / split, folder / SPLIT_DIRS.get(split, split)):
        if _metadata_file(candidate) is not None:
            return candidate
    return None


def load_audio_text_dataset(source: str | os.PathLike, split: str = "train", streaming: bool = False,
                            **options: Any) -> AudioTextDataset | datasets.IterableDataset:
    """Load any supported source as examples of one schema (see the module docstring).

    Options: `num_clips`, `seed`, `max_duration`, `num_captions` (built-in data); `probe`, `base_dir`
    (file sources); `data_files` (with source "json" / "csv" / "parquet"); the `ColumnMapping`
    fields (`audio_column`, `caption_column`, `label_column`, `clip_id_column`, `duration_column`,
    `caption_separator`, `label_names`, `templates`); anything else goes to `datasets.load_dataset`.

    Returns:
        `AudioTextDataset` (map-style) or `datasets.IterableDataset` (`streaming=True`).
    """
    text = str(source)
    if text == BUILTIN_PREFIX or text.startswith(BUILTIN_PREFIX + ":"):
        return load_builtin(text.partition(":")[2] or split, streaming=streaming, **options)
    mapping = ColumnMapping.pop_from(options)
    probe = options.pop("probe", True)
    base_dir = options.pop("base_dir", None)
    path = Path(text).expanduser()
    if text in ("json", "csv", "parquet"):
        files = _expand(options.pop("data_files"))
    elif path.is_dir() and (folder := _split_folder(path, split)) is not None:
        files, base_dir = [str(_metadata_file(folder))], base_dir or folder
    elif (path.is_file() or glob.has_magic(text)) and path.suffix.lower() in (*MANIFEST_SUFFIXES, ".parquet"):
        files = _expand(text)
    else:
        return load_hub_dataset(text, split, streaming=streaming, probe=probe, mapping=mapping, base_dir=base_dir,
                                **options)
    if streaming:
        return load_streaming_shards(files, base_dir=base_dir, mapping=mapping, **options)
    if all(f.endswith(".parquet") for f in files):
        return load_hub_dataset("parquet", "train", probe=probe, mapping=mapping,
                                base_dir=base_dir or str(Path(files[0]).parent), data_files=files, **options)
    return load_manifest(files, base_dir=base_dir, probe=probe, mapping=mapping)
