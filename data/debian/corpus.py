"""The corpus writer: Debian sources' clips → an audio folder `slap-train` and `slap-eval` read.

    OUT/train/metadata.jsonl, OUT/train/audio/<source>/<key>.flac    (and the same for test/)
    OUT/corpus.json    counts per source, category, label and split; hours; licences; skipped
                       items with their reasons; build settings and package versions
    OUT/README.md      the same in short

Each clip is resampled to 16 kHz mono, stored as 16-bit FLAC and hashed (SHA-256 of its PCM):
silent clips (peak below -60 dBFS) are dropped and identical audio is kept once (the first in
source order; the others are counted as skipped "duplicate"). Its split follows its group
(`splits.py`); its captions come from its label and attributes (`captions.py`).

The build is deterministic and resumable. Each source is staged on its own: its audio files, then
a completion marker `OUT/.build/<source>.json` holding its rows and skips, each written under a
temporary name and renamed when complete. A rerun of the same command skips the sources whose
marker exists, restages an interrupted one from a clean slate, and assembles the metadata from
the markers in source order — so a killed build, continued, yields the same bytes as an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from slap_audio.data.debian.audio_io import CORPUS_SAMPLING_RATE, SILENCE_DBFS, to_corpus_audio
from slap_audio.data.debian.captions import captions_for
from slap_audio.data.debian.copyright import spdx
from slap_audio.data.debian.records import CATEGORIES, SIZES, Clip, Skipped, Source
from slap_audio.data.debian.splits import SPLITS, TEST_GROUPS, split_of, unmatched_patterns

BUILD_DIR = ".build"
AUDIO_DIR = "audio"
SETTINGS_FILE = "settings.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class CorpusMismatch(ValueError):
    """Raised when OUT holds a (partial) build made with other settings."""


def build_corpus(
    out: str | os.PathLike,
    sources: Sequence[Source],
    unpacked: Mapping[str, Path],
    *,
    size: str = "default",
    versions: Mapping[str, str] | None = None,
    test_groups: Mapping[str, str] | None = None,
    jobs: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Build (or continue building) the corpus in `out` from `sources`; return `corpus.json`'s content.

    `unpacked[package]` is the folder each Debian package was unpacked into; `versions[name]` the
    version of each package and tool (recorded); `test_groups` ({group pattern: why}, default
    `splits.TEST_GROUPS`) the held-out groups. `jobs` > 1 stages that many sources at once in
    worker processes (the bytes do not depend on it). Raises `CorpusMismatch` if `out` holds a
    build of another size, source list, held-out table or versions.
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {SIZES}")
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"two sources share a name: {names}")
    out = Path(out)
    settings = {
        "size": size,
        "sources": names,
        "packages": {
            name: (versions or {}).get(name)
            for name in sorted({p for s in sources for p in s.packages})
        },
        "tools": {
            name: (versions or {}).get(name)
            for name in sorted({t for s in sources for t in s.tools})
        },
        "sampling_rate": CORPUS_SAMPLING_RATE,
        "format": "FLAC, 16-bit PCM, mono",
        "test_groups": dict(TEST_GROUPS if test_groups is None else test_groups),
    }
    _claim(out, settings)
    for partial in out.rglob("*.partial"):  # what an interrupted write left
        partial.unlink()
    pending = [s for s in sources if not _marker(out, s.name).is_file()]
    if jobs > 1 and len(pending) > 1:
        with ProcessPoolExecutor(
            min(jobs, len(pending)), mp_context=get_context("spawn"), initializer=_one_thread
        ) as pool:
            for future in [
                pool.submit(
                    stage_source,
                    s,
                    unpacked,
                    size,
                    out,
                    settings["test_groups"],
                    progress,
                    i % jobs,
                )
                for i, s in enumerate(pending)
            ]:
                future.result()
    else:
        for source in pending:
            stage_source(source, unpacked, size, out, settings["test_groups"], progress)
    return assemble(out, sources, settings)


def _one_thread() -> None:
    """Worker processes share the cores: one torch thread each (the resampler)."""
    import torch

    torch.set_num_threads(1)


def _claim(out: Path, settings: dict[str, Any]) -> None:
    """Record the settings of the build in `out`, or check they equal those of the build there."""
    path = out / BUILD_DIR / SETTINGS_FILE
    if path.is_file():
        found = json.loads(path.read_text())
        if found != settings:
            raise CorpusMismatch(
                f"{out} holds a build with other settings ({_diff(found, settings)}); "
                "build into a new folder, or delete it to start over"
            )
        return
    if out.is_dir() and any(out.iterdir()):
        raise CorpusMismatch(
            f"{out} is not empty and holds no corpus build; choose a new or empty folder"
        )
    _write_atomic(path, _dumps(settings))


def _diff(found: Mapping[str, Any], wanted: Mapping[str, Any]) -> str:
    keys = [key for key in wanted if found.get(key) != wanted[key]]
    return ", ".join(f"{key}: {found.get(key)!r} there, {wanted[key]!r} now" for key in keys)


def _marker(out: Path, name: str) -> Path:
    return out / BUILD_DIR / f"{name}.json"


def stage_source(
    source: Source,
    unpacked: Mapping[str, Path],
    size: str,
    out: str | os.PathLike,
    test_groups: Mapping[str, str],
    progress: bool = True,
    position: int = 0,
) -> None:
    """Write one source's audio files and then its completion marker (rows and skips)."""
    from tqdm.auto import tqdm

    out = Path(out)
    for split in SPLITS:  # a clean slate: what an interrupted run left is written again
        shutil.rmtree(out / split / AUDIO_DIR / source.name, ignore_errors=True)
    rows, skipped = [], []
    hashes: dict[str, str] = {}
    files: set[str] = set()
    items = source.clips({p: Path(unpacked[p]) for p in source.packages}, size)
    bar = tqdm(
        items, desc=source.name, unit=" clips", disable=not progress, position=position, leave=True
    )
    for item in bar:
        if isinstance(item, Skipped):
            skipped.append(_skip(item.source, item.original_path, item.reason))
            continue
        _validate(item, source.name)
        pcm = _pcm16(item)
        if pcm.size == 0 or np.abs(pcm).max() < 32767 * 10 ** (SILENCE_DBFS / 20):
            skipped.append(_skip(item.source, item.original_path, "silent"))
            continue
        digest = hashlib.sha256(pcm.tobytes()).hexdigest()
        if digest in hashes:
            skipped.append(_skip(item.source, item.original_path, "duplicate", hashes[digest]))
            continue
        stem = _safe_name(item.key.removeprefix(source.name + "/"))
        file_name = f"{AUDIO_DIR}/{source.name}/{stem}.flac"
        if file_name in files:
            raise ValueError(f"source {source.name!r} yields the key {item.key!r} twice")
        hashes[digest] = item.key
        files.add(file_name)
        split = split_of(item.group, test_groups)
        _write_flac(out / split / file_name, pcm)
        rows.append(_row(item, file_name, split, digest, len(pcm)))
    bar.close()
    _write_atomic(_marker(out, source.name), _dumps({"rows": rows, "skipped": skipped}))


