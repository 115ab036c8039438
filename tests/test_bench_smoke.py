"""Smoke tests of the benchmarks (`bench/`): each `--quick` run (micro models, 4 clips, in-process)
finishes and prints JSON lines with the expected records and keys, and the numbers obey the
properties that hold whatever the machine's speed (coverage, padding, FLOPs counted).

No assertion here is about time or speed: the targets of SPEC §9 are measured by the benchmarks
themselves, by hand, and written to `bench/RESULTS.md`.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_KEYS = {"seconds", "seconds_all"}
MEMORY_KEYS = {"peak_rss_mib", "peak_delta_mib", "memory_method"}


def run_quick(bench: str, cache: Path) -> dict[str, dict]:
    """Run `python -m bench.<bench> --quick`; its JSON records by config name."""
    env = {**os.environ, "SLAP_BENCH_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{bench}", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert records and all(r["bench"] == bench for r in records)
    assert "| config |" in done.stdout or "| measure |" in done.stdout  # the table
    return {r["config"]: r for r in records}


def assert_keys(records: dict[str, dict], expected: dict[str, set[str]]) -> None:
    for config, keys in expected.items():
        assert config in records, f"no record for {config}: {sorted(records)}"
        missing = keys - records[config].keys()
        assert not missing, f"{config} lacks {sorted(missing)}"


def assert_finite(record: dict, keys: set[str]) -> None:
    for key in keys:
        assert isinstance(record[key], (int, float)) and math.isfinite(record[key]), (
            key,
            record[key],
        )


def test_embed_throughput_quick(tmp_path: Path) -> None:
    records = run_quick("embed_throughput", tmp_path)
    rates = {
        "audio_s_per_s",
        "clips_per_s",
        "fe_fraction",
        "flops_per_audio_s",
        "model_flops",
        "coverage_mean",
        "coverage_audio",
        "repeat_padding",
        "speed_vs_clap_chunks",
    }
    names = ["clap_crop", "clap_fusion", "clap_chunks", "slap_micro", "slap_matched"]
    assert_keys(
        records,
        {
            "machine": {"cpu", "cores", "torch"},
            "matched_size": {"audio_config"},
            "targets": {"peer_ratio_matched_vs_clap_chunks", "front_end_fraction_matched"},
            **{n: rates | RUN_KEYS | MEMORY_KEYS for n in names},
        },
    )
    for name in names:
        assert_finite(records[name], rates)
        assert records[name]["model_flops"] > 0  # counted, CPU attention included
        assert 0 < records[name]["fe_fraction"] < 1
    # SLAP sees every clip whole; a 10 s crop misses part of the 11 s clip
    assert records["slap_micro"]["coverage_audio"] == 1.0
    assert records["slap_micro"]["repeat_padding"] == 0.0
    assert records["clap_crop"]["coverage_audio"] < 1.0
    assert records["clap_chunks"]["coverage_audio"] == 1.0
    assert records["clap_crop"]["repeat_padding"] > 0  # short clips are repeat-padded to 10 s


def test_train_step_quick(tmp_path: Path) -> None:
    records = run_quick("train_step", tmp_path)
    keys = {
        "samples_per_s",
        "audio_s_per_s",
        "padding_waste",
        "step_flops",
        "steps",
        "speed_vs_padded",
    }
    assert_keys(
        records,
        {n: keys | RUN_KEYS | MEMORY_KEYS for n in ("slap_packed", "slap_padded", "clap_crop")}
        | {"targets": {"packed_vs_padded", "packed_padding_waste"}},
    )
    for name in ("slap_packed", "slap_padded", "clap_crop"):
        assert_finite(records[name], keys)
    # packing wastes only the rounding to whole patches; padding to the longest clip wastes more
    assert records["slap_packed"]["padding_waste"] < 0.02
    assert records["slap_padded"]["padding_waste"] > records["slap_packed"]["padding_waste"]
    assert records["slap_packed"]["step_flops"] < records["slap_padded"]["step_flops"]


def test_long_audio_quick(tmp_path: Path) -> None:
    records = run_quick("long_audio", tmp_path)
    keys = {"audio_seconds", "audio_s_per_s", "mib_per_audio_minute", "embedding_norm"}
    names = ["micro_10s", "micro_60s", "micro_2min_chunked"]
    assert_keys(
        records, {n: keys | RUN_KEYS | MEMORY_KEYS for n in names} | {"targets": {"chunked_met"}}
    )
    for name in names:
        assert records[name]["finite"]
        assert records[name]["embedding_norm"] == pytest.approx(1.0, abs=1e-4)


def test_machine_limit_quick(tmp_path: Path) -> None:
    records = run_quick("machine_limit", tmp_path)
    keys = {"flops", "seconds", "achieved_gflops_per_s", "matmul_gflops", "fraction_of_matmul"}
    assert_keys(
        records,
        {
            "audio_forward": keys,
            "train_step": keys,
            "matmul": {"matmul_gflops"},
            "targets": {"forward_fraction", "train_fraction"},
        },
    )
    for name in ("audio_forward", "train_step"):
        assert_finite(records[name], keys)
    # a training step (forward + backward of both towers) counts more FLOPs than the audio forward
    assert records["train_step"]["flops"] > 2 * records["audio_forward"]["flops"]


def test_caption_speed_quick(tmp_path: Path) -> None:
    records = run_quick("caption_speed", tmp_path)
    keys = {"seconds", "encode_seconds", "decode_seconds", "tokens_per_s", "decode_tokens_per_s",
            "speedup_vs_uncached", "caption_tokens"}
    names = [f"micro_beam{b}_{c}" for b in (1, 4) for c in ("cached", "uncached")]
    assert_keys(records, {n: keys | RUN_KEYS for n in names} | {"targets": {"all_same_as_uncached"}})
    for name in names:
        assert_finite(records[name], keys)
        assert records[name]["caption_tokens"] == 4 * 8  # 4 clips × 8 new tokens, one sequence each
        assert records[name]["same_as_uncached"]  # the cache changes the speed, never the captions
        assert records[name]["use_cache"] == name.endswith("_cached")
    assert records["targets"]["all_same_as_uncached"] is True


def test_data_path_quick(tmp_path: Path) -> None:
    records = run_quick("data_path", tmp_path)
    rates = {"clips_per_s", "audio_s_per_s", "tokens_per_s", "workers_needed"}
    formats = ("folder", "tar", "parquet")
    assert_keys(
        records,
        {**{f: rates | {"clips", "tokens"} | RUN_KEYS for f in formats},
         "model": {"tokens_per_s", "model_tokens"} | RUN_KEYS,
         "targets": {f"workers_needed_{f}" for f in formats}},
    )
    for name in formats:
        assert_finite(records[name], rates)
        # every format delivers the same clips, cropped the same way, as the same packed tokens
        assert (records[name]["clips"], records[name]["tokens"]) == (4, records["model"]["model_tokens"])


def test_gpu_quick(tmp_path: Path) -> None:
    """`bench.gpu --quick` on the CPU: every backend gets a row, measured or `unavailable: <reason>`
    (varlen needs CUDA; FlexAttention has no CPU backward), and sdpa is measured."""
    records = run_quick("gpu", tmp_path)
    rates = {"seconds", "tokens_per_s", "tflops_per_s", "mfu", "model_flops"}
    measured = {f"{m}_{k}" for m in ("audio_forward", "train_step") for k in rates}
    assert_keys(
        records,
        {
            "machine": {"device", "peak_tflops", "peak_source"},
            "workload": {"clips", "tokens", "audio_seconds"},
            "sdpa": measured | {"status", "backend", "dtype"},
            "flex_attention": {"status"},
            "varlen": {"status"},
            "targets": {"best_backend", "train_step_45pct_mfu_met", "unavailable"},
        },
    )
    sdpa, tokens = records["sdpa"], records["workload"]["tokens"]
    assert sdpa["status"] == "measured" and sdpa["dtype"] == "float32"
    assert_finite(sdpa, measured)
    for name in ("audio_forward", "train_step"):
        assert sdpa[f"{name}_tokens_per_s"] * sdpa[f"{name}_seconds"] == pytest.approx(tokens)
    assert sdpa["train_step_model_flops"] > 2 * sdpa["audio_forward_model_flops"]
    for backend in ("flex_attention", "varlen"):
        status = records[backend]["status"]
        assert status == "measured" or "unavailable: " in status, status
    assert records["machine"]["device"] == "cpu"
    assert records["targets"]["train_step_45pct_mfu_met"] is None  # a CPU smoke run judges no GPU target
