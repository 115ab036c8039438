"""The data path's throughput per worker, beside the model's consumption: how many DataLoader
workers keep one accelerator fed.

One *data worker* (one process, one thread, as a DataLoader worker runs) turns files into packed
features — read, decode the training crop only, resample, log-mel, pack, tokenize — for the
workload's clips stored three ways:

- `folder`   an audio folder of FLAC files + `metadata.jsonl` (map-style `AudioTextDataset`,
             `TokenBudgetBatchSampler`, crops decoded partially),
- `tar`      WebDataset tar shards (`ShardStream`, one pass of one reader),
- `parquet`  parquet shards (audio bytes + captions columns; `ShardStream`),

each through the `SlapCollator`, timed over a whole pass: clips/s, audio seconds/s and packed
tokens/s per worker. Beside it, `model` is a full `SlapForPreTraining` training step (forward +
backward + fused AdamW, `bench/train_step.py`'s runner) at `--size` (default `base`) on the same
clips: the tokens/s it consumes. `workers_needed` = model tokens/s ÷ a worker's tokens/s, the
number of data workers that keep this model busy on this machine; on a GPU, put the GPU's tokens/s
(`bench/gpu.py`) over the worker rate measured here on the host's cores.

    python -m bench.data_path                  # 16 clips, base model (minutes on 2 cores)
    python -m bench.data_path --size tiny      # a smaller model beside the data path
    python -m bench.data_path --quick          # micro model, 4 clips, in-process
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import soundfile
import torch

from .common import add_isolate_argument, emit, print_table, run_side_by_side, start_run
from .train_step import make_runner
from .workload import cache_dir, describe, load_audio, workload

BENCH = "data_path"
SLAP_RATE = 16_000
CROP_SECONDS = 30.0  # slap-train's default training crop
MAX_TOKENS = 6000  # slap-train's default budget
FORMATS = ("folder", "tar", "parquet")


def write_corpus(num_clips: int, quick: bool) -> Path:
    """The workload's first clips as a FLAC audio folder plus its tar and parquet shards (cached)."""
    from slap_audio.data.shards import write_shards

    specs = workload(quick)[:num_clips]
    root = cache_dir() / f"data_path-{'quick' if quick else 'full'}-{num_clips}"
    if (root / "done").is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)  # an interrupted run's part (write_shards refuses a folder with shards)
    folder = root / "folder"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "metadata.jsonl", "w") as manifest:
        for spec, audio in zip(specs, load_audio(specs, SLAP_RATE), strict=True):
            name = f"clip-{spec.index:03d}.flac"
            soundfile.write(folder / name, audio, SLAP_RATE, subtype="PCM_16")
            manifest.write(json.dumps({"file_name": name, "caption": f"a clip of {spec.duration} seconds"}) + "\n")
    for format in ("tar", "parquet"):
        write_shards(folder, root / format, format=format, clips_per_shard=max(1, num_clips // 4))
    (root / "done").write_text("ok")
    return root


class DataRunner:
    """One pass of one data worker over the corpus in one storage format."""

    def __init__(self, format: str, root: str):
        from transformers import BertTokenizer

        from slap_audio.data.sources import load_audio_text_dataset
        from slap_audio.modeling_slap import SlapFeatureExtractor, SlapProcessor
        from slap_audio.training.collator import SlapCollator

        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz0123456789.", "clip", "of",
                 "seconds"]
        tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})
        self.collator = SlapCollator(SlapProcessor(SlapFeatureExtractor(), tokenizer), max_tokens=MAX_TOKENS,
                                     crop_seconds=CROP_SECONDS, seed=0)
        self.format, self.root = format, Path(root)
        if format == "folder":  # loading (durations from the header cache) is once per run, not per pass
            self.dataset = load_audio_text_dataset(self.root / "folder")
            self.dataset.set_crops(self.collator)

    def _batches(self):
        from slap_audio.training.batching import TokenBudgetBatchSampler
        from slap_audio.training.streaming import ShardStream

        if self.format == "folder":
            sampler = TokenBudgetBatchSampler.from_durations(self.dataset.durations, MAX_TOKENS,
                                                             crop_seconds=CROP_SECONDS)
            return ([self.dataset[i] for i in batch] for batch in sampler)
        return ShardStream(self.root / self.format, self.collator, MAX_TOKENS).epoch_batches(0)

    def _pass(self) -> dict:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a DataLoader worker's setting
        try:
            clips = frames = 0
            start = time.perf_counter()
            for examples in self._batches():
                batch = self.collator(examples)
                clips += len(batch["audio_lengths"])
                frames += int(batch["audio_lengths"].sum())
            seconds = time.perf_counter() - start
        finally:
            torch.set_num_threads(threads)
        return {"seconds": seconds, "clips": clips, "audio_seconds": frames / 100, "tokens": frames // 16 * 4}

    def setup(self) -> dict:
        counts = self._pass()  # warm-up: imports, caches
        return {"parts": 1, **{k: v for k, v in counts.items() if k != "seconds"}}

    def run(self, part: int) -> dict:
        return {"seconds": self._pass()["seconds"]}


def make_data_runner(format: str, root: str) -> DataRunner:
    return DataRunner(format, root)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="micro model, 4 clips, in-process")
    parser.add_argument("--size", default=None, help="model beside the data path: base (default), tiny, micro")
    parser.add_argument("--clips", type=int, default=16, help="first clips of the workload")
    parser.add_argument("--repeats", type=int, default=None, help="timed passes (default 2, quick 1)")
    add_isolate_argument(parser)
    args = parser.parse_args(argv)
    quick = args.quick
    isolate = start_run(BENCH, args)
    num_clips = 4 if quick else args.clips
    emit(BENCH, "workload", **describe(workload(quick)[:num_clips]))
    root = write_corpus(num_clips, quick)
    size = args.size or ("micro" if quick else "base")
    configs = {format: (make_data_runner, {"format": format, "root": str(root)}) for format in FORMATS}
    configs["model"] = (make_runner, {"mode": "slap_packed", "audio": size, "quick": quick, "max_tokens": None,
                                      "clips": num_clips, "clap_clips": 0})
    results = run_side_by_side(configs, args.repeats or (1 if quick else 2), isolate=isolate)
    return report(results, size)


