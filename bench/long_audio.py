"""Long audio: time and peak memory to embed one recording of 10 s … 10 min in one pass, and
60 minutes in a chunked mode.

Each (size, duration) runs in its own process: the recording is rendered (`render_long`, 16 kHz),
the model is warmed up on a 2 s clip, then one pass waveform → embedding is timed while the
process's peak resident memory is tracked (`VmHWM` above the RSS before the pass; the waveform
itself is already resident). One pass means one clip in one pack: every global layer attends over
the whole recording.

The chunked mode (`embed_chunked`) cuts the recording into `--chunk-minutes` chunks, embeds them
one after another and averages the normalised chunk embeddings weighted by chunk duration; its
memory is one chunk's. `modeling_slap` has no chunked helper yet, so it lives here.

    python -m bench.long_audio                   # tiny 10 s–10 min, 60 min chunked, base 10–60 s
    python -m bench.long_audio --base 10 60 300  # base durations (seconds; default 10 60)
    python -m bench.long_audio --quick           # micro model, 10 s and 60 s, chunked 2 min
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from .common import (
    PeakMemory,
    add_isolate_argument,
    emit,
    print_table,
    run_side_by_side,
    slap_config,
    start_run,
)
from .workload import render_long

BENCH = "long_audio"
SAMPLING_RATE = 16_000
TOKENS_PER_S = 25  # 4 frequency patches per 160 ms column


def embed_chunked(
    model, feature_extractor, waveform: np.ndarray, sampling_rate: int, chunk_seconds: float
) -> torch.Tensor:
    """Embed a recording too long for one pass: chunks of `chunk_seconds`, embedded one at a time,
    their normalised embeddings averaged weighted by duration and renormalised. `(1, dim)`."""
    step = int(chunk_seconds * sampling_rate)
    total, weight = None, 0
    for start in range(0, waveform.shape[0], step):
        chunk = waveform[start : start + step]
        features = feature_extractor([chunk], sampling_rate=sampling_rate)
        embed = model.get_audio_features(**features).pooler_output * chunk.shape[0]
        total = embed if total is None else total + embed
        weight += chunk.shape[0]
    return torch.nn.functional.normalize(total / weight, dim=-1)


class LongAudioRunner:
    """One recording of `seconds`, embedded in one pass (or in chunks of `chunk_seconds`)."""

    def __init__(self, size: str, seconds: float, chunk_seconds: float | None = None):
        from slap_audio.modeling_slap import SlapFeatureExtractor, SlapModel

        torch.manual_seed(0)
        self.model = SlapModel(slap_config(size)).eval()
        self.fe = SlapFeatureExtractor()
        self.seconds, self.chunk_seconds = seconds, chunk_seconds
        self.waveform = render_long(seconds, SAMPLING_RATE)

    def setup(self) -> dict:
        with torch.inference_mode():  # warm-up on 2 s (kernels, thread pool), short enough that
            # the measured pass allocates its own working memory even at 10 s
            self.model.get_audio_features(
                **self.fe([self.waveform[: 2 * SAMPLING_RATE]], sampling_rate=SAMPLING_RATE)
            )
        return {
            "audio_seconds": self.seconds,
            "tokens_per_pass": int(
                min(self.seconds, self.chunk_seconds or self.seconds) * TOKENS_PER_S
            ),
            "mode": "chunked" if self.chunk_seconds else "one_pass",
            "chunk_seconds": self.chunk_seconds,
            "parts": 1,
        }

    def run(self, part: int = 0) -> dict:
        with PeakMemory() as memory, torch.inference_mode():
            start = time.perf_counter()
            if self.chunk_seconds:
                embed = embed_chunked(
                    self.model, self.fe, self.waveform, SAMPLING_RATE, self.chunk_seconds
                )
                fe_s = None
            else:
                features = self.fe([self.waveform], sampling_rate=SAMPLING_RATE)
                fe_s = time.perf_counter() - start
                embed = self.model.get_audio_features(**features).pooler_output
            seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "fe_seconds": fe_s,
            "embedding_norm": float(embed.norm()),
            "finite": bool(torch.isfinite(embed).all()),
            **memory.fields(),
        }


def make_runner(size: str, seconds: float, chunk_seconds: float | None = None) -> LongAudioRunner:
    return LongAudioRunner(size, seconds, chunk_seconds)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="micro model, short recordings, in-process"
    )
    parser.add_argument("--size", default="tiny", help="SLAP size of the main rows (default tiny)")
    parser.add_argument("--durations", type=float, nargs="*", default=[10, 60, 300, 600])
    parser.add_argument(
        "--base", type=float, nargs="*", default=[10, 60], help="base durations (s)"
    )
    parser.add_argument(
        "--chunked-minutes", type=float, default=60.0, help="length of the chunked recording"
    )
    parser.add_argument("--chunk-minutes", type=float, default=10.0)
    add_isolate_argument(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.durations, args.base = "micro", [10, 60], []
        args.chunked_minutes, args.chunk_minutes = 2.0, 1.0
    isolate = start_run(BENCH, args)
    configs = {}
    for size, durations in ((args.size, args.durations), ("base", args.base)):
        for seconds in durations:
            configs[f"{size}_{seconds:g}s"] = (make_runner, {"size": size, "seconds": seconds})
    chunked = f"{args.size}_{args.chunked_minutes:g}min_chunked"
    configs[chunked] = (
        make_runner,
        {
            "size": args.size,
            "seconds": args.chunked_minutes * 60,
            "chunk_seconds": args.chunk_minutes * 60,
        },
    )
    results = run_side_by_side(configs, repeats=1, isolate=isolate)
    return report(results)


def report(results: dict[str, dict]) -> dict[str, dict]:
    """Per-minute memory and speed, JSON lines, the table, the §9 checks."""
    rows = []
    for name, r in results.items():
        r.update(
            audio_s_per_s=r["audio_seconds"] / r["seconds"],
            mib_per_audio_minute=r["peak_delta_mib"] / (r["audio_seconds"] / 60),
        )
        emit(BENCH, name, **r)
        rows.append({"config": name, **r})
    print_table(
        "Long audio (one recording, 2 threads)",
        rows,
        [
            ("config", "config", ""),
            ("mode", "mode", ""),
            ("audio_seconds", "audio s", ".0f"),
            ("seconds", "time s", ".2f"),
            ("audio_s_per_s", "audio s/s", ".1f"),
            ("peak_delta_mib", "peak Δ MiB", ".0f"),
            ("mib_per_audio_minute", "MiB / audio min", ".1f"),
            ("finite", "finite", ""),
        ],
    )
    one_pass = [r for r in results.values() if r["mode"] == "one_pass"]
    chunked = [r for r in results.values() if r["mode"] == "chunked"]
    by_size: dict[str, list[dict]] = {}
    for name, r in results.items():
        if r["mode"] == "one_pass":
            by_size.setdefault(name.rsplit("_", 1)[0], []).append(r)
    growth = {}
    for size, rows_ in by_size.items():  # memory per audio minute, longest vs 60 s (≤ ~1: linear)
        rows_ = sorted(rows_, key=lambda r: r["audio_seconds"])
        ref = next((r for r in rows_ if r["audio_seconds"] >= 60), None)
        if ref is not None and rows_[-1] is not ref and ref["peak_delta_mib"] > 0:
            growth[size] = round(rows_[-1]["mib_per_audio_minute"] / ref["mib_per_audio_minute"], 3)
    emit(
        BENCH,
        "targets",
        longest_one_pass_seconds=max((r["audio_seconds"] for r in one_pass), default=None),
        ten_minutes_one_pass_met=any(r["audio_seconds"] >= 600 and r["finite"] for r in one_pass),
        memory_per_minute_longest_over_60s=growth,
        chunked_met=any(r["finite"] for r in chunked),
    )
    return results


if __name__ == "__main__":
    main()
