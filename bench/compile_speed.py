"""Compiled vs eager audio encoder on the fixed 48-clip workload (batches of 8, inference mode).

One process, `torch.set_num_threads(2)`, the same `SlapAudioModel` weights in three ways:

- `eager`            the default call `model(input_features, audio_lengths)`: the layout reads the
                     clip lengths on the host and pads clips in `NUM_LENGTH_GROUPS` length groups;
- `eager_layout`     the same model given the feature extractor's layout ints
                     (`return_max_audio_length=True`: `max_audio_length`, `audio_length_groups`);
- `compiled`         `torch.compile(model, fullgraph=True, dynamic=True)` given the layout ints
                     (Inductor), warmed up on every batch first: `compile_seconds` is that warm-up
                     pass, `unique_graphs` Dynamo's count after it (1: no recompile per batch).

Features are computed once, outside the timing. Then `--repeats` passes run with the three ways
interleaved per batch; each batch keeps its fastest repeat (`seconds`), and `speedup` is eager's
seconds over each way's.

    python -m bench.compile_speed              # tiny encoder (~3 min on 2 quiet cores, most of it compiling)
    python -m bench.compile_speed --quick      # micro encoder, 4 clips (~1 min)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch._dynamo
from torch._dynamo.utils import counters

from .common import emit, print_table, slap_config, start_run
from .workload import batches, load_audio, workload

BENCH = "compile_speed"
RATE = 16_000
LAYOUT_KEYS = ("max_audio_length", "audio_length_groups")


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="micro encoder, 4 clips")
    parser.add_argument("--size", default=None, help="audio size (default: tiny; micro with --quick)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    args.isolate = False
    start_run(BENCH, args)
    from slap_audio.modeling_slap import SlapAudioModel, SlapFeatureExtractor

    size = args.size or ("micro" if args.quick else "tiny")
    torch.manual_seed(0)
    model = SlapAudioModel(slap_config(size).audio_config).eval()
    extractor = SlapFeatureExtractor()
    packs = [extractor(waves, sampling_rate=RATE, return_max_audio_length=True)
             for waves in batches(load_audio(workload(args.quick), RATE))]
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, fullgraph=True, dynamic=True)

    def call(module: torch.nn.Module, pack: dict, layout: bool) -> Callable[[], object]:
        extra = {key: pack[key] for key in LAYOUT_KEYS} if layout else {}
        return lambda: module(pack["input_features"], pack["audio_lengths"], **extra).pooler_output

    ways = {"eager": (model, False), "eager_layout": (model, True), "compiled": (compiled, True)}
    with torch.inference_mode():
        compile_seconds = sum(_seconds(call(compiled, pack, True)) for pack in packs)
        graphs = counters["stats"]["unique_graphs"]
        for pack in packs:  # results agree
            torch.testing.assert_close(call(compiled, pack, True)(), call(model, pack, False)(), atol=1e-4, rtol=1e-4)
        best = {name: [float("inf")] * len(packs) for name in ways}
        for _ in range(args.repeats):
            for index, pack in enumerate(packs):
                for name, (module, layout) in ways.items():
                    best[name][index] = min(best[name][index], _seconds(call(module, pack, layout)))
    rows = []
    for name in ways:
        seconds = sum(best[name])
        fields = {"size": size, "seconds": round(seconds, 4), "speedup": round(sum(best["eager"]) / seconds, 3)}
        if name == "compiled":
            fields.update(compile_seconds=round(compile_seconds, 1), unique_graphs=graphs)
        rows.append(emit(BENCH, name, **fields))
    groups = [pack["audio_length_groups"] for pack in packs]
    emit(BENCH, "layout", batches=len(packs), audio_length_groups=groups)
    print_table(f"compiled vs eager, {size} audio encoder", rows,
                [("config", "way", ""), ("seconds", "seconds", ".3f"), ("speedup", "vs eager", ".3f")])


if __name__ == "__main__":
    main()
