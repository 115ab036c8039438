"""Sharded audio–caption data: WebDataset tar shards and parquet shards, written and read.

Data that does not fit on local disk (LAION-scale corpora) is stored as shards of a few hundred MB
each, read front to back; a reader never needs an index of the whole corpus.

- **tar** (the WebDataset layout): each sample is consecutive members `{key}.{flac|wav|mp3|ogg}`
  (the audio file's bytes) and `{key}.json` (`{"captions": [...], "label": ..., "clip_id": ...}`:
  any metadata row `ColumnMapping` reads).
- **parquet** (the Hugging Face `datasets` layout): an `audio` struct column `{bytes, path}` plus
  `captions`, `label`, `category`, `attributes`, `clip_id` columns, read a row group at a time.

`iter_shard(path)` yields raw rows `{"audio": {"bytes", "path"}, captions..., "clip_id"}`; what
cannot be read (a member without metadata, metadata that does not parse, a truncated shard) comes
out as a row with a `skip_reason`, which the stream turns into a counted skip, never an error.
`write_shards` writes either format from any map-style source (`slap-data shards`).

    write_shards("clips/", "shards/", format="tar", clips_per_shard=1000)
    for row in iter_shard("shards/shard-00000.tar"): ...
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from slap_audio.data.examples import (
    BAD_METADATA,
    NO_TEXT,
    UNDECODABLE,
    ColumnMapping,
    SkippedItem,
    SkipStats,
)

FORMATS = ("tar", "parquet")
AUDIO_EXTENSIONS = ("flac", "wav", "mp3", "ogg", "opus")
SHARD_PATTERN = "shard-{index:05d}.{format}"


def list_shards(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The shard files of a folder (its `*.tar` / `*.parquet`), a glob or a list, sorted; raises a
    clear error when there are none, when a listed file is missing or when formats are mixed."""
    from slap_audio.data.sources import _expand

    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        files = sorted(str(p) for p in Path(source).iterdir() if p.suffix[1:].lower() in FORMATS)
    else:
        files = _expand(source)
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise FileNotFoundError(f"shard file(s) not found: {missing}")
    if not files:
        raise FileNotFoundError(f"no .tar or .parquet shards in {source}")
    formats = {Path(f).suffix[1:].lower() for f in files}
    if len(formats) > 1 or not formats <= set(FORMATS):
        raise ValueError(f"shards must all be .tar or all .parquet, got {sorted(formats)} in {source}")
    return files


def _sample_key(name: str) -> tuple[str, str]:
    """WebDataset's split of a member name: the key is everything before the first dot of the base
    name, the extension everything after it (`dir/a.b.flac` → (`dir/a`, `b.flac`))."""
    folder, base = os.path.split(name)
    stem, _, extension = base.partition(".")
    return os.path.join(folder, stem), extension.lower()


def _tar_row(key: str, members: dict[str, bytes], shard: str) -> dict[str, Any]:
    audio = next(((ext, data) for ext, data in members.items() if ext.rsplit(".", 1)[-1] in AUDIO_EXTENSIONS), None)
    where = f"{Path(shard).name}:{key}"
    if "json" not in members:
        return {"clip_id": where, "skip_reason": NO_TEXT}
    try:
        row = json.loads(members["json"])
    except (UnicodeDecodeError, json.JSONDecodeError):
        row = None
    if not isinstance(row, dict):
        return {"clip_id": where, "skip_reason": BAD_METADATA}
    row = {"clip_id": key, **row}
    row["audio"] = None if audio is None else {"bytes": audio[1], "path": f"{key}.{audio[0]}"}
    return row


def _iter_tar(path: str) -> Iterator[dict[str, Any]]:
    key, members = None, {}
    try:
        with tarfile.open(path, "r|*") as archive:  # a stream: members in order, no seeking
            for member in archive:
                if not member.isfile():
                    continue
                name_key, extension = _sample_key(member.name)
                if name_key != key and key is not None:
                    yield _tar_row(key, members, path)
                    members = {}
                key = name_key
                members[extension] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as err:  # a truncated or corrupt shard: what was read is kept
        yield {"clip_id": f"{Path(path).name}", "skip_reason": UNDECODABLE, "error": str(err)}
        return
    if key is not None:
        yield _tar_row(key, members, path)


def _iter_parquet(path: str, batch_size: int = 64) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=batch_size):
            yield from batch.to_pylist()
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        yield {"clip_id": f"{Path(path).name}", "skip_reason": UNDECODABLE, "error": str(err)}


