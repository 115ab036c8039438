"""`bench/data_path.py`'s cached corpus: a run interrupted while writing it does not block the next."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_an_interrupted_corpus_is_written_again(tmp_path):
    partial = tmp_path / "data_path-quick-4" / "tar"  # shards of a run killed before its `done` marker
    partial.mkdir(parents=True)
    (partial / "shard-00000.tar").write_bytes(b"half a shard")
    script = ("from bench.data_path import write_corpus\n"
              "from slap_audio.data.shards import list_shards\n"
              "root = write_corpus(4, quick=True)\n"
              "print(len(list_shards(root / 'tar')), len(list_shards(root / 'parquet')), (root / 'done').is_file())")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SLAP_BENCH_CACHE": str(tmp_path), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["4", "4", "True"]  # clips_per_shard = 4 // 4