def report(results: dict[str, dict], size: str) -> dict[str, dict]:
    """Rates per worker, the model's consumption, workers needed; JSON lines and the table."""
    model = results["model"]
    model["tokens_per_s"] = model["model_tokens"] / model["seconds"]
    model["audio_s_per_s"] = model["audio_seconds"] / model["seconds"]
    model["clips_per_s"] = model["clips"] / model["seconds"]
    emit(BENCH, "model", size=size, **model)
    rows = [{"config": f"model ({size}, training step)", **model}]
    for format in FORMATS:
        r = results[format]
        r.update(clips_per_s=r["clips"] / r["seconds"], audio_s_per_s=r["audio_seconds"] / r["seconds"],
                 tokens_per_s=r["tokens"] / r["seconds"])
        r["workers_needed"] = model["tokens_per_s"] / r["tokens_per_s"]
        emit(BENCH, format, **r)
        rows.append({"config": f"{format} (1 worker)", **r})
    print_table(
        "Data path per worker (file → packed features) beside the model's consumption",
        rows,
        [("config", "config", ""), ("clips_per_s", "clips/s", ".1f"), ("audio_s_per_s", "audio s/s", ".1f"),
         ("tokens_per_s", "tokens/s", ".0f"), ("workers_needed", "workers per model", ".2f")],
    )
    emit(BENCH, "targets", **{f"workers_needed_{f}": round(results[f]["workers_needed"], 3) for f in FORMATS})
    return results


if __name__ == "__main__":
    main()
