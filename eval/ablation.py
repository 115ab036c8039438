"""Evidence that SLAP learns, and the paper's ablation in miniature: the full objective
(contrastive + masked self-distillation + captioning) against contrastive only, same model,
same data, same step budget, on the built-in data.

    python -m slap_audio.eval.ablation --config configs/demo.yaml --max-steps 150 --output-dir outputs/ablation

Each variant is trained with the `slap-train` machinery (validation retrieval every
`--eval-steps`), then its release `SlapModel` is scored on the built-in test split (R@1/5/10 both
ways, chance = 1 / test clips). Writes `ablation.json` (curves + test metrics) and
`ablation_curves.png`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from slap_audio.eval.builtin_data import build_dataset
from slap_audio.eval.embed import embed_examples
from slap_audio.eval.plots import plot_training_curves
from slap_audio.eval.retrieval import retrieval_metrics
from slap_audio.modeling_slap import SlapModel, SlapProcessor
from slap_audio.training import cli as train_cli

VARIANTS = {
    "full": {},
    "contrastive_only": {"self_supervised_weight": 0.0, "captioning_weight": 0.0},
}


def test_metrics(model_dir: str, test_clips: int, seed: int) -> dict[str, float]:
    model = SlapModel.from_pretrained(model_dir).eval()
    processor = SlapProcessor.from_pretrained(model_dir)
    test = build_dataset("test", test_clips, seed=seed)
    examples = [{"audio": row["audio"], "captions": row["captions"]} for row in test]
    embedded = embed_examples(model, processor, examples)
    return retrieval_metrics(embedded.audio, embedded.text, embedded.caption_to_audio)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--max-steps", type=int, default=150)
    parser.add_argument("--eval-steps", type=int, default=25)
    parser.add_argument("--test-clips", type=int, default=200)
    parser.add_argument("--output-dir", default="outputs/ablation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    results = {"config": args.config, "max_steps": args.max_steps, "chance_R@1": 1 / args.test_clips, "variants": {}}
    for name, overrides in VARIANTS.items():
        run_dir = out / name
        paths = train_cli.main([
            args.config, "--output_dir", str(run_dir),
            "--max_steps", str(args.max_steps), "--eval_strategy", "steps", "--eval_steps", str(args.eval_steps),
            "--save_strategy", "no", "--seed", str(args.seed), "--config_overrides", json.dumps(overrides),
        ])
        history = json.loads((run_dir / "trainer_state.json").read_text())["log_history"]
        curve = [{"step": e["step"], "R@1": e["eval_text_to_audio_R@1"]} for e in history if "eval_text_to_audio_R@1" in e]
        results["variants"][name] = {
            "overrides": overrides, "validation_curve": curve, "test": test_metrics(paths["slap"], args.test_clips, args.seed),
            "log_history": history,
        }
        print(name, json.dumps(results["variants"][name]["test"]), flush=True)
    curves = [
        {"step": point["step"], f"{name}_val_text_to_audio_R@1": point["R@1"]}
        for name, variant in results["variants"].items() for point in variant["validation_curve"]
    ]
    plot_training_curves(curves, out / "ablation_curves.png", title="validation R@1 (text→audio)")
    (out / "ablation.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
