"""Audio search at library scale: `slap-search`'s index build, update and query times.

One sequential run of the user's workflow on a folder of audio files (default: the Debian
corpus, 4,863 FLAC clips, 2.9 h, built by `slap-data debian`), with a trained checkpoint:

1. `build`: embed every file into a new index (decode, resample, pack by audio seconds, embed);
2. `update_unchanged`: build again with nothing changed (the scan and the manifest only);
3. `update_one_changed`: one file replaced by a new copy: that file alone is embedded again;
4. `query_text` / `query_audio`: latency of one query (embedding the query + the exact search),
   median over `--queries` queries, after one warm-up; `search_only`: the inner-product search
   alone, FAISS `IndexFlatIP` and numpy.

The library is indexed through a folder of symlinks to its files (made in a temporary folder), so
that step 3 changes a file without touching the library. Absolute times on a shared machine:
the load average is printed at start and end.

    python -m bench.search_index                                   # the corpus, runs/real-full/slap
    python -m bench.search_index --folder DIR --model M
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from slap_audio.search import SearchIndex, scan_library

from .common import emit, machine_info, set_threads

QUERIES = (
    "a piano playing a low note", "a snare drum hit", "a man speaking German", "an explosion",
    "a violin melody", "a woman speaking", "a bell ringing", "a crash cymbal", "a laser shot",
    "an acoustic guitar chord", "footsteps", "a bass drum", "an organ chord", "a trumpet",
    "a robot voice", "a click", "a flute playing a high note", "a door closing", "water splashing",
    "a synthesizer pad",
)


def _median_seconds(calls) -> float:
    times = []
    for call in calls:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="/work/corpus/debian", help="the library to index")
    parser.add_argument("--model", default="runs/real-full/slap", help="a SlapModel checkpoint")
    parser.add_argument("--queries", type=int, default=len(QUERIES), help="queries timed per kind")
    args = parser.parse_args(argv)
    set_threads()
    emit("search_index", "machine", **machine_info())
    with tempfile.TemporaryDirectory() as tmp:
        library, out = Path(tmp) / "library", Path(tmp) / "index"
        for file in scan_library(args.folder):
            (library / file.path).parent.mkdir(parents=True, exist_ok=True)
            (library / file.path).symlink_to(Path(args.folder).resolve() / file.path)
        index = SearchIndex.build(library, args.model, out, progress=True)
        stats = index.stats
        emit("search_index", "build", **stats, files_per_s=round(stats["embedded"] / stats["seconds"], 1),
             audio_s_per_s=round(stats["audio_seconds"] / stats["seconds"], 1),
             index_mib=round(sum(f.stat().st_size for f in out.iterdir()) / 2**20, 2))
        unchanged = SearchIndex.build(library, index.model, out, processor=index.processor)
        emit("search_index", "update_unchanged", **unchanged.stats)
        changed_file = library / index.files[len(index) // 2]["path"]
        target = changed_file.resolve()
        changed_file.unlink()
        shutil.copyfile(target, changed_file)  # the same audio, a new modification time
        changed = SearchIndex.build(library, index.model, out, processor=index.processor)
        emit("search_index", "update_one_changed", **changed.stats)

        texts = [QUERIES[i % len(QUERIES)] for i in range(args.queries)]
        clips = [index.root / index.files[i * len(index) // args.queries]["path"] for i in range(args.queries)]
        index.query_text(texts[0])  # warm-up
        emit("search_index", "query_text", k=10, files=len(index), queries=len(texts),
             median_ms=round(1000 * _median_seconds(lambda t=t: index.query_text(t) for t in texts), 2))
        emit("search_index", "query_audio", k=10, files=len(index), queries=len(clips),
             median_ms=round(1000 * _median_seconds(lambda c=c: index.query_audio(c) for c in clips), 2),
             median_clip_seconds=statistics.median(index.files[i * len(index) // args.queries]["duration"]
                                                   for i in range(args.queries)))
        vectors = index.embeddings[:: max(1, len(index) // 100)]
        for backend in ("faiss", "numpy"):
            searcher = SearchIndex.load(out, index.model, processor=index.processor, backend=backend)
            emit("search_index", "search_only", backend=searcher.backend, files=len(index),
                 median_ms=round(1000 * _median_seconds(lambda v=v, s=searcher: s.search(v) for v in vectors), 3))
    emit("search_index", "end", loadavg_1min=round(os.getloadavg()[0], 2))


if __name__ == "__main__":
    main()