def iter_shard(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Raw rows of one shard, in order (see the module docstring)."""
    path = str(path)
    return _iter_parquet(path) if path.lower().endswith(".parquet") else _iter_tar(path)


def shard_row_fields(row: dict[str, Any], index: int, mapping: ColumnMapping | None = None) -> dict[str, Any]:
    """A raw shard row as the canonical fields `ExampleDecoder` takes (captions, label, clip_id...,
    and `audio`); a row that could not be read keeps its `skip_reason`."""
    if row.get("skip_reason"):
        return {"captions": [], "clip_id": row["clip_id"], "skip_reason": row["skip_reason"]}
    mapping = mapping or ColumnMapping()
    fields_ = mapping.text_fields(row, index)
    fields_["audio"] = mapping.audio_value(row)
    return fields_


# ---------------------------------------------------------------------------------------------
# writing


@dataclass
class ShardReport:
    """What `write_shards` wrote: the shard paths, the clips written, the items skipped."""

    shards: list[str] = field(default_factory=list)
    clips: int = 0
    skip_stats: SkipStats = field(default_factory=SkipStats)


def _audio_bytes(value: Any) -> tuple[bytes, str]:
    """An undecoded audio value (path, `{"bytes", "path"}`, `{"array", "sampling_rate"}`) as file
    bytes and their extension; arrays are encoded as FLAC."""
    if isinstance(value, dict) and value.get("array") is not None:
        buffer = io.BytesIO()
        soundfile.write(buffer, np.asarray(value["array"], dtype=np.float32), int(value["sampling_rate"]), format="FLAC")
        return buffer.getvalue(), "flac"
    path = value.get("path") if isinstance(value, dict) else value
    data = value.get("bytes") if isinstance(value, dict) else None
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise SkippedItem(UNDECODABLE, str(err)) from err
    extension = Path(str(path or "")).suffix[1:].lower()
    return bytes(data), extension if extension in AUDIO_EXTENSIONS else "flac"


class _ShardWriter:
    """Appends samples to numbered shards of `clips_per_shard` samples. A shard is written under a
    `.partial` name and renamed when complete, so a folder never holds a truncated shard under a name
    a reader lists; `abort` removes the unfinished one."""

    def __init__(self, out: Path, format: str, clips_per_shard: int):
        self.out, self.format, self.clips_per_shard = out, format, clips_per_shard
        self.paths: list[str] = []
        self.rows: list[dict] = []
        self.archive: tarfile.TarFile | None = None
        self.count = 0

    @property
    def open(self) -> bool:
        """Whether a shard is being written (its archive open, or its parquet rows gathering)."""
        return self.archive is not None or bool(self.rows)

    @property
    def partial(self) -> str:
        return self.paths[-1] + ".partial"

    def add(self, key: str, audio: bytes, extension: str, metadata: dict) -> None:
        if not self.open:
            self.paths.append(str(self.out / SHARD_PATTERN.format(index=len(self.paths), format=self.format)))
            if self.format == "tar":
                self.archive = tarfile.open(self.partial, "w")
        self.count += 1
        if self.format == "parquet":
            self.rows.append({"audio": {"bytes": audio, "path": f"{key}.{extension}"}, **metadata})
        else:
            for name, data in ((f"{key}.{extension}", audio), (f"{key}.json", json.dumps(metadata).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                self.archive.addfile(info, io.BytesIO(data))
        if self.count % self.clips_per_shard == 0:  # full: finished now, so an error later cannot take it
            self.close()

    def close(self) -> None:
        """Finish the open shard: write it out and give it its final name."""
        if not self.open:
            return
        if self.archive is not None:
            self.archive.close()
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(self.rows), self.partial)
        os.replace(self.partial, self.paths[-1])
        self.archive, self.rows = None, []  # only now: until renamed, `abort` still finds the partial file

    def abort(self) -> None:
        """Drop the unfinished shard (after an error): the finished ones stay whole."""
        if not self.open:
            return
        try:
            if self.archive is not None:
                self.archive.close()
        finally:  # even when closing fails too (a full disk): the unfinished shard goes
            self.archive, self.rows = None, []
            Path(self.partial).unlink(missing_ok=True)


def write_shards(source: str | os.PathLike, out: str | os.PathLike, format: str = "tar", clips_per_shard: int = 1000,
                 split: str = "train", **options: Any) -> ShardReport:
    """Write the clips of `source` (anything `load_audio_text_dataset` loads map-style: an audio
    folder, a manifest...) as shards in `out` (`shard-00000.tar`, ...). The audio files' bytes are
    stored as they are (no re-encoding); items the loader skips (missing, undecodable, no text) are
    left out and counted in the report."""
    from slap_audio.data.sources import load_audio_text_dataset

    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if clips_per_shard < 1:
        raise ValueError(f"clips_per_shard must be positive, got {clips_per_shard}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if any(p.suffix[1:] in FORMATS for p in out.iterdir()):
        raise FileExistsError(f"{out} already holds shards: write into a new or empty folder")
    dataset = load_audio_text_dataset(source, split=split, **options)
    report = ShardReport()
    report.skip_stats.update(dataset.skip_stats)
    writer = _ShardWriter(out, format, clips_per_shard)
    try:
        for index, row in enumerate(dataset.rows):
            try:
                audio, extension = _audio_bytes(row["audio"])
            except SkippedItem as err:
                report.skip_stats.add(err.reason, row["clip_id"])
                continue
            metadata = {"clip_id": row["clip_id"], "captions": list(row["captions"]), "label": row.get("label"),
                        "category": row.get("category"), "attributes": row.get("attributes") or "{}"}  # JSON text
            writer.add(f"{index:09d}", audio, extension, metadata)
        writer.close()
    except BaseException:  # an error or an interrupt: no truncated shard is left behind
        writer.abort()
        raise
    report.shards, report.clips = writer.paths, writer.count
    return report
