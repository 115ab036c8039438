"""Shared machinery of the SLAP benchmarks: machine line, model builders, FLOP counting, peak
memory, side-by-side runs, JSON lines and tables.

Each benchmark builds one *runner* per configuration: an object with `setup() -> dict` (build
the model and inputs, warm up, count FLOPs, measure memory; `"parts"`: how many batches or steps
make one pass) and `run(part) -> dict` (time one part; wall time in `"seconds"`).
`run_side_by_side` gives every runner its own process, so peak memory is that configuration's
alone, and interleaves the parts of all configurations, so the load of this shared 2-core
machine (other jobs come and go) hits every configuration alike; each part keeps its fastest
repeat. Results are ratios between configurations of the same run, never absolute targets.

Nothing here is a test: the benchmarks are run by hand (see `bench/README.md`).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

NUM_THREADS = 2
MIB = 1024 * 1024

# The text tower of every model in the benchmarks: all-MiniLM-L6-v2's shape (SLAP's `tiny` text
# tower). The benchmarks compare audio towers; a shared small text tower keeps it that way.
SMALL_TEXT = dict(
    hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536
)


class Runner(Protocol):
    """One benchmark configuration (see the module docstring)."""

    def setup(self) -> dict: ...

    def run(self, part: int) -> dict: ...


# ---------------------------------------------------------------------------------------------
# machine, output


def add_isolate_argument(parser: argparse.ArgumentParser) -> None:
    """`--isolate/--no-isolate`: one process per configuration (default: on, off with --quick)."""
    parser.add_argument(
        "--isolate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one process per configuration (default: on, off with --quick)",
    )


def start_run(bench: str, args: argparse.Namespace) -> bool:
    """Set the threads, print the machine line; returns whether configurations run isolated."""
    set_threads()
    emit(bench, "machine", **machine_info())
    return (not args.quick) if args.isolate is None else args.isolate


def set_threads() -> None:
    """The benchmarks' thread setting: `torch.set_num_threads(2)`."""
    torch.set_num_threads(NUM_THREADS)


def cpu_model() -> str:
    """The CPU's model name, as the kernel reports it."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """CPU model, cores, library versions, threads and the load average at start."""
    import transformers

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "torch_threads": NUM_THREADS,
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def emit(bench: str, config: str, **fields: Any) -> dict:
    """Print one JSON line `{"bench": ..., "config": ..., **fields}` and return the record."""
    record = {"bench": bench, "config": config, **fields}
    print(json.dumps(record, default=_jsonable), flush=True)
    return record


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def print_table(title: str, rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> None:
    """A markdown table of `rows`; `columns` are `(key, header, format)` (format "" = str)."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header for _, header, _ in columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            cells.append("–" if value is None else (format(value, fmt) if fmt else str(value)))
        print("| " + " | ".join(cells) + " |")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# FLOPs and machine limit

aten = torch.ops.aten


def _cpu_sdpa_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_sdpa_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# torch's counter has formulas for the CUDA attention kernels only: on CPU, SDPA runs
# `_scaled_dot_product_flash_attention_for_cpu` and would count 0 FLOPs. Same formula, same shapes.
CPU_ATTENTION_FLOPS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward_flops,
}


def flop_counter() -> FlopCounterMode:
    """`FlopCounterMode` that also counts CPU SDPA. Entering it resets its count."""
    return FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS)


def matmul_gflops(sizes: Sequence[int] = (2048, 4096), repeats: int = 3) -> dict:
    """This machine's fp32 matmul throughput: best GFLOP/s of square `n × n` matmuls per size.

    Returns `{"matmul_gflops": best over sizes, "matmul_gflops_<n>": best for n, ...}`.
    """
    out = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)  # warm-up
        best = min(_timed(lambda a=a, b=b: torch.mm(a, b)) for _ in range(repeats))
        out[f"matmul_gflops_{n}"] = round(2 * n**3 / best / 1e9, 2)
    out["matmul_gflops"] = max(out.values())
    return out


