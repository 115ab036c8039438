"""GPU benchmark: `base` in bf16 — tokens/s, model FLOP/s and MFU of the audio encoder's forward and
of a full training step, for each attention backend of the audio encoder, optionally compiled.

One command, on the seeded 1–30 s workload (`workload.py`; by default all 48 clips, 633 s of audio,
about 15 800 tokens, as one token-budget pack):

- `audio_forward`: the `base` audio encoder's forward (inference mode);
- `train_step`: `SlapForPreTraining` with all three objectives (contrastive + masked
  self-distillation with the no-grad EMA teacher pass + captioning; `train_step.slap_task`), forward +
  backward + fused AdamW — the step `machine_limit.py` measures on the CPU. The EMA update is left
  out (a few element-wise ops per parameter).

Precision: bf16 autocast over fp32 weights (what `TrainingArguments(bf16=True)` runs). Backends:
the audio encoder's `config._attn_implementation` ("sdpa", "flex_attention", "varlen"; its layers read
it at each call), set on the student and the EMA teacher; the text tower and the caption decoder keep
SDPA. A backend that fails to set up or to run one step on this
platform is reported as `unavailable: <reason>`, and the others are still measured. `--compile`
adds each backend with the audio encoder compiled (`torch.compile(dynamic=True)`).

Model FLOPs are counted (`torch.utils.flop_counter`, see `common.flop_counter`) on one pass with the
"sdpa" backend and used for every backend, so MFU compares the backends on the same work (SDPA's
local layers compute 3 key blocks per query block, a little more than the band they keep). MFU = model FLOP/s / the device's peak dense
bf16 FLOP/s (`PEAK_BF16_TFLOPS`, or `--peak-tflops`); on a CPU the peak is this machine's fp32 matmul
throughput measured in the same run (`common.matmul_gflops`). Times: median of `--steps` steps after
`--warmup` steps, synchronised with the device. `--quick` is a smoke run of the code path on a CPU
(micro model: `tiny`'s full step takes 5–20 s on a shared 2-core CPU; `--quick --size tiny` runs it);
its numbers say nothing about a GPU.

    python -m bench.gpu                          # base, bf16, every backend, 48 clips (needs a GPU)
    python -m bench.gpu --compile                # plus each backend compiled
    python -m bench.gpu --peak-tflops 312        # a device missing from the table
    python -m bench.gpu --quick                  # CPU smoke run: micro model, fp32, 4 clips, 1 step
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

import torch

from .common import (
    emit,
    flop_counter,
    machine_info,
    matmul_gflops,
    param_count,
    print_table,
    set_threads,
    slap_config,
)
from .train_step import slap_task
from .workload import caption_ids, describe, load_audio, workload

BENCH = "gpu"
SAMPLING_RATE = 16_000
BACKENDS = ("sdpa", "flex_attention", "varlen")

# Peak dense bf16 tensor-core throughput (no sparsity), TFLOP/s, from the vendors' data sheets;
# matched against `torch.cuda.get_device_name()` in this order (the first substring that matches).
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("GB200", 2500.0),
    ("B200", 2250.0),
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM5 (HBM3)
    ("H800", 989.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
)


def peak_tflops(device: torch.device, override: float | None) -> tuple[float, str]:
    """The device's peak FLOP/s (in TFLOP/s) and where the number comes from."""
    if override:
        return override, "--peak-tflops"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for pattern, tflops in PEAK_BF16_TFLOPS:
            if pattern in name:
                return tflops, f"table: {pattern} dense bf16"
        raise SystemExit(f"no peak bf16 FLOP/s known for {name!r}: pass --peak-tflops")
    return matmul_gflops((256, 512))["matmul_gflops"] / 1e3, "measured fp32 matmul (this run)"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(fn: Callable[[], None], device: torch.device, warmup: int, steps: int) -> list[float]:
    """Seconds of each of `steps` calls of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


class Measurement:
    """One backend (compiled or not): the model, its batch, the two measured functions."""

    def __init__(self, size: str, backend: str, compiled: bool, batch: dict, device: torch.device, dtype):
        torch.manual_seed(0)
        from slap_audio.modeling_slap import SlapAudioModel

        self.model, objective = slap_task(size)
        for module in self.model.modules():  # the student encoder and its EMA teacher
            if isinstance(module, SlapAudioModel):
                module.config._attn_implementation = backend
        self.model.to(device).train()  # SLAP has no dropout: the forward is the same in either mode
        if compiled:
            self.model.audio_model.compile(dynamic=True)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, fused=True)
        # the pack's layout as host ints (`max_audio_length`, `audio_length_groups`): no device read
        layout = ("input_features", "audio_lengths", "max_audio_length", "audio_length_groups")
        self.features = {key: batch[key] for key in layout if key in batch}
        self.batch = batch
        self.objective = objective
        self.autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)

    def audio_forward(self) -> None:
        with torch.inference_mode(), self.autocast:
            self.model.audio_model(**self.features)

    def train_step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast:
            loss = self.objective(self.model, self.batch)
        loss.backward()
        self.optimizer.step()


def count_flops(fn: Callable[[], None]) -> int:
    """FLOPs of one call of `fn`, counted (`common.flop_counter`)."""
    with flop_counter() as counter:
        fn()
    return counter.get_total_flops()


def failure(error: Exception) -> str:
    """`unavailable: <type>: <first line of the message>`."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return f"unavailable: {type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def build_batch(clips: int, quick: bool, vocab_size: int, device: torch.device) -> tuple[dict, dict]:
    """The workload's first `clips` clips as one pack, with random captions, on `device`."""
    from slap_audio.modeling_slap import SlapFeatureExtractor

    specs = workload(quick)[: clips or None]
    waves = load_audio(workload(quick), SAMPLING_RATE)[: len(specs)]
    features = SlapFeatureExtractor()(waves, sampling_rate=SAMPLING_RATE, return_max_audio_length=True)
    ids = torch.from_numpy(caption_ids(len(specs), vocab_size))
    batch = {**features, "input_ids": ids, "attention_mask": torch.ones_like(ids)}
    batch = {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}
    info = describe(specs) | {"tokens": int(features["audio_lengths"].sum()) // 4}  # 4 tokens per 16 frames
    return batch, info


def measure(
    size: str, backend: str, compiled: bool, batch: dict, device: torch.device, dtype, args
) -> dict:
    """Counted FLOPs and step times of one configuration. Each of the two measures that fails on this
    platform (a backend without a backward here, say) gets `<measure>_status: unavailable: <reason>`."""
    run = Measurement(size, backend, compiled, batch, device, dtype)
    fields = {"audio_params": param_count(run.model.audio_model), "params": param_count(run.model)}
    for name in ("audio_forward", "train_step"):
        fn = getattr(run, name)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        try:
            fn()  # one step first: a backend that cannot run fails here
            times = timed_steps(fn, device, args.warmup, args.steps)
        except Exception as error:  # noqa: BLE001 — any failure of a backend is its result here
            fields[f"{name}_status"] = failure(error)
            continue
        fields[f"{name}_status"] = "measured"
        fields[f"{name}_seconds"] = statistics.median(times)
        fields[f"{name}_seconds_all"] = [round(t, 5) for t in times]
        if device.type == "cuda":
            fields[f"{name}_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    del run
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return fields


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="micro model, fp32, 4 clips, 1 step (CPU smoke run)")
    parser.add_argument("--size", default=None, help="SLAP size (default base; quick: micro)")
    parser.add_argument("--device", default=None, help="default cuda when available, else cpu (quick only)")
    parser.add_argument("--dtype", choices=("bf16", "fp32"), default=None, help="default bf16; quick: fp32")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), help="audio attention backends")
    parser.add_argument("--compile", action="store_true", help="also each backend with the encoder compiled")
    parser.add_argument("--clips", type=int, default=0, help="first clips of the workload in the pack (0 = all)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 10; quick 1)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3; quick 0)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak dense TFLOP/s")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu" and not args.quick and args.device is None:
        parser.error("no GPU here: run with --quick (or --device cpu to measure base on the CPU anyway)")
    size = args.size or ("micro" if args.quick else "base")
    dtype = torch.float32 if (args.dtype or ("fp32" if args.quick else "bf16")) == "fp32" else torch.bfloat16
    args.steps = args.steps or (1 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (0 if args.quick else 3)
    set_threads()

    peak, peak_source = peak_tflops(device, args.peak_tflops)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    emit(BENCH, "machine", **machine_info(), device=device_name, peak_tflops=peak, peak_source=peak_source,
         cuda=torch.version.cuda)
    vocab_size = slap_config(size).text_config.vocab_size
    batch, pack = build_batch(4 if args.quick else args.clips, args.quick, vocab_size, device)
    emit(BENCH, "workload", **pack)

    reference = Measurement(size, "sdpa", False, batch, device, dtype)  # the model FLOPs, counted once
    model_flops = {name: count_flops(getattr(reference, name)) for name in ("audio_forward", "train_step")}
    del reference
    rows = []
    for backend in args.backends:
        for compiled in (False, True) if args.compile else (False,):
            config = backend + (" + compile" if compiled else "")
            record = dict(size=size, dtype=str(dtype).removeprefix("torch."), backend=backend, compiled=compiled)
            try:
                fields = measure(size, backend, compiled, batch, device, dtype, args)
            except Exception as error:  # noqa: BLE001 — a backend that cannot even be built
                rows.append(emit(BENCH, config, **record, status=failure(error)))
                continue
            for name in ("audio_forward", "train_step"):
                if fields[f"{name}_status"] != "measured":
                    continue
                seconds = fields[f"{name}_seconds"]
                flops_per_s = model_flops[name] / seconds
                fields |= {
                    f"{name}_model_flops": model_flops[name],
                    f"{name}_tokens_per_s": pack["tokens"] / seconds,
                    f"{name}_audio_s_per_s": pack["audio_seconds"] / seconds,
                    f"{name}_tflops_per_s": flops_per_s / 1e12,
                    f"{name}_mfu": flops_per_s / (peak * 1e12),
                }
            forward, step = fields["audio_forward_status"], fields["train_step_status"]
            status = forward if forward == step else "; ".join(
                f"{name} {state}" for name, state in (("forward", forward), ("step", step))
                if state != "measured"
            )
            rows.append(emit(BENCH, config, **record, status=status, **fields))
    report(rows, size, dtype, device_name, pack, device.type == "cuda")
    return rows


def report(rows: list[dict], size: str, dtype, device_name: str, pack: dict, on_gpu: bool) -> None:
    """The table and the target line (training-step MFU of the best backend, SPEC §9: ≥ 45 % on a
    GPU; not judged on a CPU)."""
    print_table(
        f"{size}, {str(dtype).removeprefix('torch.')}, {device_name}: {pack['clips']} clips, "
        f"{pack['audio_seconds']:.0f} s of audio, {pack['tokens']} tokens per pack",
        rows,
        [
            ("config", "config", ""),
            ("status", "status", ""),
            ("audio_forward_tokens_per_s", "forward tokens/s", ",.0f"),
            ("audio_forward_tflops_per_s", "forward TFLOP/s", ".2f"),
            ("audio_forward_mfu", "forward MFU", ".1%"),
            ("train_step_tokens_per_s", "step tokens/s", ",.0f"),
            ("train_step_audio_s_per_s", "step audio s/s", ",.0f"),
            ("train_step_tflops_per_s", "step TFLOP/s", ".2f"),
            ("train_step_mfu", "step MFU", ".1%"),
            ("train_step_peak_mib", "step peak MiB", ",.0f"),
        ],
    )
    measured = [row for row in rows if row.get("train_step_status") == "measured"]
    best = max(measured, key=lambda row: row["train_step_mfu"], default=None)
    emit(
        BENCH,
        "targets",
        best_backend=best and best["config"],
        best_train_step_mfu=best and round(best["train_step_mfu"], 4),
        train_step_45pct_mfu_met=bool(best and best["train_step_mfu"] >= 0.45) if on_gpu else None,
        unavailable={row["config"]: row["status"] for row in rows if row["status"] != "measured"},
    )


if __name__ == "__main__":
    main()
