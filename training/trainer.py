"""`SlapTrainer`: `transformers.Trainer` for SLAP's multi-objective pretraining.

- `compute_loss` returns the model's weighted total; every `*_loss` component, the temperature,
  the teacher momentum, tokens/s and the batch fill are logged with the Trainer's own logging.
  They are summed as device tensors and read once per log: no host sync in the training step
  (the per-step decision to skip empty micro-batches is taken from host-side counts, exchanged
  with `all_gather_ints`).
- DDP runs without `find_unused_parameters` unless the model's objectives leave parameters
  without gradient (`SlapForPreTraining.unused_parameter_names`); an explicit
  `--ddp_find_unused_parameters` wins. `fsdp` where accelerate would silently run without it
  (CPU, a single process) is refused.
- The EMA teacher is updated after each optimizer step (`TeacherUpdateCallback`).
- Token-budget batches: pass `train_batch_sampler` (a rank-aware batch sampler with
  `set_epoch`); the Trainer's resume logic then skips already-seen batches exactly, and the
  epoch reaches the collator's seeded crops too.
- Evaluation adds text↔audio retrieval (R@1/5/10, mAP@10) on the evaluation dataset's clips and
  all their captions (examples `{"audio", "captions"}`).

Broken training data never stops a run:
- Skip counts: each batch carries the `SkipStats` of the clips its collator dropped (in whichever
  DataLoader worker built it); the trainer adds them up, sums them over ranks at each log, logs
  them as `skipped/<reason>` (totals so far) and keeps the run's total in `trainer.skip_stats`.
- Empty batches (every clip dropped) are skipped, never fed to the model. Ranks decide together,
  once per optimizer step (one small all-reduce when there are several processes): a micro-batch
  is skipped on every rank if it is empty on any, so all ranks run the same forwards and
  collectives. Within a gradient-accumulation window the skipped micro-batches go first, so the
  last one, whose backward synchronises gradients, is a real one; the loss is rescaled to the mean
  over the real micro-batches. A window with no real micro-batch still counts as an optimizer step
  (the schedule, the data order and resumption stay aligned) on zero gradients, logged as
  `skipped_micro_batches`, and leaves the logged `loss` out of its average.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import torch
from accelerate.utils import gather_object
from torch.utils.data import DataLoader, Sampler
from transformers import Trainer, TrainerCallback

from slap_audio.data.examples import SkipStats
from slap_audio.eval.embed import embed_examples
from slap_audio.eval.retrieval import retrieval_metrics
from slap_audio.modeling_slap.losses import all_gather_ints
from slap_audio.training.collator import SlapCollator, downmix

logger = logging.getLogger(__name__)

LOSS_COMPONENTS = ("contrastive_loss", "self_supervised_loss", "captioning_loss", "reconstruction_loss", "byol_loss")
METADATA_KEYS = ("skipped", "clip_ids")  # what `SlapCollator(return_metadata=True)` adds to a batch
TEXT_ENCODER_PREFIX = "text_model.encoder."  # the text tower's encoder (`text_learning_rate_scale`)
SKIP_MICRO_BATCH = "skip_micro_batch"  # marks a micro-batch that `training_step` skips


def num_clips(batch: dict) -> int:
    """Clips in a collated batch (0 when the collator dropped them all)."""
    return len(batch["audio_lengths"]) if "audio_lengths" in batch else len(batch["input_ids"])


class TeacherUpdateCallback(TrainerCallback):
    """After each optimizer step: EMA update of the teacher with the cosine momentum schedule."""

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if model is not None and hasattr(model, "update_teacher"):
            momentum = model.teacher_momentum_at(state.global_step, state.max_steps)
            model.update_teacher(momentum)
            model.current_teacher_momentum = momentum


class EpochLinkedBatchSampler(Sampler):
    """A batch sampler whose `set_epoch` (called by the Trainer before each epoch, also on resume)
    reaches the collator too, so crops and caption choices follow the true epoch."""

    def __init__(self, batch_sampler, collator):
        self.batch_sampler, self.collator = batch_sampler, collator

    def __iter__(self):
        return iter(self.batch_sampler)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def set_epoch(self, epoch: int) -> None:
        self.batch_sampler.set_epoch(epoch)
        if hasattr(self.collator, "set_epoch"):
            self.collator.set_epoch(epoch)


class SlapTrainer(Trainer):
    """Trainer for `SlapForPreTraining` (or any SLAP model returning `loss` and `*_loss` fields).

    Args:
        train_batch_sampler: a batch sampler yielding lists of dataset indices (token budget);
            it must be rank-aware already (the accelerator's re-sharding is switched off for it).

    Pass the `SlapProcessor` as `processing_class`: it is saved in every checkpoint (a resumed run
    keeps the vocabulary) and embeds the evaluation clips and captions for retrieval.

    A `SlapCollator` passed as `data_collator` is switched to `return_metadata=True`, so that skip
    counts reach the trainer from DataLoader workers. After `train()`, `skip_stats` holds the clips
    skipped while training, summed over workers and ranks (also in the metrics `train()` returns,
    as `skipped/<reason>`).
    """

    def __init__(self, model=None, args=None, *rest, train_batch_sampler=None, text_learning_rate_scale: float = 1.0,
                 **kwargs):
        if text_learning_rate_scale == 0 and model is not None:  # frozen: no text gradients computed at all
            for name, parameter in model.named_parameters():
                if name.startswith(TEXT_ENCODER_PREFIX):
                    parameter.requires_grad_(False)
        if args is not None and args.ddp_find_unused_parameters is None and hasattr(model, "unused_parameter_names"):
            args.ddp_find_unused_parameters = bool(model.unused_parameter_names())  # else DDP searches every step
        super().__init__(model, args, *rest, **kwargs)
        if self.args.fsdp_plugin_args is not None and not self.is_fsdp_enabled:
            raise ValueError(
                f"fsdp is set, but accelerate runs this {self.accelerator.distributed_type.value} setup without "
                "FSDP (it shards on GPU-class devices under a distributed launch only) and would train unsharded: "
                "unset fsdp here"
            )
        self.train_batch_sampler = train_batch_sampler
        self.text_learning_rate_scale = text_learning_rate_scale
        self._retrieval_examples: list[dict] | None = None
        # the model's forward takes **kwargs but does not normalise by num_items_in_batch
        self.model_accepts_loss_kwargs = False
        self.add_callback(TeacherUpdateCallback())
        self._sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=self.args.device))
        self._micro_batches = 0
        self._tokens = torch.zeros((), dtype=torch.int64, device=self.args.device)  # audio tokens since the last log
        self._window_start = time.perf_counter()
        if isinstance(self.data_collator, SlapCollator):
            self.data_collator.return_metadata = True
        self.local_skip_stats = SkipStats()  # this process's batches (all its DataLoader workers)
        self.skip_stats = SkipStats()  # all ranks, as of the last training log
        self._skipped_micro_batches = 0  # since the start (the same on every rank)
        self._steps = self._empty_steps = 0  # optimizer steps since the last log, and those without data
        self._loss_scale = 1.0  # micro-batches in the window / real ones

    def get_train_dataloader(self) -> DataLoader:
        if self.train_batch_sampler is None:
            return super().get_train_dataloader()
        batch_sampler = EpochLinkedBatchSampler(self.train_batch_sampler, self.data_collator)
        loader = DataLoader(
            self.train_dataset,
            batch_sampler=batch_sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
        )
        loader = self.accelerator.prepare(loader)
        # the sampler already gives each rank its own batches: make accelerate's shard a passthrough
        shard = getattr(loader, "batch_sampler", None)
        if shard is not None and getattr(shard, "batch_sampler", None) is batch_sampler:
            shard.num_processes, shard.process_index = 1, 0
        return loader

    def create_optimizer(self, model=None):
        """The Trainer's optimizer, with the text encoder's parameters in groups of their own at
        `text_learning_rate_scale` × the learning rate (a pretrained tower is fine-tuned gently; at 0
        it is frozen and left out)."""
        optimizer = super().create_optimizer(model)
        if self.text_learning_rate_scale == 1.0:
            return optimizer
        model = self.model if model is None else model
        text = {id(p) for name, p in model.named_parameters() if name.startswith(TEXT_ENCODER_PREFIX)}
        groups, optimizer.param_groups = optimizer.param_groups, []  # no state yet: regroup in place
        for group in groups:
            for is_text in (False, True):
                params = [p for p in group["params"] if (id(p) in text) == is_text]
                if params:
                    scale = self.text_learning_rate_scale if is_text else 1.0
                    optimizer.add_param_group({**group, "params": params, "lr": group["lr"] * scale})
        return optimizer

    def _take_metadata(self, batch: dict) -> None:
        """Pop the collator's metadata from a training batch, counting its skipped clips."""
        skipped = batch.pop("skipped", None)
        batch.pop("clip_ids", None)
        if skipped is not None:
            self.local_skip_stats.update(skipped)

    def get_batch_samples(self, epoch_iterator: Iterator, num_batches: int, device: torch.device):
        """The micro-batches of one optimizer step, their skip counts taken out, and the ones to
        skip (empty here or on another rank) marked and moved to the front (see the module
        docstring)."""
        batch_samples, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        if not batch_samples:
            return batch_samples, num_items_in_batch
        for batch in batch_samples:
            self._take_metadata(batch)
        # as many flags on every rank, summed over ranks on the host (batch sizes are shapes: no sync)
        empty = [int(num_clips(b) == 0) for b in batch_samples] + [0] * (num_batches - len(batch_samples))
        empty = [sum(flags) for flags in zip(*all_gather_ints(empty), strict=True)]
        skip = [flag > 0 for flag in empty[: len(batch_samples)]]
        real = [batch for batch, s in zip(batch_samples, skip, strict=True) if not s]
        skipped = [{**batch, SKIP_MICRO_BATCH: True} for batch, s in zip(batch_samples, skip, strict=True) if s]
        self._skipped_micro_batches += len(skipped)
        self._loss_scale = len(batch_samples) / max(len(real), 1)
        self._steps += 1
        if not real:  # no backward this step: zero gradients, the same on every rank
            self._empty_steps += 1
            for parameter in self.model.parameters():
                if parameter.requires_grad and parameter.grad is None:
                    parameter.grad = torch.zeros_like(parameter)
        return skipped + real, num_items_in_batch

    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        if inputs.pop(SKIP_MICRO_BATCH, False):
            return torch.zeros((), device=self.args.device)
        return super().training_step(model, inputs, num_items_in_batch)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """The Trainer's evaluation step; an evaluation batch whose clips were all dropped scores
        nothing (a loss over zero frames)."""
        for key in METADATA_KEYS:
            inputs.pop(key, None)
        if num_clips(inputs) == 0:
            return torch.zeros((), device=self.args.device), None, None
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        if model.training:
            for name in LOSS_COMPONENTS:
                value = outputs.get(name)
                if value is not None:
                    self._sums[name] += value.detach()
            if outputs.get("logit_scale") is not None:
                self._sums["temperature"] += 1.0 / outputs["logit_scale"].detach()
            self._micro_batches += 1
            if "audio_lengths" in inputs:  # frames → tokens (clips are whole patches), on the device
                audio_config = self.model.config.audio_config
                self._tokens += inputs["audio_lengths"].sum() // audio_config.patch_frames * audio_config.freq_patches
            outputs.loss = outputs.loss * self._loss_scale  # mean over the window's real micro-batches
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def gather_skip_stats(self) -> SkipStats:
        """Skip counts of every rank's batches so far (a collective: call it on every rank)."""
        total = SkipStats()
        for stats in gather_object([self.local_skip_stats]):
            total.update(stats)
        return total

    def _log_skips(self, logs: dict[str, float]) -> None:
        self.skip_stats = self.gather_skip_stats()
        logs.update({f"skipped/{reason}": count for reason, count in sorted(self.skip_stats.counts.items())})
        if self._skipped_micro_batches:
            logs["skipped_micro_batches"] = self._skipped_micro_batches

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log, on every rank
            self._log_training(logs)
        elif "train_loss" in logs:  # the end of `train()`, on every rank
            self._log_skips(logs)
            if self.skip_stats.total and self.is_world_process_zero():
                logger.warning("skipped while training: %s", self.skip_stats.summary())
        super().log(logs, start_time)

    def _log_training(self, logs: dict[str, float]) -> None:
        """Loss components, temperature, tokens/s and teacher momentum averaged since the last log;
        the loss over the steps that had data; skip counts."""
        if self._micro_batches:  # the same count on every rank
            names = sorted(self._sums)
            stacked = torch.stack([self._sums[n] for n in names]) / self._micro_batches
            stacked = self.accelerator.reduce(stacked, reduction="mean")
            logs.update({name: float(v) for name, v in zip(names, stacked, strict=True)})
            elapsed = time.perf_counter() - self._window_start
            tokens = self.accelerator.reduce(self._tokens.float(), reduction="sum")
            logs["tokens_per_second"] = round(float(tokens) / max(elapsed, 1e-9), 1)
            momentum = getattr(self.model, "current_teacher_momentum", None)
            if momentum is not None:
                logs["teacher_momentum"] = round(momentum, 6)
            self._sums.clear()
            self._micro_batches = 0
            self._tokens.zero_()
            self._window_start = time.perf_counter()
        if self._empty_steps:  # the Trainer averaged their zero losses in
            real_steps = self._steps - self._empty_steps
            if real_steps:
                logs["loss"] *= self._steps / real_steps
            else:
                del logs["loss"]
        self._steps = self._empty_steps = 0
        self._log_skips(logs)

    def retrieval_examples(self, dataset) -> list[dict]:
        """The decodable examples of `dataset`, down-mixed as the collator does, kept for the
        evaluation set (built-in clips are generated on access)."""
        if dataset is self.eval_dataset and self._retrieval_examples is not None:
            return self._retrieval_examples
        examples = [{**e, "audio": {**e["audio"], "array": downmix(np.asarray(e["audio"]["array"]))}}
                    for e in (dataset[i] for i in range(len(dataset))) if e["audio"] is not None]
        if dataset is self.eval_dataset:
            self._retrieval_examples = examples
        return examples

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """The Trainer's evaluation (pretraining loss on the evaluation set) plus retrieval metrics."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        with torch.random.fork_rng(devices=[]):  # evaluation must not move the training RNG
            metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        if dataset is None or self.processing_class is None or not self.is_world_process_zero():
            return metrics
        examples = self.retrieval_examples(dataset)
        if examples:  # none when every evaluation clip is broken
            model = self.accelerator.unwrap_model(self.model)
            embedded = embed_examples(model, self.processing_class, examples)
            retrieval = retrieval_metrics(embedded.audio, embedded.text, embedded.caption_to_audio)
            retrieval = {f"{metric_key_prefix}_{k.replace('/', '_')}": v for k, v in retrieval.items()}
            self.log(retrieval)
            metrics.update(retrieval)
        return metrics