def matmul_sustained(seconds: float, n: int = 2048) -> float:
    """fp32 matmul GFLOP/s sustained over about `seconds` of back-to-back `n × n` matmuls."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while True:
        torch.mm(a, b)
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return 2 * n**3 * count / elapsed / 1e9


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# peak memory


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib() -> float:
    """Resident memory of this process now, MiB."""
    kib = _status_kib("VmRSS")
    if kib is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return kib / 1024


class PeakMemory:
    """Peak resident memory of this process inside a `with` block, as MiB above the RSS at entry.

    Linux: the high-water mark `VmHWM` is reset on entry (`/proc/self/clear_refs` ← 5) and read on
    exit. Elsewhere it falls back to `ru_maxrss`, which cannot be reset: then only a fresh
    process measures correctly, which is how the benchmarks run anyway (one process per
    configuration). Torch allocates with plain malloc, so RSS is what the OS had to provide.
    """

    def __enter__(self) -> PeakMemory:
        self.before = rss_mib()
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
            self.method = "VmHWM"
        except OSError:
            self.method = "ru_maxrss"
        return self

    def __exit__(self, *exc) -> None:
        if self.method == "VmHWM":
            self.peak = (_status_kib("VmHWM") or 0) / 1024
        else:
            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.delta = max(0.0, self.peak - self.before)

    def fields(self, prefix: str = "") -> dict:
        """`{peak_rss_mib, peak_delta_mib, memory_method}` for the JSON line."""
        return {
            f"{prefix}peak_rss_mib": round(self.peak, 1),
            f"{prefix}peak_delta_mib": round(self.delta, 1),
            "memory_method": self.method,
        }


# ---------------------------------------------------------------------------------------------
# models


def slap_config(audio: str | dict, text: dict | None = None):
    """A `SlapConfig` whose audio tower is a named size (`"micro"`, `"tiny"`, `"base"`), `"matched"`
    (`htsat_matched_config`) or an explicit audio-config dict, with the shared small text tower
    (micro: micro's own)."""
    from slap_audio.modeling_slap import NAMED_SIZES, SlapConfig

    if audio == "matched":
        audio = htsat_matched_config().audio_config

    if isinstance(audio, str):
        size, audio_config = audio, dict(NAMED_SIZES[audio]["audio_config"])
    else:
        size, audio_config = "tiny", dict(audio)
    if text is None and size != "micro":
        text = dict(NAMED_SIZES["tiny"]["text_config"])
    overrides = {"audio_config": audio_config}
    if text is not None:
        overrides["text_config"] = text
    return SlapConfig.from_size("micro" if size == "micro" else "tiny", **overrides)


def clap_config(fusion: bool = False, quick: bool = False):
    """`ClapConfig` as in `laion/clap-htsat-(un)fused` (HTSAT audio tower, ClapConfig's defaults)
    with the shared small text tower; `quick` shrinks the audio tower for smoke tests."""
    from transformers import ClapConfig

    audio = {"enable_fusion": fusion}
    text = dict(SMALL_TEXT)
    if quick:
        audio.update(
            hidden_size=64,
            patch_embeds_hidden_size=8,
            depths=[1, 1, 1, 1],
            num_attention_heads=[1, 2, 4, 8],
        )
        text.update(
            hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
        )
    return ClapConfig(audio_config=audio, text_config=text)


def param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass
class MatchedSize:
    """A SLAP audio config whose FLOPs per audio second match a target (`htsat_matched_config`)."""

    audio_config: dict
    flops_per_audio_second: float
    target_flops_per_audio_second: float


def htsat_matched_config(quick: bool = False) -> MatchedSize:
    """Find the SLAP audio config with the encoder FLOPs per audio second closest to CLAP's HTSAT.

    CLAP's cost per audio second is the counted FLOPs of its audio tower on one 10 s window
    (its fixed input), divided by 10. Candidates keep SLAP's layout (head size 64, SwiGLU MLP
    4 × d, [local, local, global] at depth 9 or 12) and vary the width; each is counted on one
    10 s clip with `FlopCounterMode`, widths in increasing order until the target is passed.
    The answer is cached next to the rendered workload (`workload.cache_dir()`).
    """
    import transformers

    from .workload import cache_dir

    versions = f"torch{torch.__version__}-tf{transformers.__version__}"
    key = f"matched-{'quick' if quick else 'full'}-{versions}-v1.json"
    path = cache_dir() / key
    if path.exists():
        return MatchedSize(**json.loads(path.read_text()))
    matched = _search_matched_config(quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(matched.__dict__))
    return matched


def _search_matched_config(quick: bool) -> MatchedSize:
    import numpy as np
    from transformers import ClapFeatureExtractor, ClapModel

    from slap_audio.modeling_slap import SlapAudioModel, SlapFeatureExtractor

    torch.manual_seed(0)
    wave48 = np.random.default_rng(0).standard_normal(480_000).astype(np.float32) * 0.1
    clap = ClapModel(clap_config(quick=quick)).eval()
    inputs = ClapFeatureExtractor(truncation="rand_trunc")(
        [wave48], sampling_rate=48_000, return_tensors="pt"
    )
    with torch.inference_mode(), flop_counter() as counter:
        clap.audio_model(**inputs)
    target = counter.get_total_flops() / 10.0

    features = SlapFeatureExtractor()([wave48[::3].copy()], sampling_rate=16_000)
    seconds = int(features["audio_lengths"][0]) / 100.0  # 100 frames per second
    widths, depths, head_dim = (
        ((32, 64, 96), (3,), 16) if quick else (range(256, 1025, 64), (9, 12), 64)
    )
    candidates = []
    for depth in depths:
        for width in widths:
            heads = width // head_dim
            config = dict(
                hidden_size=width,
                num_hidden_layers=depth,
                num_attention_heads=heads,
                intermediate_size=4 * width,
                pooling_heads=heads,
                local_window=24,
            )
            with torch.inference_mode(), flop_counter() as counter:
                SlapAudioModel(slap_config(config).audio_config).eval()(**features)
            per_second = counter.get_total_flops() / seconds
            candidates.append(((abs(np.log(per_second / target)), -depth), config, per_second))
            if per_second > target:  # wider only gets further away
                break
    _, config, per_second = min(candidates, key=lambda c: c[0])
    return MatchedSize(config, per_second, target)


# ---------------------------------------------------------------------------------------------
# running configurations side by side


def _worker(conn, factory: Callable[..., Runner], kwargs: dict) -> None:
    """Child process: build the runner, then answer ("setup",) / ("run", part) / ("close",)."""
    set_threads()
    try:
        runner = factory(**kwargs)
        while True:
            command, *args = conn.recv()
            if command == "close":
                break
            conn.send(("ok", runner.setup() if command == "setup" else runner.run(*args)))
    except BaseException:  # report, so the parent can name the configuration that failed
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class _Inline:
    """Runs a runner in this process (`isolate=False`: smoke tests, quick runs)."""

    def __init__(self, factory: Callable[..., Runner], kwargs: dict):
        self.runner = factory(**kwargs)

    def call(self, command: str, *args: int) -> dict:
        return self.runner.setup() if command == "setup" else self.runner.run(*args)

    def close(self) -> None:
        del self.runner


class _Process:
    """Runs a runner in a spawned process of its own (`isolate=True`)."""

    def __init__(self, factory: Callable[..., Runner], kwargs: dict):
        context = mp.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, factory, kwargs), daemon=True)
        self.process.start()
        child.close()

    def call(self, command: str, *args: int) -> dict:
        self.conn.send((command, *args))
        status, payload = self.conn.recv()
        if status == "error":
            raise RuntimeError(f"benchmark worker failed:\n{payload}")
        return payload

    def close(self) -> None:
        try:
            self.conn.send(("close",))
        except OSError:
            pass
        self.process.join(timeout=60)


