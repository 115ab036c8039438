"""Same config and seed, same run — through `slap-train` in separate processes, and across a crash.

Every run here is a new process, as a user starts it: two runs of one config and seed (one through
the demo's training stage) log identical losses and end with identical weights; a run killed with
SIGKILL after a checkpoint and resumed by a new `slap-train --resume_from_checkpoint` process logs
the losses of the uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from slap_audio.training.cli import read_config_file

ROOT = Path(__file__).resolve().parent.parent
SLAP_TRAIN = str(Path(sys.executable).with_name("slap-train"))
MAX_STEPS = 6
# configs/micro.yaml made smaller: a few seconds of CPU per run
OVERRIDES = {
    "seed": 3, "max_steps": MAX_STEPS, "save_steps": 2, "logging_steps": 1, "train_size": 16, "max_tokens": 800,
    "max_clips": 8, "crop_seconds": 5.0, "eval_strategy": "no", "use_cpu": True, "disable_tqdm": True,
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
# logged per step and determined by the seed (tokens_per_second and runtimes are wall-clock)
COMPARED = ("loss", "contrastive_loss", "self_supervised_loss", "captioning_loss", "grad_norm", "learning_rate")


def run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-4000:]


def logged_steps(output_dir: Path) -> dict[int, dict]:
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return {entry["step"]: {key: entry[key] for key in COMPARED if key in entry} for entry in history if "loss" in entry}


def assert_same_weights(path_a: Path, path_b: Path) -> None:
    a, b = load_file(path_a), load_file(path_b)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "run.yaml"
    path.write_text(yaml.safe_dump({**read_config_file(str(ROOT / "configs" / "micro.yaml")), **OVERRIDES}))
    return path


@pytest.fixture(scope="module")
def reference(config, tmp_path_factory) -> Path:
    """An uninterrupted `slap-train` run."""
    output_dir = tmp_path_factory.mktemp("reference")
    run([SLAP_TRAIN, str(config), "--output_dir", str(output_dir)], cwd=output_dir)
    return output_dir


def test_same_config_and_seed_give_the_same_run(config, reference, tmp_path):
    """The second run goes through the demo's training stage (examples/demo.py) with the same config."""
    script = (
        "import pathlib, runpy, sys\n"
        "demo = runpy.run_path(sys.argv[1])\n"
        "demo['train'](demo['parse_args'](['--config', sys.argv[2]]), pathlib.Path(sys.argv[3]))\n"
    )
    run([sys.executable, "-c", script, str(ROOT / "examples" / "demo.py"), str(config), str(tmp_path)], cwd=tmp_path)
    expected = logged_steps(reference)
    assert sorted(expected) == list(range(1, MAX_STEPS + 1))
    assert logged_steps(tmp_path) == expected  # exactly, from the first step on
    assert_same_weights(tmp_path / "slap" / "model.safetensors", reference / "slap" / "model.safetensors")
    assert_same_weights(tmp_path / f"checkpoint-{MAX_STEPS}" / "model.safetensors",
                        reference / f"checkpoint-{MAX_STEPS}" / "model.safetensors")


def test_a_killed_run_resumes_in_a_new_process(config, reference, tmp_path):
    log = tmp_path / "killed.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [SLAP_TRAIN, str(config), "--output_dir", str(tmp_path)], cwd=tmp_path, env=ENV,
            stdout=handle, stderr=subprocess.STDOUT,
        )
    first = tmp_path / "checkpoint-2" / "trainer_state.json"  # the Trainer writes it last
    deadline = time.monotonic() + 300
    while not first.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, log.read_text()[-4000:]  # killed mid-run, not finished
    complete = [int(p.parent.name.split("-")[1]) for p in tmp_path.glob("checkpoint-*/trainer_state.json")]
    assert complete and max(complete) < MAX_STEPS and not (tmp_path / "slap").exists()
    last = max(complete)

    run([SLAP_TRAIN, str(config), "--output_dir", str(tmp_path),
         "--resume_from_checkpoint", str(tmp_path / f"checkpoint-{last}")], cwd=tmp_path)
    expected, got = logged_steps(reference), logged_steps(tmp_path)
    for step in range(last + 1, MAX_STEPS + 1):
        assert got[step] == expected[step], step
    assert_same_weights(tmp_path / "slap" / "model.safetensors", reference / "slap" / "model.safetensors")
