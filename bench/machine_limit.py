"""Machine limit: the audio encoder's achieved FLOP/s as a fraction of this machine's fp32 matmul
throughput, measured in the same process, interleaved.

Measured: the `base` audio tower's forward on one pack of the workload (its first `--clips`
clips: a batch of 8, 77 s of audio, 1948 tokens by default), and a full training step of
`SlapModel` at `base` (forward + backward of the contrastive loss + fused AdamW, the Trainer's
default; the shared small text tower). FLOPs are counted with `FlopCounterMode` on warm-up
passes (CPU attention included, see `common.CPU_ATTENTION_FLOPS`). The machine's limit is fp32
matmul throughput with 2 threads, sustained over 3-second windows of back-to-back 2048² matmuls
(short bursts of 2048² and 4096² are reported too). Rounds alternate matmul window → forward →
matmul window → step → …, so the machine is measured right before and after each model
measurement, under the same load:

- `fraction_of_matmul` (the target's measure): best model time against the best matmul window;
- `paired_fraction_median`: per round, model rate / mean of the two adjacent matmul windows.

`--profile` adds a `torch.profiler` table of one forward and one training step (self CPU time
per op), which is where the time outside matmuls shows up.

    python -m bench.machine_limit               # base, ~1.5 min on 2 quiet cores (3–5 under load)
    python -m bench.machine_limit --profile     # plus the op tables
    python -m bench.machine_limit --quick       # micro model, 4 clips
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from .common import (
    emit,
    flop_counter,
    machine_info,
    matmul_gflops,
    matmul_sustained,
    param_count,
    print_table,
    set_threads,
)
from .train_step import slap_task
from .workload import caption_ids, load_audio, workload

BENCH = "machine_limit"
SAMPLING_RATE = 16_000


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def profile_table(fn, rows: int = 18) -> str:
    """Self-CPU-time table of one call of `fn` (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="micro model, 4 clips, small matmuls")
    parser.add_argument("--size", default=None, help="SLAP size (default base; quick: micro)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 2, quick 1)")
    parser.add_argument(
        "--clips", type=int, default=8, help="first clips of the workload in the pack"
    )
    parser.add_argument("--profile", action="store_true", help="print torch.profiler op tables")
    args = parser.parse_args(argv)
    size = args.size or ("micro" if args.quick else "base")
    repeats = args.repeats or (1 if args.quick else 2)
    matmul_sizes = (256, 512) if args.quick else (2048, 4096)
    set_threads()
    emit(BENCH, "machine", **machine_info())

    from slap_audio.modeling_slap import SlapFeatureExtractor

    specs = workload(args.quick)[: args.clips]
    waves = load_audio(workload(args.quick), SAMPLING_RATE)[: len(specs)]
    features = SlapFeatureExtractor()(waves, sampling_rate=SAMPLING_RATE)
    torch.manual_seed(0)
    model, objective = slap_task(size)
    model.train()  # SLAP has no dropout: the forward below is the same in either mode
    encoder = model.audio_model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # the Trainer's default
    ids = torch.from_numpy(caption_ids(len(specs), model.config.text_config.vocab_size))
    batch = {**features, "input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def forward() -> None:
        with torch.inference_mode():
            encoder(**features)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        objective(model, batch).backward()
        optimizer.step()

    with flop_counter() as counter:
        forward()
    forward_flops = counter.get_total_flops()
    with flop_counter() as counter:
        train_step()
    step_flops = counter.get_total_flops()

    burst = matmul_gflops(matmul_sizes)  # short bursts: the best the cores can do at all
    window = 0.2 if args.quick else 3.0
    matmul = [matmul_sustained(window, matmul_sizes[0])]
    times: dict[str, list[float]] = {"audio_forward": [], "train_step": []}
    paired: dict[str, list[float]] = {"audio_forward": [], "train_step": []}
    for _ in range(repeats):  # matmul window, forward, matmul window, step, matmul window, ...
        for name, fn, flops in (
            ("audio_forward", forward, forward_flops),
            ("train_step", train_step, step_flops),
        ):
            times[name].append(_timed(fn))
            matmul.append(matmul_sustained(window, matmul_sizes[0]))
            around = (matmul[-2] + matmul[-1]) / 2  # the machine just before and just after
            paired[name].append(flops / times[name][-1] / 1e9 / around)
    peak = max(matmul)
    audio_s = sum(s.duration for s in specs)
    rows = []
    for name, flops in (("audio_forward", forward_flops), ("train_step", step_flops)):
        achieved = flops / min(times[name]) / 1e9
        rows.append(
            emit(
                BENCH,
                name,
                size=size,
                clips=len(specs),
                audio_seconds=audio_s,
                tokens=int(features["audio_lengths"].sum()) // 4,
                flops=flops,
                seconds=min(times[name]),
                seconds_all=times[name],
                achieved_gflops_per_s=achieved,
                matmul_gflops=peak,
                fraction_of_matmul=achieved / peak,
                paired_fractions=paired[name],
                paired_fraction_median=statistics.median(paired[name]),
                audio_params=param_count(encoder),
                params=param_count(model),
            )
        )
    emit(
        BENCH,
        "matmul",
        matmul_gflops=peak,
        sustained_windows=matmul,
        window_seconds=window,
        **{f"burst_{key}": value for key, value in burst.items()},
    )
    print_table(
        f"Machine limit ({size}, {len(specs)} clips, {audio_s:.0f} s of audio, 2 threads)",
        rows,
        [
            ("config", "measure", ""),
            ("seconds", "best s", ".2f"),
            ("flops", "FLOPs", ".3g"),
            ("achieved_gflops_per_s", "GFLOP/s", ".1f"),
            ("matmul_gflops", "matmul GFLOP/s", ".1f"),
            ("fraction_of_matmul", "best / best", ".0%"),
            ("paired_fraction_median", "paired (median)", ".0%"),
        ],
    )
    emit(
        BENCH,
        "targets",
        forward_fraction=round(rows[0]["fraction_of_matmul"], 3),
        forward_fraction_paired_median=round(rows[0]["paired_fraction_median"], 3),
        forward_target_70pct_met=rows[0]["fraction_of_matmul"] >= 0.70,
        train_fraction=round(rows[1]["fraction_of_matmul"], 3),
        train_fraction_paired_median=round(rows[1]["paired_fraction_median"], 3),
        train_target_55pct_met=rows[1]["fraction_of_matmul"] >= 0.55,
    )
    if args.profile:
        print("\n#### profile: audio forward\n\n```\n" + profile_table(forward) + "```")
        print("\n#### profile: training step\n\n```\n" + profile_table(train_step) + "```")
    return {"forward": rows[0], "train_step": rows[1], "matmul": peak}


if __name__ == "__main__":
    main()
