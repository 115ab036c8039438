"""One rank of `test_data_scale.test_rank_zero_probes_and_the_others_read_the_cache`: a spawned
process that joins a gloo group, probes four clips through the duration cache and writes what it
read (or the error it raised) to `folder/rank<r>.json` (a small module: each spawned process imports it)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import soundfile
import torch

from slap_audio.data.durations import CACHE_NAME, probe_durations

CLIPS = ["a.wav", "b.wav", "c.flac", "dog.wav"]


def probe_on_rank(rank: int, world_size: int, port: int, folder: str, fail_on_rank_zero: bool = False) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                         world_size=world_size, timeout=timedelta(seconds=60))  # a hang fails fast
    reads, info = [], soundfile.info

    def counting(file, *args, **kwargs):
        reads.append(str(file))
        if fail_on_rank_zero and rank == 0:
            raise MemoryError("out of memory reading a header")  # not a broken clip: a failure of the run
        return info(file, *args, **kwargs)

    soundfile.info = counting
    try:
        outcome = {"durations": probe_durations(CLIPS, base_dir=folder, cache_file=Path(folder) / CACHE_NAME)}
    except Exception as err:
        outcome = {"error": f"{type(err).__name__}: {err}"}
    (Path(folder) / f"rank{rank}.json").write_text(json.dumps({"reads": len(reads), **outcome}))
    torch.distributed.destroy_process_group()
