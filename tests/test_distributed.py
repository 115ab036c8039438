"""Two CPU processes (gloo, torchrun).

- The contrastive loss and its gradients on two processes equal one process holding the
  concatenated batch (unequal shares per rank), with no host sync in the losses.
- DDP runs without `find_unused_parameters`: `unused_parameter_names` lists exactly the parameters
  an objective mix leaves without gradient (empty for the default recipe).
- `torchrun -m slap_audio.training.cli` trains `SlapForPreTraining` (masking, self-distillation
  with the EMA teacher, captioning, gathered contrast): the ranks end with identical students and
  teachers, and a run resumed from a checkpoint on two processes ends where the uninterrupted run did.
- FSDP cannot run here (accelerate shards on GPU-class devices only): `fsdp` on the CPU is refused
  instead of silently training unsharded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from distributed_worker import build_model, loss_of, make_batch

from slap_audio.modeling_slap import SlapConfig, SlapForPreTraining
from slap_audio.training.cli import read_config_file

WORKER = Path(__file__).with_name("distributed_worker.py")
KINDS = ("slap_model", "pretraining")
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "micro.yaml"
# configs/micro.yaml made smaller: a few seconds of CPU per rank
OVERRIDES = {
    "seed": 3, "max_steps": 4, "save_steps": 2, "logging_steps": 1, "train_size": 16, "max_tokens": 800,
    "max_clips": 8, "crop_seconds": 5.0, "eval_strategy": "no", "use_cpu": True, "disable_tqdm": True,
}


def torchrun(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(WORKER.parent)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def loss_ranks(tmp_path_factory) -> Path:
    """One torchrun launch computes the loss of both kinds."""
    out = tmp_path_factory.mktemp("loss")
    torchrun(str(out), *KINDS)
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_two_processes_equal_one(kind, loss_ranks):
    ranks = [torch.load(loss_ranks / f"{kind}_rank{r}.pt") for r in range(2)]
    assert [rank["syncs"] for rank in ranks] == [[], []]  # only the host-side size exchange reads

    model = build_model(kind)
    loss = loss_of(model, *make_batch())
    loss.backward()
    assert ranks[0]["loss"] == pytest.approx(loss.item(), abs=1e-6)
    expected = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert set(ranks[0]["grads"]) == set(expected)
    for name, grad in expected.items():
        # fp32 sums in another order (per rank, then averaged): noise of ~1e-6 of the gradient's scale
        atol = 1e-6 * max(1.0, grad.abs().max().item())
        for rank in ranks:  # DDP leaves the averaged gradient on every rank
            torch.testing.assert_close(rank["grads"][name], grad, atol=atol, rtol=1e-5, msg=name)


@pytest.mark.parametrize("overrides", [
    {}, {"unmasked_student_pass": True}, {"contrastive_type": "sigmoid"}, {"mask_mode": "drop"},
    {"mask_mode": "drop", "self_supervised_weight": 0.0, "captioning_weight": 0.0},
    {"mask_mode": "drop", "unmasked_student_pass": True, "self_supervised_weight": 0.0, "reconstruction_weight": 1.0},
    {"byol_weight": 1.0, "contrastive_weight": 0.0, "self_supervised_weight": 0.0, "captioning_weight": 0.0},
    {"contrastive_weight": 0.0, "captioning_weight": 0.0},
])
def test_unused_parameters_are_the_ones_without_gradient(overrides):
    lengths = torch.tensor([32, 16, 48])
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 500, (3, 7), generator=generator)
    torch.manual_seed(0)
    model = SlapForPreTraining(SlapConfig.from_size("micro", **overrides)).train()
    model(input_features=torch.randn(96, 64, generator=generator), audio_lengths=lengths, input_ids=ids,
          caption_labels=ids).loss.backward()
    without_gradient = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert model.unused_parameter_names() == without_gradient
    if not overrides:  # the default recipe: DDP needs no search for unused parameters
        assert without_gradient == []


def test_fsdp_where_accelerate_cannot_shard_is_refused(loss_ranks):
    """On the CPU accelerate has no FSDP path: two gloo processes would train unsharded, silently."""
    for rank in range(2):
        message = (loss_ranks / f"fsdp_rank{rank}.txt").read_text()
        assert message.startswith("fsdp is set, but accelerate runs this MULTI_CPU setup without FSDP"), message


def logged_losses(output_dir: Path) -> dict[int, float]:
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return {entry["step"]: entry["loss"] for entry in history if "loss" in entry}


def test_slap_train_on_two_processes_keeps_ranks_identical_and_resumes(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**read_config_file(str(CONFIG)), **OVERRIDES}))
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    for out in (full, resumed):
        out.mkdir()
    torchrun(str(full), "cli", str(config), "--output_dir", str(full / "run"))
    ranks = [torch.load(full / f"rank{r}.pt") for r in range(2)]
    for name, value in ranks[0]["state"].items():  # students, teachers and the centre, bit for bit
        assert torch.equal(ranks[1]["state"][name], value), name
    assert all(rank["find_unused_parameters"] is False and rank["global_step"] == 4 for rank in ranks)
    state = ranks[0]["state"]
    teacher = state["teacher_audio_model.patch_embed.weight"]
    assert not torch.equal(teacher, state["audio_model.patch_embed.weight"])  # an EMA, not a copy
    assert 0.994 <= ranks[0]["teacher_momentum"] <= 1.0

    torchrun(str(resumed), "cli", str(config), "--output_dir", str(resumed / "run"),
             "--resume_from_checkpoint", str(full / "run" / "checkpoint-2"))
    resumed_state = torch.load(resumed / "rank0.pt")["state"]
    for name, value in state.items():
        assert torch.equal(resumed_state[name], value), name
    losses = logged_losses(full / "run" / "checkpoint-4")
    assert sorted(losses) == [1, 2, 3, 4]
    assert logged_losses(resumed / "run" / "checkpoint-4") == losses  # steps 1-2 from the checkpoint, 3-4 anew
