"""Clip durations read once from the files' headers, in parallel, and cached next to the data.

Token-budget batching needs every clip's duration before step 0. Reading a million headers one by
one on every rank is minutes of idle accelerators, so `probe_durations`:

- reads the headers (`soundfile.info`, never a decode) in a thread pool (the reads are file I/O
  and libsndfile calls, which release the GIL);
- keeps the results in a small JSON file next to the data (`.slap_durations.json` beside the
  manifest), keyed by the file's path relative to that folder, with its size and modification time:
  a file that changed (or a new one) is probed again, the others are read from the cache;
- under `torch.distributed`, lets rank 0 probe and write the cache while the other ranks wait for
  its word, then read it, probing themselves only what the cache lacks (e.g. when the folder is
  read-only and nothing could be written). If rank 0 fails, every rank raises: none waits forever.

A file that cannot be used (missing, undecodable header, no samples) comes back as the
`SkippedItem` that says why; undecodable and empty files are cached too (by size and time), so a
broken file is not re-read on every run.

    durations = probe_durations(["a.wav", {"bytes": ...}], base_dir="clips",
                                cache_file="clips/.slap_durations.json")
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from slap_audio.data.examples import MISSING_FILE, SkippedItem, probe_duration, resolve_path

logger = logging.getLogger(__name__)

CACHE_NAME = ".slap_durations.json"
CACHE_VERSION = 1
DEFAULT_THREADS = 16  # header reads wait on storage far more than on a core


def _probe(value: Any, base_dir: str | None) -> float | SkippedItem:
    try:
        return probe_duration(value, base_dir)
    except SkippedItem as err:
        return err


def _signature(path: str) -> tuple[int, int] | None:
    """(size, mtime in ns) of a file, `None` if it is not there."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _read_cache(cache_file: Path) -> dict[str, dict]:
    try:
        content = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(content, dict) or content.get("version") != CACHE_VERSION:
        return {}
    return content.get("files") or {}


def _write_cache(cache_file: Path, entries: dict[str, dict]) -> None:
    """Write atomically (a reader never sees half a file); a folder that cannot be written only
    costs the next run its probes."""
    temporary = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps({"version": CACHE_VERSION, "files": entries}), encoding="utf-8")
        os.replace(temporary, cache_file)
    except OSError as err:
        logger.warning("could not write the duration cache %s (%s): durations will be probed again", cache_file, err)
        temporary.unlink(missing_ok=True)


def _probe_with_cache(values: Sequence[Any], base_dir: str | None, cache_file: Path | None,
                      num_threads: int, write: bool) -> list[float | SkippedItem]:
    results: list[float | SkippedItem | None] = [None] * len(values)
    entries = _read_cache(cache_file) if cache_file is not None else {}
    keys: dict[int, tuple[str, tuple[int, int]]] = {}  # index → (cache key, signature) of each file value
    for index, value in enumerate(values):
        if cache_file is None or not isinstance(value, (str, os.PathLike)) or not str(value):
            continue
        path = resolve_path(value, base_dir)
        signature = _signature(path)
        if signature is None:
            results[index] = SkippedItem(MISSING_FILE, path)
            continue
        key = os.path.relpath(os.path.abspath(path), cache_file.parent)
        keys[index] = key, signature
        entry = entries.get(key)
        if entry is not None and (entry.get("size"), entry.get("mtime_ns")) == signature:
            results[index] = float(entry["duration"]) if "duration" in entry else SkippedItem(entry["reason"])
    todo = [index for index, result in enumerate(results) if result is None]
    if todo:
        with ThreadPoolExecutor(max(1, min(num_threads, len(todo)))) as pool:
            for index, result in zip(todo, pool.map(lambda i: _probe(values[i], base_dir), todo), strict=True):
                results[index] = result
    fresh = [index for index in todo if index in keys and (isinstance(results[index], float)
                                                           or results[index].reason != MISSING_FILE)]
    if write and fresh:
        for index in fresh:
            key, (size, mtime_ns) = keys[index]
            result = results[index]
            outcome = {"duration": result} if isinstance(result, float) else {"reason": result.reason}
            entries[key] = {"size": size, "mtime_ns": mtime_ns, **outcome}
        _write_cache(cache_file, entries)
    return results


def probe_durations(values: Sequence[Any], base_dir: str | os.PathLike | None = None,
                    cache_file: str | os.PathLike | None = None,
                    num_threads: int = DEFAULT_THREADS) -> list[float | SkippedItem]:
    """Duration in seconds (or the `SkippedItem` saying why not) of each audio value: a path
    (relative to `base_dir`), `{"bytes"|"path"}` or `{"array", "sampling_rate"}`.

    Paths are looked up in `cache_file` (none: no cache) and only new or changed files are probed,
    `num_threads` at a time. With an initialised process group, rank 0 probes and writes the cache
    first; the other ranks wait for its word (a broadcast every rank must reach), then read it, or
    raise an error naming what failed on rank 0. With NCCL the broadcast goes through the current
    CUDA device: each rank must have set its own (`slap-train` does, through `TrainingArguments`).
    """
    base = None if base_dir is None else str(base_dir)
    cache = None if cache_file is None else Path(cache_file)
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized() \
        and torch.distributed.get_world_size() > 1
    if not distributed:
        return _probe_with_cache(values, base, cache, num_threads, write=True)
    results, error = None, None
    if torch.distributed.get_rank() == 0:
        try:
            results = _probe_with_cache(values, base, cache, num_threads, write=True)
        except BaseException as err:  # an interrupt too: told to every rank, none waits for a cache never written
            error = err
    failure = [None if error is None else f"{type(error).__name__}: {error}"]
    torch.distributed.broadcast_object_list(failure, src=0)  # rank 0's word: the cache is written, or why not
    if error is not None:
        raise error
    if failure[0] is not None:
        raise RuntimeError(f"rank 0 failed while probing the clip durations: {failure[0]}")
    return results if results is not None else _probe_with_cache(values, base, cache, num_threads, write=False)
