"""Training throughput: optimizer steps over the fixed workload, three ways of batching it.

Side by side in one run, one process per configuration, `torch.set_num_threads(2)`, fused AdamW
(the Trainer's default, `adamw_torch_fused`), on the first `--clips` clips of the workload
(default 24: 6 short, 10 of 10 s, 8 long — the full mix's proportions at half the run time):

- `slap_packed`  token-budget batches: clips are packed first-fit (in workload order) into
                 batches of at most `--max-tokens` patches (default: the clips' mean tokens
                 per 8 clips), no padding at all (only each clip's rounding to whole 160 ms
                 patches);
- `slap_padded`  the same model with pad-to-longest batches of 8, as a padding-based CLAP trains:
                 every clip is padded to its batch's longest clip and the padded frames go through
                 the model as real tokens (`audio_lengths` = the longest length for every clip);
- `clap_crop`    `transformers.ClapModel` (HTSAT, random weights) on 10 s crops, batches of 8.
                 Its step cost does not depend on clip durations (fixed 10 s windows), so it is
                 timed on the first `--clap-clips` clips and its audio rate is its clip rate times
                 the mean duration of the clips.

A step is forward + backward + `AdamW(fused=True).step()`; features are computed in setup (a
data loader's job), so the timing is the model's. The warm-up epoch counts FLOPs (forward +
backward) and the peak memory; in the timed epochs the steps of the three configurations alternate and each step
keeps its fastest repeat. SLAP's model size defaults to `matched` (FLOPs per audio second of
HTSAT, see `common.htsat_matched_config`); both towers' text encoder is the same small BERT.

The objective is one function, `slap_task`: `SlapForPreTraining` with all three losses
(contrastive + masked self-distillation with the EMA teacher + captioning).

    python -m bench.train_step                 # full run (~2.5 min on 2 quiet cores)
    python -m bench.train_step --size tiny     # a smaller SLAP
    python -m bench.train_step --quick         # micro models, 4 clips, in-process
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from slap_audio.training.batching import DEFAULT_GEOMETRY

from .common import (
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
from .workload import (
    BATCH_SIZE,
    CLAP_WINDOW_S,
    batches,
    caption_ids,
    describe,
    load_audio,
    workload,
)

BENCH = "train_step"
SLAP_RATE, CLAP_RATE = 16_000, 48_000
TOKENS_PER_FRAME = DEFAULT_GEOMETRY.frequency_patches / DEFAULT_GEOMETRY.patch_frames  # of the default features
Objective = Callable[[torch.nn.Module, dict], torch.Tensor]


def contrastive_objective(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """The model's own symmetric InfoNCE over the batch (ClapModel's training loss)."""
    return model(**batch, return_loss=True).loss


def full_objective(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """SLAP's full pretraining loss: contrastive + masked self-distillation (EMA teacher) +
    captioning (captions are the batch's tokenized texts, -100 at padding)."""
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return model(**batch, caption_labels=labels).loss


def slap_task(audio: str | dict) -> tuple[torch.nn.Module, Objective]:
    """The model and objective of the SLAP rows: `SlapForPreTraining` with all three objectives."""
    from slap_audio.modeling_slap import SlapForPreTraining

    return SlapForPreTraining(slap_config(audio)), full_objective


def token_budget_batches(tokens: list[int], max_tokens: int) -> list[list[int]]:
    """First-fit packing in order: each clip goes to the first batch with room for it.

    A clip longer than the budget gets a batch of its own. Returns clip indices per batch.
    """
    packs: list[list[int]] = []
    used: list[int] = []
    for index, count in enumerate(tokens):
        for k, total in enumerate(used):
            if total + count <= max_tokens:
                packs[k].append(index)
                used[k] += count
                break
        else:
            packs.append([index])
            used.append(count)
    return packs


class TrainRunner:
    """Epochs of optimizer steps over pre-computed batches, in one of three modes."""

    def __init__(
        self,
        mode: str,
        audio: str | dict,
        quick: bool,
        max_tokens: int | None,
        clips: int,
        clap_clips: int,
    ):
        torch.manual_seed(0)
        self.mode = mode
        self.all_specs = workload(quick)
        self.specs = self.all_specs[: clips or None]
        if mode == "clap_crop":
            self._init_clap(quick, clap_clips)
        else:
            self._init_slap(audio, max_tokens)
        self.model.train()
        # fused AdamW: the Trainer's default optimizer (`adamw_torch_fused`); the per-tensor loop
        # of plain AdamW costs more than the model's backward on a busy 2-core machine
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=1e-4, weight_decay=0.01, fused=True
        )

    def _init_slap(self, audio: str | dict, max_tokens: int | None) -> None:
        from slap_audio.modeling_slap import SlapFeatureExtractor

        self.model, self.objective = slap_task(audio)
        fe = SlapFeatureExtractor()
        waves = load_audio(self.all_specs, SLAP_RATE)[: len(self.specs)]
        ids = torch.from_numpy(caption_ids(len(waves), self.model.config.text_config.vocab_size))
        tokens = [int(fe.num_frames(w.shape[0]) * TOKENS_PER_FRAME) for w in waves]
        if self.mode == "slap_packed":
            self.max_tokens = max_tokens or -(-sum(tokens) * BATCH_SIZE // len(tokens))
            groups = token_budget_batches(tokens, self.max_tokens)
        else:
            groups = list(batches(list(range(len(waves)))))
        self.batches, self.model_tokens = [], 0
        for group in groups:
            if self.mode == "slap_packed":
                features = fe([waves[i] for i in group], sampling_rate=SLAP_RATE)
            else:  # pad to the longest clip, then feed the padded frames as real tokens
                padded = fe([waves[i] for i in group], sampling_rate=SLAP_RATE, packing=False)
                frames = padded["input_features"]  # (B, T, 64)
                features = {
                    "input_features": frames.reshape(-1, frames.shape[-1]),  # (B * T, 64)
                    "audio_lengths": torch.full((len(group),), frames.shape[1]),
                }
            self.model_tokens += int(features["audio_lengths"].sum() * TOKENS_PER_FRAME)
            self.batches.append(
                {**features, "input_ids": ids[group], "attention_mask": torch.ones_like(ids[group])}
            )
        self.audio_seconds = sum(s.duration for s in self.specs)
        self.clips = len(self.specs)
        self.audio_tower = self.model.audio_model
        # tokens that carry no audio: padding to the longest clip, and rounding to whole patches
        self.padding_waste = 1 - self.audio_seconds * DEFAULT_GEOMETRY.tokens_per_second / self.model_tokens

    def _init_clap(self, quick: bool, clap_clips: int) -> None:
        from transformers import ClapFeatureExtractor, ClapModel
        from transformers.utils import logging

        logging.set_verbosity_error()
        self.model = ClapModel(clap_config(quick=quick))
        self.objective = contrastive_objective
        specs = self.specs[: clap_clips or len(self.specs)]
        waves = load_audio(self.all_specs, CLAP_RATE)[: len(specs)]
        ids = torch.from_numpy(caption_ids(len(waves)))
        fe = ClapFeatureExtractor(truncation="rand_trunc")
        np.random.seed(0)  # CLAP's crops draw from numpy's global RNG
        self.batches = []
        for group in batches(list(range(len(waves)))):
            features = fe([waves[i] for i in group], sampling_rate=CLAP_RATE, return_tensors="pt")
            self.batches.append(
                {**features, "input_ids": ids[group], "attention_mask": torch.ones_like(ids[group])}
            )
        durations = np.array([s.duration for s in specs])
        all_durations = np.array([s.duration for s in self.specs])
        self.clips = len(specs)
        # audio consumed per clip is the workload's mean duration (the cost per clip is fixed)
        self.audio_seconds = self.clips * all_durations.mean()
        self.model_tokens = None
        seen = np.minimum(durations, CLAP_WINDOW_S).sum()
        self.padding_waste = float(1 - seen / (len(durations) * CLAP_WINDOW_S))  # repeat-padding
        self.unseen_audio = float(
            1 - np.minimum(all_durations, CLAP_WINDOW_S).sum() / all_durations.sum()
        )
        self.audio_tower = self.model.audio_model

    def _step(self, batch: dict) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.objective(self.model, batch).backward()
        self.optimizer.step()

    def setup(self) -> dict:
        with PeakMemory() as memory:
            flops = 0
            for batch in self.batches:
                with flop_counter() as counter:
                    self._step(batch)
                flops += counter.get_total_flops()
        fields = {
            "parts": len(self.batches),
            "model": type(self.model).__name__,
            "audio_params": param_count(self.audio_tower),
            "params": param_count(self.model),
            "steps": len(self.batches),
            "clips": self.clips,
            "audio_seconds": self.audio_seconds,
            "padding_waste": self.padding_waste,
            "model_tokens": self.model_tokens,
            "step_flops": flops,
            **memory.fields(),
        }
        if self.mode == "slap_packed":
            fields["max_tokens"] = self.max_tokens
        if self.mode == "clap_crop":
            fields["unseen_audio"] = self.unseen_audio
        return fields

    def run(self, part: int) -> dict:
        start = time.perf_counter()
        self._step(self.batches[part])
        return {"seconds": time.perf_counter() - start}


def make_runner(
    mode: str, audio: str | dict, quick: bool, max_tokens: int | None, clips: int, clap_clips: int
) -> TrainRunner:
    return TrainRunner(mode, audio, quick, max_tokens, clips, clap_clips)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="micro models, 4 clips, in-process")
    parser.add_argument(
        "--size", default=None, help="SLAP audio size: matched (default), tiny, base, micro"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed epochs (default 2, quick 1)"
    )
    parser.add_argument(
        "--max-tokens", type=int, default=None, help="token budget of packed batches"
    )
    parser.add_argument(
        "--clips", type=int, default=24, help="first clips of the workload to train on (0 = all 48)"
    )
    parser.add_argument(
        "--clap-clips", type=int, default=16, help="clips CLAP is timed on (0 = all of --clips)"
    )
    add_isolate_argument(parser)
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = args.repeats or (1 if quick else 2)
    isolate = start_run(BENCH, args)
    specs = workload(quick)
    emit(BENCH, "workload", **describe(specs[: (0 if quick else args.clips) or None]))
    for rate in (CLAP_RATE, SLAP_RATE):
        load_audio(specs, rate)
    size = args.size or ("micro" if quick else "matched")
    audio: str | dict = size
    if size == "matched":
        audio = htsat_matched_config(quick).audio_config
    emit(BENCH, "slap_size", size=size, audio_config=audio)
    common = {
        "audio": audio,
        "quick": quick,
        "max_tokens": args.max_tokens,
        "clips": 0 if quick else args.clips,
        "clap_clips": 0 if quick else args.clap_clips,
    }
    configs = {
        mode: (make_runner, {"mode": mode, **common})
        for mode in ("slap_packed", "slap_padded", "clap_crop")
    }
    results = run_side_by_side(configs, repeats, isolate=isolate)
    return report(results)


