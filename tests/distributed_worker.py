"""Worker of tests/test_distributed.py, launched with `torchrun --nproc_per_node 2` (gloo, CPU).

Each rank embeds its share of a batch (unequal shares, as token-budget batches give) with a DDP
SlapModel, computes the contrastive loss (gathered across ranks), steps backward, and writes its
loss and the (DDP-averaged) gradients to `OUT/rank{r}.pt`.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from slap_audio.modeling_slap import SlapConfig, SlapForPreTraining, SlapModel

SPLIT = [3, 5]  # clips per rank (unequal on purpose)


def make_batch(seed: int = 0):
    """The whole batch of 8 pairs: packed features + token ids."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([16, 32, 48, 16, 64, 32, 16, 48])
    features = torch.randn(int(lengths.sum()), 64, generator=generator)
    input_ids = torch.randint(5, 500, (8, 6), generator=generator)
    return features, lengths, input_ids


def rank_slice(features, lengths, input_ids, rank: int):
    start = sum(SPLIT[:rank])
    end = start + SPLIT[rank]
    frame_start, frame_end = int(lengths[:start].sum()), int(lengths[:end].sum())
    return features[frame_start:frame_end], lengths[start:end], input_ids[start:end]


def build_model(kind: str):
    """Seeded micro model in eval mode: dropout off, so ranks and the single process see the same network."""
    torch.manual_seed(0)
    if kind == "pretraining":  # contrastive term only, masking off: deterministic on any rank split
        config = SlapConfig.from_size("micro", self_supervised_weight=0.0, captioning_weight=0.0, mask_ratio=0.0)
        return SlapForPreTraining(config).eval()
    return SlapModel(SlapConfig.from_size("micro")).eval()


def loss_of(model, features, lengths, input_ids):
    if isinstance(getattr(model, "module", model), SlapForPreTraining):
        return model(input_features=features, audio_lengths=lengths, input_ids=input_ids).loss
    return model(input_ids=input_ids, input_features=features, audio_lengths=lengths, return_loss=True).loss


def main() -> None:
    out_dir, kind = sys.argv[1], sys.argv[2]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    model = DistributedDataParallel(build_model(kind), find_unused_parameters=kind == "pretraining")
    loss = loss_of(model, *rank_slice(*make_batch(), rank))
    loss.backward()
    global_loss = loss.detach().clone()
    dist.all_reduce(global_loss)
    grads = {name: p.grad.clone() for name, p in model.module.named_parameters() if p.grad is not None}
    torch.save({"loss": float(global_loss) / dist.get_world_size(), "grads": grads}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.barrier()  # no rank tears down while the other still talks
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
    # skip interpreter finalisation: once, a rank that had written its results hung
    # there in a gloo thread, and torchrun waited for it until the test's timeout
    os._exit(0)
