"""Worker of tests/test_distributed.py, launched with `torchrun --nproc_per_node 2` (gloo, CPU).

    distributed_worker.py OUT slap_model pretraining   the losses alone, under raw DDP
    distributed_worker.py OUT cli SLAP-TRAIN-ARGS...   `python -m slap_audio.training.cli`, as is

Loss mode: each rank embeds its share of a batch (unequal shares, as token-budget batches give) with
a DDP model, computes the contrastive loss (gathered across ranks) while `HostSyncs` watches the
losses, steps backward, and writes its loss, the (DDP-averaged) gradients and the syncs found to
`OUT/{kind}_rank{r}.pt`; then builds a `SlapTrainer` with `fsdp` and writes the error it raises
(accelerate has no FSDP on the CPU) to `OUT/fsdp_rank{r}.txt`.

CLI mode: runs the `slap-train` module as `torchrun -m slap_audio.training.cli` would; at the end
of training each rank writes its model's state (student and EMA teacher) and the DDP setting it ran
with to `OUT/rank{r}.pt`.
"""

from __future__ import annotations

import os
import runpy
import sys

import torch
import torch.distributed as dist
from host_syncs import HostSyncs
from torch.nn.parallel import DistributedDataParallel
from transformers import TrainingArguments

from slap_audio.modeling_slap import SlapConfig, SlapForPreTraining, SlapModel
from slap_audio.training import trainer as trainer_module
from slap_audio.training.trainer import SlapTrainer

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


def loss_main(out_dir: str, kinds: list[str]) -> None:
    dist.init_process_group("gloo")
    for kind in kinds:
        write_loss(out_dir, kind, dist.get_rank())
    write_fsdp_refusal(out_dir, dist.get_rank())
    dist.barrier()  # no rank tears down while the other still talks
    dist.destroy_process_group()


def write_loss(out_dir: str, kind: str, rank: int) -> None:
    model = build_model(kind)
    # every parameter reaches the loss: DDP without find_unused_parameters (it raises otherwise)
    assert not getattr(model, "unused_parameter_names", list)()
    model = DistributedDataParallel(model, find_unused_parameters=False)
    with HostSyncs(("modeling_slap/losses.py", "modeling_slap/modeling_pretraining.py"), allowed=["all_gather_ints"]) as syncs:
        loss = loss_of(model, *rank_slice(*make_batch(), rank))
    loss.backward()
    global_loss = loss.detach().clone()
    dist.all_reduce(global_loss)
    grads = {name: p.grad.clone() for name, p in model.module.named_parameters() if p.grad is not None}
    torch.save({"loss": float(global_loss) / dist.get_world_size(), "grads": grads, "syncs": syncs.found},
               os.path.join(out_dir, f"{kind}_rank{rank}.pt"))


def write_fsdp_refusal(out_dir: str, rank: int) -> None:
    """`SlapTrainer` with `fsdp` on gloo CPU processes: the error it raises, to `OUT/fsdp_rank{r}.txt`."""
    args = TrainingArguments(output_dir=os.path.join(out_dir, "fsdp"), use_cpu=True, report_to="none", fsdp=True)
    try:
        SlapTrainer(model=build_model("pretraining"), args=args)
        message = "no error"
    except ValueError as err:
        message = str(err)
    with open(os.path.join(out_dir, f"fsdp_rank{rank}.txt"), "w") as handle:
        handle.write(message)


def cli_main(out_dir: str, argv: list[str]) -> None:
    def save_rank_state(self, args, state, control, model=None, **kwargs):
        torch.save({"state": model.state_dict(), "find_unused_parameters": args.ddp_find_unused_parameters,
                    "teacher_momentum": model.current_teacher_momentum, "global_step": state.global_step},
                   os.path.join(out_dir, f"rank{args.process_index}.pt"))

    trainer_module.TeacherUpdateCallback.on_train_end = save_rank_state
    sys.argv = ["slap_audio.training.cli", *argv]
    runpy.run_module("slap_audio.training.cli", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    if sys.argv[2] == "cli":
        cli_main(sys.argv[1], sys.argv[3:])
    else:
        loss_main(sys.argv[1], sys.argv[2:])
    # skip interpreter finalisation: once, a rank that had written its results hung
    # there in a gloo thread, and torchrun waited for it until the test's timeout
    os._exit(0)
