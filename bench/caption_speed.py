"""Captioning speed: `SlapForConditionalGeneration.generate()` with and without its cache.

With the cache (the default), the decoder keeps its self-attention keys/values (`DynamicCache`)
and computes the cross-attention keys/values of the audio once per call (`EncoderDecoderCache`);
`use_cache=False` recomputes every caption position and the audio's keys/values at every step.
Side by side in one run, one process per configuration (same seed, so the cached and uncached
models are the same model and must give the same captions: `same_as_uncached`), for each decoder
size and beam width, on the first `--clips` clips of the seeded workload (default 8: 77 s of audio,
1–30 s each), every caption forced to `--new-tokens` tokens (`min_new_tokens`), so both paths
decode the same number of steps. Random weights: the speed does not depend on what is said.

Timed per pass, one after the other: the audio encoding (`encode_audio`) and the decoding of those
audio tokens (`generate(encoder_hidden_states=...)`); together they are what `generate(**features)`
costs. `decode_tokens_per_s` is caption tokens (returned sequences × new tokens) per decoding second.

    python -m bench.caption_speed                   # tiny and base decoders, greedy and 4 beams
    python -m bench.caption_speed --sizes tiny      # one size
    python -m bench.caption_speed --quick           # micro model, 4 clips, in-process
"""

from __future__ import annotations

import argparse
import hashlib
import time

import torch

from .common import (
    add_isolate_argument,
    emit,
    param_count,
    print_table,
    run_side_by_side,
    start_run,
)
from .workload import describe, load_audio, workload

BENCH = "caption_speed"
SAMPLING_RATE = 16_000


class CaptionRunner:
    """`generate` on one pack of the workload, cached or not."""

    def __init__(self, size: str, use_cache: bool, num_beams: int, clips: int, new_tokens: int, quick: bool):
        from slap_audio.modeling_slap import (
            SlapConfig,
            SlapFeatureExtractor,
            SlapForConditionalGeneration,
        )

        torch.manual_seed(0)
        self.model = SlapForConditionalGeneration(SlapConfig.from_size(size)).eval()
        all_specs = workload(quick)
        self.specs = all_specs[: clips or None]
        waves = load_audio(all_specs, SAMPLING_RATE)[: len(self.specs)]
        self.features = SlapFeatureExtractor()(waves, sampling_rate=SAMPLING_RATE)
        self.options = dict(
            max_new_tokens=new_tokens, min_new_tokens=new_tokens, num_beams=num_beams, do_sample=False,
            use_cache=use_cache,
        )

    def _generate(self) -> torch.Tensor:
        return self.model.generate(**self.features, **self.options)

    def setup(self) -> dict:
        sequences = self._generate()  # warm-up
        decoder = self.model.caption_decoder
        return {
            "parts": 1,
            "clips": len(self.specs),
            "audio_seconds": sum(s.duration for s in self.specs),
            "audio_tokens": int(self.features["audio_lengths"].sum()) // 4,  # 4 patches per 16 frames
            "caption_tokens": (sequences.shape[1] - 1) * sequences.shape[0],  # without the BOS
            "decoder_params": param_count(decoder),
            "decoder_layers": len(decoder.layers),
            "sequences_sha1": hashlib.sha1(sequences.numpy().tobytes()).hexdigest()[:16],
            **self.options,
        }

    def run(self, part: int) -> dict:
        start = time.perf_counter()
        with torch.no_grad():
            memory, memory_mask = self.model.encode_audio(**self.features)
        encoded = time.perf_counter()
        self.model.generate(encoder_hidden_states=memory, encoder_attention_mask=memory_mask, **self.options)
        done = time.perf_counter()
        return {"seconds": done - start, "encode_seconds": encoded - start, "decode_seconds": done - encoded}


def make_runner(**kwargs) -> CaptionRunner:
    return CaptionRunner(**kwargs)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="micro model, 4 clips, in-process")
    parser.add_argument("--sizes", nargs="+", default=None, help="decoder sizes (default tiny base; quick: micro)")
    parser.add_argument("--beams", nargs="+", type=int, default=[1, 4], help="beam widths (1 = greedy)")
    parser.add_argument("--clips", type=int, default=8, help="first clips of the workload in the pack")
    parser.add_argument("--new-tokens", type=int, default=None, help="caption tokens (default 20; quick 8)")
    parser.add_argument("--repeats", type=int, default=None, help="timed passes (default 2, quick 1)")
    add_isolate_argument(parser)
    args = parser.parse_args(argv)
    sizes = args.sizes or (["micro"] if args.quick else ["tiny", "base"])
    new_tokens = args.new_tokens or (8 if args.quick else 20)
    isolate = start_run(BENCH, args)
    specs = workload(args.quick)
    emit(BENCH, "workload", **describe(specs[: (0 if args.quick else args.clips) or None]))
    load_audio(specs, SAMPLING_RATE)  # render once, before the workers start
    configs = {
        f"{size}_beam{beams}_{'cached' if cached else 'uncached'}": (
            make_runner,
            dict(size=size, use_cache=cached, num_beams=beams, clips=0 if args.quick else args.clips,
                 new_tokens=new_tokens, quick=args.quick),
        )
        for size in sizes
        for beams in args.beams
        for cached in (True, False)
    }
    results = run_side_by_side(configs, args.repeats or (1 if args.quick else 2), isolate=isolate)
    return report(results)


def report(results: dict[str, dict]) -> dict[str, dict]:
    """Rates, the cached/uncached speed-up and equality per size and beam width, the table."""
    rows = []
    for name, r in results.items():
        uncached = results[name.replace("_cached", "_uncached")]
        r.update(
            tokens_per_s=r["caption_tokens"] / r["seconds"],
            decode_tokens_per_s=r["caption_tokens"] / r["decode_seconds"],
            speedup_vs_uncached=uncached["seconds"] / r["seconds"],
            decode_speedup_vs_uncached=uncached["decode_seconds"] / r["decode_seconds"],
            same_as_uncached=r["sequences_sha1"] == uncached["sequences_sha1"],
        )
        rows.append(emit(BENCH, name, **r))
    print_table(
        "Captioning: generate() with and without the cache",
        rows,
        [
            ("config", "config", ""),
            ("decoder_params", "decoder params", ",d"),
            ("num_beams", "beams", ""),
            ("clips", "clips", ""),
            ("caption_tokens", "caption tokens", ""),
            ("seconds", "generate s", ".3f"),
            ("encode_seconds", "audio encoder s", ".3f"),
            ("decode_seconds", "decoding s", ".3f"),
            ("tokens_per_s", "tokens/s", ".1f"),
            ("decode_tokens_per_s", "decode tokens/s", ".1f"),
            ("speedup_vs_uncached", "× uncached", ".2f"),
            ("decode_speedup_vs_uncached", "decode × uncached", ".2f"),
            ("same_as_uncached", "same captions", ""),
        ],
    )
    cached = {name: r for name, r in results.items() if name.endswith("_cached")}
    emit(
        BENCH,
        "targets",
        **{f"{name}_speedup": round(r["speedup_vs_uncached"], 3) for name, r in cached.items()},
        all_same_as_uncached=all(r["same_as_uncached"] for r in cached.values()),
    )
    return results


if __name__ == "__main__":
    main()
