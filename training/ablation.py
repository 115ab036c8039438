"""Evidence that SLAP learns, and the paper's ablation in miniature: the full objective
(contrastive + masked self-distillation + captioning) against contrastive only, same model,
same data, same step budget, on the built-in data.

    python -m slap_audio.training.ablation --config configs/ablation.yaml --max-steps 300 --output-dir outputs/ablation

Variants (`--variants` picks some; each is trained with the `slap-train` machinery, validation
retrieval every `--eval-steps`, then its release `SlapModel` is scored on the built-in test split):

- `full`: SPEC §4 as written, one student pass over the masked audio feeds every objective;
- `full_unmasked_pass`: the same objectives, plus a student pass over the unmasked audio for the
  contrastive and captioning losses (`unmasked_student_pass=True`);
- `contrastive_only`: CLAP, no masking (nothing needs it).

Each variant writes `<output-dir>/<variant>/result.json`; the summary `ablation.json` and the plot
`ablation_curves.png` gather every variant found there, so variants may run in separate processes
(`--variants full` in one, `--variants contrastive_only` in another) and be summarised by
`--summarize-only`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from slap_audio.data.builtin_data import build_dataset
from slap_audio.eval.embed import embed_examples
from slap_audio.eval.plots import plot_compared_curves
from slap_audio.eval.retrieval import retrieval_metrics
from slap_audio.modeling_slap import SlapConfig, SlapModel, SlapProcessor
from slap_audio.training import cli as train_cli

# every variant sets all objective weights: the config's own overrides (the demo's drop
# self-distillation) must not leak into the comparison
_ALL_OBJECTIVES = {
    "self_supervised_weight": SlapConfig.self_supervised_weight, "captioning_weight": SlapConfig.captioning_weight,
}
VARIANTS = {
    "full": {**_ALL_OBJECTIVES, "unmasked_student_pass": False},
    "full_unmasked_pass": {**_ALL_OBJECTIVES, "unmasked_student_pass": True},
    "contrastive_only": {"self_supervised_weight": 0.0, "captioning_weight": 0.0},
}


def test_metrics(model_dir: str, test_clips: int, seed: int) -> dict[str, float]:
    model = SlapModel.from_pretrained(model_dir).eval()
    processor = SlapProcessor.from_pretrained(model_dir)
    test = build_dataset("test", test_clips, seed=seed)
    examples = [{"audio": row["audio"], "captions": row["captions"]} for row in test]
    embedded = embed_examples(model, processor, examples)
    return retrieval_metrics(embedded.audio, embedded.text, embedded.caption_to_audio)


def config_overrides_of(config_path: str) -> dict:
    """The `config_overrides` of a training config file (the variants are applied on top)."""
    overrides = train_cli.read_config_file(config_path).get("config_overrides") or {}
    return json.loads(overrides) if isinstance(overrides, str) else dict(overrides)


def run_variant(name: str, args: argparse.Namespace) -> dict:
    """Train one variant, score it on the test split, write `<output-dir>/<name>/result.json`."""
    run_dir = Path(args.output_dir) / name
    overrides = {**config_overrides_of(args.config), **VARIANTS[name]}
    started = time.perf_counter()
    paths = train_cli.main([
        args.config, "--output_dir", str(run_dir),
        "--max_steps", str(args.max_steps), "--eval_size", str(args.eval_clips), "--eval_strategy", "steps", "--eval_steps", str(args.eval_steps),
        "--save_strategy", "no", "--seed", str(args.seed), "--config_overrides", json.dumps(overrides),
    ])
    train_seconds = time.perf_counter() - started
    history = json.loads((run_dir / "trainer_state.json").read_text())["log_history"]
    curve = [
        {"step": e["step"], "R@1": e["eval_text_to_audio_R@1"], "R@10": e["eval_text_to_audio_R@10"]}
        for e in history if "eval_text_to_audio_R@1" in e
    ]
    result = {
        "variant": name, "overrides": overrides, "config": args.config, "max_steps": args.max_steps,
        "seed": args.seed, "train_seconds": round(train_seconds, 1), "validation_curve": curve,
        "test_clips": args.test_clips, "test": test_metrics(paths["slap"], args.test_clips, args.seed),
        "log_history": history,
    }
    (run_dir / "result.json").write_text(json.dumps(result, indent=2))
    print(name, json.dumps(result["test"]), flush=True)
    return result


def summarize(output_dir: str | Path) -> dict:
    """Gather every variant's `result.json` into `ablation.json` and plot the validation curves."""
    out = Path(output_dir)
    variants = {}
    for name in VARIANTS:
        path = out / name / "result.json"
        if path.exists():
            variants[name] = json.loads(path.read_text())
    if not variants:
        raise FileNotFoundError(f"no variant results (<variant>/result.json) under {out}")
    test_clips = {v["test_clips"] for v in variants.values()}
    results = {"chance_R@1": 1 / min(test_clips), "variants": variants}
    panels = {
        "validation text→audio R@1": {
            name: [(p["step"], p["R@1"]) for p in v["validation_curve"]] for name, v in variants.items()
        },
        "training contrastive loss": {
            name: [(e["step"], e["contrastive_loss"]) for e in v["log_history"] if "contrastive_loss" in e]
            for name, v in variants.items()
        },
    }
    plot_compared_curves(panels, out / "ablation_curves.png", title="SLAP ablation on the built-in data")
    (out / "ablation.json").write_text(json.dumps(results, indent=2))
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/ablation.yaml")
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--eval-steps", type=int, default=50)
    parser.add_argument("--eval-clips", type=int, default=200, help="validation clips of the curves")
    parser.add_argument("--test-clips", type=int, default=200)
    parser.add_argument("--output-dir", default="outputs/ablation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--summarize-only", action="store_true", help="only gather existing results")
    args = parser.parse_args(argv)
    if not args.summarize_only:
        for name in args.variants:
            run_variant(name, args)
    return summarize(args.output_dir)


if __name__ == "__main__":
    main()
