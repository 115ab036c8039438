"""Embedding throughput: waveform → normalised embedding on the fixed 48-clip workload.

Side by side in one run, batches of 8 clips, `torch.set_num_threads(2)`, inference mode:

- `transformers.ClapModel` (LAION-CLAP HTSAT config, random weights) the way its users run it:
  `clap_crop10`   unfused, `ClapFeatureExtractor(truncation="rand_trunc")`: one 10 s crop per clip
                  (random start; numpy's global RNG is seeded per pass), short clips repeat-padded;
  `clap_fusion`   `enable_fusion=True`, `truncation="fusion"`: a downsampled whole-clip view plus
                  three random 10 s crops fused in the patch embedding;
  `clap_chunks10` full coverage: every clip cut into 10 s chunks (the last one repeat-padded),
                  chunk embeddings averaged weighted by chunk duration, renormalised.
- SLAP (`SlapFeatureExtractor` packed + `SlapModel.get_audio_features`) at `tiny`, `base` and
  `matched`: the audio config whose counted FLOPs per audio second are closest to HTSAT's
  (`common.htsat_matched_config`).

Each configuration runs in its own process (peak memory is its own: `VmHWM` above the RSS before
the first pass, the warm-up). The warm-up pass also counts model FLOPs with `FlopCounterMode`;
then `--repeats` timed passes run with their batches interleaved across configurations (batch k
of each, then batch k + 1 …); each batch keeps its fastest repeat (`seconds`); the median of the
whole passes (`seconds_median`) gives a second estimate of every ratio.
CLAP gets 48 kHz audio (its only rate), SLAP 16 kHz audio of the same clips (its native rate);
`slap_matched` also reports its front end on the 48 kHz audio (resampling included) and with one
thread (`fe_1thread_seconds`; CLAP's numpy front end is single-threaded too).

    python -m bench.embed_throughput            # full run (~6.5 min on 2 quiet cores)
    python -m bench.embed_throughput --quick    # micro models, 4 clips, in-process (~20 s)
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import numpy as np
import torch

from .common import (
    NUM_THREADS,
    PeakMemory,
    add_isolate_argument,
    clap_config,
    emit,
    flop_counter,
    htsat_matched_config,
    param_count,
    print_table,
    run_side_by_side,
    slap_config,
    start_run,
)
from .workload import BATCH_SIZE, CLAP_WINDOW_S, batches, describe, load_audio, workload

BENCH = "embed_throughput"
CLAP_RATE, SLAP_RATE = 48_000, 16_000


class SlapEmbed:
    """SLAP: packed features of a batch → `get_audio_features(...).pooler_output`."""

    def __init__(self, audio: str | dict, quick: bool, fe_at_48k: bool = False):
        from slap_audio.modeling_slap import SlapFeatureExtractor, SlapModel

        torch.manual_seed(0)
        self.model = SlapModel(slap_config(audio)).eval()
        self.fe = SlapFeatureExtractor()
        self.specs = workload(quick)
        self.batches = list(batches(load_audio(self.specs, SLAP_RATE)))
        self.fe_at_48k = fe_at_48k

    def _batch(self, waves: list[np.ndarray], count: bool = False) -> dict:
        with torch.inference_mode():
            start = time.perf_counter()
            features = self.fe(waves, sampling_rate=SLAP_RATE)
            mid = time.perf_counter()
            with flop_counter() if count else nullcontext() as counter:
                _ = self.model.get_audio_features(**features).pooler_output
            end = time.perf_counter()
        return {
            "seconds": end - start,
            "fe_seconds": mid - start,
            "model_seconds": end - mid,
            "flops": counter.get_total_flops() if count else 0,
            "frames": int(features["audio_lengths"].sum()),
        }

    def setup(self) -> dict:
        audio_s = sum(s.duration for s in self.specs)
        with PeakMemory() as memory:
            warm = _sum([self._batch(waves, count=True) for waves in self.batches])
        fields = {
            "parts": len(self.batches),
            "model": "SlapModel",
            "audio_params": param_count(self.model.audio_model),
            "audio_config": {
                k: getattr(self.model.config.audio_config, k)
                for k in (
                    "hidden_size",
                    "num_hidden_layers",
                    "num_attention_heads",
                    "intermediate_size",
                    "local_window",
                )
            },
            "coverage_mean": 1.0,
            "coverage_audio": 1.0,
            # the front end rounds each clip up to whole 160 ms patches: the only non-audio input
            "input_seconds": warm["frames"] / 100,
            "repeat_padding": 0.0,
            "rounding_padding": round(1 - audio_s * 100 / warm["frames"], 5),
            "tokens": warm["frames"] // 4,
            "model_flops": warm["flops"],
            **memory.fields(),
        }
        if self.fe_at_48k:  # front-end variants, best of 2 passes each
            waves48 = list(batches(load_audio(self.specs, CLAP_RATE)))
            # 48 kHz input: resampling included
            fields["fe48k_seconds"] = self._fe_seconds(waves48, CLAP_RATE)
            # one thread, as in a data-loader worker: small ops need no second thread, and on a
            # busy machine each parallel op can wait for a descheduled one
            torch.set_num_threads(1)
            fields["fe_1thread_seconds"] = self._fe_seconds(self.batches, SLAP_RATE)
            torch.set_num_threads(NUM_THREADS)
        return fields

    def _fe_seconds(self, waves_batches: list[list[np.ndarray]], rate: int) -> float:
        best = []
        for waves in waves_batches:
            times = []
            for _ in range(2):
                start = time.perf_counter()
                self.fe(waves, sampling_rate=rate)
                times.append(time.perf_counter() - start)
            best.append(min(times))
        return sum(best)

    def run(self, part: int) -> dict:
        out = self._batch(self.batches[part])
        return {k: out[k] for k in ("seconds", "fe_seconds", "model_seconds")}


class ClapEmbed:
    """`transformers.ClapModel.get_audio_features` after `ClapFeatureExtractor`, in one of three
    modes: `crop` (10 s crops), `fusion` (fused model), `chunks` (10 s chunks averaged)."""

    def __init__(self, mode: str, quick: bool):
        from transformers import ClapFeatureExtractor, ClapModel
        from transformers.utils import logging

        logging.set_verbosity_error()
        torch.manual_seed(0)
        self.mode = mode
        self.model = ClapModel(clap_config(fusion=mode == "fusion", quick=quick)).eval()
        self.fe = ClapFeatureExtractor(truncation="fusion" if mode == "fusion" else "rand_trunc")
        self.specs = workload(quick)
        self.batches = list(batches(load_audio(self.specs, CLAP_RATE)))
        self.window = int(CLAP_WINDOW_S * CLAP_RATE)

    def _features(
        self, waves: list[np.ndarray]
    ) -> tuple[dict, torch.Tensor | None, torch.Tensor | None]:
        """Front end: inputs for the model, plus (chunk weights, owning clip) in `chunks` mode."""
        if self.mode != "chunks":
            return self.fe(waves, sampling_rate=CLAP_RATE, return_tensors="pt"), None, None
        pieces, owner = [], []
        for i, wave in enumerate(waves):
            for start in range(0, wave.shape[0], self.window):
                pieces.append(wave[start : start + self.window])
                owner.append(i)
        inputs = self.fe(pieces, sampling_rate=CLAP_RATE, return_tensors="pt")
        weights = torch.tensor([p.shape[0] for p in pieces], dtype=torch.float32)[:, None]
        return inputs, weights, torch.tensor(owner)

    def _embed(
        self, inputs: dict, weights: torch.Tensor | None, owner: torch.Tensor | None
    ) -> torch.Tensor:
        embeds = self.model.get_audio_features(**inputs).pooler_output  # (clips or chunks, dim)
        if weights is None:
            return embeds
        num_clips = int(owner.max()) + 1
        summed = embeds.new_zeros(num_clips, embeds.shape[1]).index_add_(0, owner, embeds * weights)
        return torch.nn.functional.normalize(summed, dim=-1)

    def _batch(self, part: int, count: bool = False) -> dict:
        np.random.seed(part)  # CLAP's crops draw from numpy's global RNG: same crops every pass
        with torch.inference_mode():
            start = time.perf_counter()
            features = self._features(self.batches[part])
            mid = time.perf_counter()
            with flop_counter() if count else nullcontext() as counter:
                self._embed(*features)
            end = time.perf_counter()
        return {
            "seconds": end - start,
            "fe_seconds": mid - start,
            "model_seconds": end - mid,
            "flops": counter.get_total_flops() if count else 0,
        }

    def coverage(self) -> dict:
        """What the encoder sees of each clip, from the clip durations (CLAP's own rules)."""
        d = np.array([s.duration for s in self.specs])
        w = CLAP_WINDOW_S
        if self.mode == "chunks":
            windows = np.ceil(d / w)
            seen = d
        else:
            windows = np.ones_like(d)
            seen = np.minimum(d, w)
        fields = {
            "coverage_mean": float(np.mean(seen / d)),
            "coverage_audio": float(seen.sum() / d.sum()),
            "input_seconds": float(windows.sum() * w),
            "repeat_padding": float((windows * w - seen).sum() / (windows.sum() * w)),
        }
        if self.mode == "fusion":  # whole clip at reduced time resolution + 3 full-resolution crops
            fields["coverage_mean"] = fields["coverage_audio"] = 1.0
            full = [_fusion_full_resolution(x, np.random.default_rng(0)) for x in d]
            fields["full_res_coverage_mean"] = float(np.mean(full))
            fields["full_res_coverage_audio"] = float(np.dot(full, d) / d.sum())
        return fields

    def setup(self) -> dict:
        with PeakMemory() as memory:
            warm = _sum([self._batch(part, count=True) for part in range(len(self.batches))])
        return {
            "parts": len(self.batches),
            "model": "ClapModel",
            "audio_params": param_count(self.model.audio_model),
            **self.coverage(),
            "model_flops": warm["flops"],
            **memory.fields(),
        }

    def run(self, part: int) -> dict:
        out = self._batch(part)
        return {k: out[k] for k in ("seconds", "fe_seconds", "model_seconds")}


def _sum(parts: list[dict]) -> dict:
    """Field-wise sum of per-batch records."""
    return {key: sum(p[key] for p in parts) for key in parts[0]}


def _fusion_full_resolution(duration: float, rng: np.random.Generator, trials: int = 64) -> float:
    """Expected fraction of a clip inside CLAP-fusion's three random 10 s crops
    (`ClapFeatureExtractor._random_mel_fusion`: one start drawn from each third of the range)."""
    hop, chunk = 480, int(CLAP_WINDOW_S * CLAP_RATE) // 480 + 1
    total = int(duration * CLAP_RATE) // hop + 1
    if total <= chunk:
        return 1.0
    ranges = np.array_split(np.arange(total - chunk + 1), 3)
    ranges = [r if len(r) else np.array([0]) for r in ranges]
    covered = []
    for _ in range(trials):
        mask = np.zeros(total, dtype=bool)
        for r in ranges:
            start = int(rng.choice(r))
            mask[start : start + chunk] = True
        covered.append(mask.mean())
    return float(np.mean(covered))


def make_slap(audio: str | dict, quick: bool, fe_at_48k: bool = False) -> SlapEmbed:
    return SlapEmbed(audio, quick, fe_at_48k)


def make_clap(mode: str, quick: bool) -> ClapEmbed:
    return ClapEmbed(mode, quick)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="micro models, 4 clips, in-process")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed passes (default 3, quick 1)"
    )
    parser.add_argument(
        "--base-repeats", type=int, default=1, help="timed passes of SLAP base (the slowest)"
    )
    parser.add_argument("--no-base", action="store_true", help="skip SLAP base")
    add_isolate_argument(parser)
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    isolate = start_run(BENCH, args)
    specs = workload(quick)
    emit(BENCH, "workload", **describe(specs))
    for rate in (CLAP_RATE, SLAP_RATE):  # render once; the workers load the cached audio
        load_audio(specs, rate)

    matched = htsat_matched_config(quick)
    emit(
        BENCH,
        "matched_size",
        audio_config=matched.audio_config,
        slap_flops_per_audio_s=matched.flops_per_audio_second,
        htsat_flops_per_audio_s=matched.target_flops_per_audio_second,
    )
    configs = {
        f"clap_{m}": (make_clap, {"mode": m, "quick": quick}) for m in ("crop", "fusion", "chunks")
    }
    sizes = ["micro"] if quick else ["tiny"] + ([] if args.no_base else ["base"])
    for size in sizes:
        configs[f"slap_{size}"] = (make_slap, {"audio": size, "quick": quick})
    configs["slap_matched"] = (
        make_slap,
        {"audio": matched.audio_config, "quick": quick, "fe_at_48k": True},
    )
    results = run_side_by_side(
        configs, repeats, isolate=isolate, max_passes={"slap_base": args.base_repeats}
    )
    return report(results, describe(specs))