def report(results: dict[str, dict]) -> dict[str, dict]:
    """Rates, ratios, JSON lines, the table and the §9 checks."""
    rows = []
    padded_rate = results["slap_padded"]["audio_seconds"] / results["slap_padded"]["seconds"]
    for name, r in results.items():
        r.update(
            samples_per_s=r["clips"] / r["seconds"],
            audio_s_per_s=r["audio_seconds"] / r["seconds"],
            seconds_per_step=r["seconds"] / r["steps"],
            seen_audio_s_per_s=r["audio_seconds"] * (1 - r.get("unseen_audio", 0.0)) / r["seconds"],
            achieved_gflops_per_s=r["step_flops"] / r["seconds"] / 1e9,
        )
        r["speed_vs_padded"] = r["audio_s_per_s"] / padded_rate
        r["speed_vs_padded_median"] = (r["audio_seconds"] / r["seconds_median"]) / (
            results["slap_padded"]["audio_seconds"] / results["slap_padded"]["seconds_median"]
        )
        if r["model_tokens"]:
            r["tokens_per_s"] = r["model_tokens"] / r["seconds"]
        emit(BENCH, name, **r)
        rows.append({"config": name, **r, "audio_mparams": r["audio_params"] / 1e6})
    print_table(
        "Training throughput (forward + backward + fused AdamW, 2 threads)",
        rows,
        [
            ("config", "config", ""),
            ("audio_mparams", "audio M params", ".1f"),
            ("steps", "steps", ""),
            ("samples_per_s", "samples/s", ".2f"),
            ("audio_s_per_s", "audio s/s", ".1f"),
            ("seen_audio_s_per_s", "seen audio s/s", ".1f"),
            ("tokens_per_s", "tokens/s", ".0f"),
            ("padding_waste", "padding waste", ".1%"),
            ("achieved_gflops_per_s", "GFLOP/s", ".1f"),
            ("peak_delta_mib", "peak Δ MiB", ".0f"),
            ("speed_vs_padded", "× slap_padded", ".2f"),
            ("speed_vs_padded_median", "× padded (median epoch)", ".2f"),
        ],
    )
    packed = results["slap_packed"]
    emit(
        BENCH,
        "targets",
        packed_vs_padded=round(packed["speed_vs_padded"], 3),
        packed_vs_padded_median_epoch=round(packed["speed_vs_padded_median"], 3),
        packed_target_1_6x_met=packed["speed_vs_padded"] >= 1.6,
        packed_padding_waste=round(packed["padding_waste"], 5),
        padding_target_2pct_met=packed["padding_waste"] <= 0.02,
        padded_padding_waste=round(results["slap_padded"]["padding_waste"], 5),
        packed_vs_clap_crop_samples=round(
            packed["samples_per_s"] / results["clap_crop"]["samples_per_s"], 3
        ),
    )
    return results


if __name__ == "__main__":
    main()