def run_side_by_side(
    configs: dict[str, tuple[Callable[..., Runner], dict]],
    repeats: int,
    isolate: bool = True,
    progress: bool = True,
    max_passes: dict[str, int] | None = None,
) -> dict[str, dict]:
    """Set up each configuration, then time `repeats` passes of all of them, finely interleaved.

    `configs` maps a name to `(factory, kwargs)`: `factory(**kwargs)` builds the runner (in its own
    process when `isolate`; factories must then be module-level functions). A runner's `setup()`
    returns `"parts"` (batches or steps of one pass); `run(part)` times one part. Parts of all
    configurations alternate (part k of each, then part k + 1 …), so configurations meet the same
    machine load; for each part the fastest of its repeats counts, and a configuration's fields
    are sums over its parts. `max_passes` caps the passes of slow configurations.

    Returns, per name, the setup fields, the summed fastest-part fields (`"seconds"` …),
    `"seconds_all"` (each pass's total, in order) and `"seconds_median"` (their median).
    """
    max_passes = max_passes or {}
    executors: dict[str, _Inline | _Process] = {}
    results: dict[str, dict] = {}
    try:
        if isolate:  # start every process first: they import torch in parallel
            executors = {name: _Process(f, kw) for name, (f, kw) in configs.items()}
        for name, (factory, kwargs) in configs.items():
            if not isolate:
                executors[name] = _Inline(factory, kwargs)
            _log(progress, f"setup {name}")
            results[name] = executors[name].call("setup")
        timings: dict[str, list[list[dict]]] = {name: [] for name in configs}  # [pass][part]
        for r in range(repeats):
            active = [n for n in configs if r < max_passes.get(n, repeats)]
            for name in active:
                timings[name].append([])
            for part in range(max(results[n].get("parts", 1) for n in active)):
                for name in active:
                    if part < results[name].get("parts", 1):
                        timings[name][-1].append(executors[name].call("run", part))
            _log(
                progress,
                f"pass {r + 1}/{repeats}: "
                + ", ".join(
                    f"{n} {sum(p['seconds'] for p in timings[n][-1]):.2f} s" for n in active
                ),
            )
    finally:
        for executor in executors.values():
            executor.close()
    for name, passes in timings.items():
        if not passes:
            continue
        fastest = [min(repeat, key=lambda p: p["seconds"]) for repeat in zip(*passes, strict=True)]
        for key, value in fastest[0].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                results[name][key] = sum(p[key] for p in fastest)
            else:
                results[name][key] = value
        totals = [sum(p["seconds"] for p in one) for one in passes]
        results[name]["seconds_all"] = [round(t, 3) for t in totals]
        results[name]["seconds_median"] = statistics.median(totals)
    return results


def _log(enabled: bool, message: str) -> None:
    if enabled:
        print(f"[bench] {message}", file=sys.stderr, flush=True)
