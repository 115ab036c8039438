"""Two CPU processes (gloo, torchrun) give the same contrastive loss and gradients as one process
holding the concatenated batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from distributed_worker import build_model, loss_of, make_batch

WORKER = Path(__file__).with_name("distributed_worker.py")


@pytest.mark.parametrize("kind", ["slap_model", "pretraining"])
def test_two_processes_equal_one(kind, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parent)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(WORKER), str(tmp_path), kind,
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]

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