def _validate(clip: Clip, source_name: str) -> None:
    problems = [
        clip.category not in CATEGORIES
        and f"category {clip.category!r} is not one of {CATEGORIES}",
        not clip.label.strip() and "empty label",
        not clip.group.strip() and "empty group",
        not clip.licence.strip() and "no licence",
        not (isinstance(clip.sampling_rate, (int, np.integer)) and clip.sampling_rate > 0)
        and f"sampling rate {clip.sampling_rate!r}",
        np.asarray(clip.audio).ndim not in (1, 2) and f"audio of shape {np.shape(clip.audio)}",
        not np.issubdtype(np.asarray(clip.audio).dtype, np.floating)
        and f"audio of dtype {np.asarray(clip.audio).dtype} (float in [-1, 1] expected)",
    ]
    problems = [p for p in problems if p]
    if problems:
        raise ValueError(f"source {source_name!r}, clip {clip.key!r}: {'; '.join(problems)}")


def _pcm16(clip: Clip) -> np.ndarray:
    """The stored form: 16 kHz mono, rounded to 16-bit integers (what is hashed and written)."""
    audio = np.nan_to_num(np.asarray(clip.audio, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    mono = to_corpus_audio(audio, int(clip.sampling_rate))
    return np.round(mono * 32767).astype(np.int16)


def _safe_name(key: str) -> str:
    """A file path for `key`: safe characters per path part, plus a hash of the key if any changed."""
    parts = [_UNSAFE.sub("_", part).strip("._") or "_" for part in key.split("/") if part]
    name = "/".join(parts)
    return name if name == key else f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def _write_flac(path: Path, pcm: np.ndarray) -> None:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    soundfile.write(partial, pcm, CORPUS_SAMPLING_RATE, subtype="PCM_16", format="FLAC")
    os.replace(partial, path)


def _row(clip: Clip, file_name: str, split: str, digest: str, samples: int) -> dict[str, Any]:
    attributes = _plain(dict(clip.attributes))
    return {
        "file_name": file_name,
        "captions": captions_for(clip.label, clip.category, attributes, clip.key),
        "label": clip.label,
        "category": clip.category,
        "source": clip.source,
        "licence": spdx(clip.licence),  # one spelling per licence ("GPL-2+" -> "GPL-2.0+")
        "original_path": clip.original_path,
        "group": clip.group,
        "key": clip.key,
        "split": split,
        "duration": round(samples / CORPUS_SAMPLING_RATE, 4),
        "audio_sha256": digest,
        "attributes": attributes,
    }


def _plain(value: Any) -> Any:
    """Attributes as JSON values (numpy scalars and arrays, tuples → numbers and lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _skip(
    source: str, original_path: str, reason: str, duplicate_of: str | None = None
) -> dict[str, str]:
    item = {"source": source, "original_path": original_path, "reason": reason}
    return item | ({"duplicate_of": duplicate_of} if duplicate_of else {})


def assemble(
    out: str | os.PathLike, sources: Sequence[Source], settings: Mapping[str, Any]
) -> dict[str, Any]:
    """Metadata, `corpus.json` and README from the sources' markers, in source order.

    Audio that an earlier source already holds is dropped here (its file removed) and counted
    as a "duplicate"; a rerun after an interruption does the same again."""
    out = Path(out)
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    kept: dict[str, str] = {}
    for source in sources:
        staged = json.loads(_marker(out, source.name).read_text())
        skipped += staged["skipped"]
        for row in staged["rows"]:
            if row["audio_sha256"] in kept:
                (out / row["split"] / row["file_name"]).unlink(missing_ok=True)
                skipped.append(
                    _skip(
                        row["source"], row["original_path"], "duplicate", kept[row["audio_sha256"]]
                    )
                )
                continue
            kept[row["audio_sha256"]] = row["key"]
            rows.append(row)
    for split in SPLITS:
        lines = "".join(
            json.dumps(row, ensure_ascii=False) + "\n" for row in rows if row["split"] == split
        )
        _write_atomic(out / split / "metadata.jsonl", lines)
    summary = summarize(rows, skipped, settings)
    summary["fingerprint"] = hashlib.sha256(
        b"".join((out / split / "metadata.jsonl").read_bytes() for split in SPLITS)
    ).hexdigest()
    _write_atomic(out / "corpus.json", _dumps(summary))
    _write_atomic(out / "README.md", readme(summary))
    return summary


def _counts(values: Iterator[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def _labels(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """{category: {label: clips}}, sorted."""
    labels: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        labels[row["category"]][row["label"]] += 1
    return {category: dict(sorted(labels[category].items())) for category in sorted(labels)}


def _hours(rows: Sequence[Mapping[str, Any]]) -> float:
    return round(sum(row["duration"] for row in rows) / 3600, 3)


def summarize(
    rows: Sequence[Mapping[str, Any]],
    skipped: Sequence[Mapping[str, str]],
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """`corpus.json`'s content: counts, hours, licences and skips of the kept rows."""
    licences: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = licences.setdefault(row["licence"], {"clips": 0, "sources": set()})
        entry["clips"] += 1
        entry["sources"].add(row["source"])
    splits = {}
    for split in SPLITS:
        part = [row for row in rows if row["split"] == split]
        splits[split] = {
            "clips": len(part),
            "hours": _hours(part),
            "categories": _counts(row["category"] for row in part),
            "labels": _labels(part),
            "groups": sorted({row["group"] for row in part}),
        }
    skip_counts: dict[str, Counter] = defaultdict(Counter)
    for item in skipped:
        skip_counts[item["source"]][item["reason"]] += 1
    return {
        "settings": dict(settings),
        "clips": len(rows),
        "hours": _hours(rows),
        "splits": splits,
        "unmatched_test_groups": unmatched_patterns(
            {row["group"] for row in rows}, settings["test_groups"]
        ),
        "counts": {
            "source": _counts(row["source"] for row in rows),
            "category": _counts(row["category"] for row in rows),
            "hours_by_category": {
                category: _hours([row for row in rows if row["category"] == category])
                for category in CATEGORIES
            },
            "label": _labels(rows),
        },
        "licences": {
            licence: {"clips": entry["clips"], "sources": sorted(entry["sources"])}
            for licence, entry in sorted(licences.items())
        },
        "skipped": {
            "total": len(skipped),
            "reasons": _counts(item["reason"] for item in skipped),
            "by_source": {
                source: dict(sorted(c.items())) for source, c in sorted(skip_counts.items())
            },
            "items": list(skipped),
        },
    }


def readme(summary: Mapping[str, Any]) -> str:
    """A short human-readable summary of the corpus (`OUT/README.md`)."""
    settings = summary["settings"]
    lines = [
        "# SLAP Debian corpus",
        "",
        f"Built by `slap-data debian OUT --size {settings['size']}` from Debian 12 packages (audio: "
        f"{settings['format']}, {settings['sampling_rate']} Hz). {summary['clips']} clips, "
        f"{summary['hours']} hours; the train/test split is by source group (see `corpus.json`: "
        "`settings.test_groups`), so the test split holds soundfonts, kits, voices and packages training never heard.",
        "",
        "| category | " + " | ".join(SPLITS) + " | labels |",
        "|---|" + "---|" * (len(SPLITS) + 1),
    ]
    for category in CATEGORIES:
        counts = [str(summary["splits"][split]["categories"].get(category, 0)) for split in SPLITS]
        labels = len(summary["counts"]["label"].get(category, {}))
        lines.append(f"| {category} | " + " | ".join(counts) + f" | {labels} |")
    lines += ["", "Licences (each clip's own is in `metadata.jsonl`):", ""]
    lines += [
        f"- {licence}: {entry['clips']} clips from {', '.join(entry['sources'])}"
        for licence, entry in summary["licences"].items()
    ]
    reasons = ", ".join(f"{reason} {n}" for reason, n in summary["skipped"]["reasons"].items())
    lines += [
        "",
        f"Skipped: {summary['skipped']['total']} files ({reasons or 'none'}); the list is in `corpus.json`.",
        "",
    ]
    for title in ("packages", "tools"):
        versions = ", ".join(f"{name} {version}" for name, version in settings[title].items())
        lines += [f"{title.capitalize()}: {versions or 'none'}", ""]
    return "\n".join(lines)


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def report(summary: Mapping[str, Any], file=sys.stderr) -> None:
    """Print the counts a build ends with."""
    for split in SPLITS:
        part = summary["splits"][split]
        print(f"{split}: {part['clips']} clips, {part['hours']} h, {part['categories']}", file=file)
    print(f"skipped: {summary['skipped']['reasons']}", file=file)