def report(results: dict[str, dict], work: dict) -> dict[str, dict]:
    """Derive rates and ratios, print the JSON lines, the table and the §9 checks."""
    audio_s, clips = work["audio_seconds"], work["clips"]
    reference = results["clap_chunks"]["seconds"]
    rows = []
    for name, r in results.items():
        r.update(
            audio_s_per_s=audio_s / r["seconds"],
            clips_per_s=clips / r["seconds"],
            seen_audio_s_per_s=audio_s * r["coverage_audio"] / r["seconds"],
            fe_fraction=r["fe_seconds"] / r["seconds"],
            flops_per_audio_s=r["model_flops"] / audio_s,
            flops_per_input_s=r["model_flops"] / r["input_seconds"],
            model_gflops_per_s=r["model_flops"] / r["model_seconds"] / 1e9,
            speed_vs_clap_chunks=reference / r["seconds"],
            # the same ratio from whole passes (median pass), a check on the per-batch-best estimate
            speed_vs_clap_chunks_median=results["clap_chunks"]["seconds_median"]
            / r["seconds_median"],
        )
        emit(BENCH, name, batch_size=BATCH_SIZE, **r)
        rows.append(
            {
                "config": name,
                **r,
                "gflop_per_audio_s": r["flops_per_audio_s"] / 1e9,
                "gflop_per_input_s": r["flops_per_input_s"] / 1e9,
                "audio_mparams": r["audio_params"] / 1e6,
            }
        )
    print_table(
        "Embedding throughput (waveform → normalised embedding, batch 8, 2 threads)",
        rows,
        [
            ("config", "config", ""),
            ("audio_mparams", "audio M params", ".1f"),
            ("audio_s_per_s", "audio s/s", ".1f"),
            ("clips_per_s", "clips/s", ".2f"),
            ("coverage_mean", "coverage (mean clip)", ".0%"),
            ("coverage_audio", "coverage (audio)", ".0%"),
            ("repeat_padding", "repeat-pad of input", ".1%"),
            ("seen_audio_s_per_s", "seen audio s/s", ".1f"),
            ("gflop_per_audio_s", "GFLOP/audio s", ".2f"),
            ("gflop_per_input_s", "GFLOP/input s", ".2f"),
            ("model_gflops_per_s", "model GFLOP/s", ".1f"),
            ("fe_fraction", "front end", ".1%"),
            ("peak_delta_mib", "peak Δ MiB", ".0f"),
            ("speed_vs_clap_chunks", "× clap_chunks", ".2f"),
            ("speed_vs_clap_chunks_median", "× clap_chunks (median pass)", ".2f"),
        ],
    )
    checks = {}
    if "slap_matched" in results:
        m = results["slap_matched"]
        checks["peer_ratio_matched_vs_clap_chunks"] = round(m["speed_vs_clap_chunks"], 3)
        checks["peer_ratio_matched_vs_clap_chunks_median_pass"] = round(
            m["speed_vs_clap_chunks_median"], 3
        )
        checks["peer_target_1_5x_met"] = m["speed_vs_clap_chunks"] >= 1.5
        checks["matched_flops_ratio_slap_over_htsat"] = round(
            m["flops_per_input_s"] / results["clap_crop"]["flops_per_input_s"], 3
        )
        checks["front_end_fraction_matched"] = round(m["fe_fraction"], 4)
        checks["front_end_target_5pct_met"] = m["fe_fraction"] <= 0.05
        for key in ("fe48k_seconds", "fe_1thread_seconds"):
            if key in m:
                variant = key.removeprefix("fe").removesuffix("_seconds").strip("_")
                checks[f"front_end_fraction_matched_{variant}"] = round(
                    m[key] / (m[key] + m["model_seconds"]), 4
                )
        checks["clap_crop_front_end_fraction"] = round(results["clap_crop"]["fe_fraction"], 4)
    emit(BENCH, "targets", **checks)
    return results


if __name__ == "__main__":
    main()
