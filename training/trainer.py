"""`SlapTrainer`: `transformers.Trainer` for SLAP's multi-objective pretraining.

- `compute_loss` returns the model's weighted total; every `*_loss` component, the temperature,
  the teacher momentum, tokens/s and the batch fill are logged with the Trainer's own logging.
- The EMA teacher is updated after each optimizer step (`TeacherUpdateCallback`).
- Token-budget batches: pass `train_batch_sampler` (a rank-aware batch sampler with
  `set_epoch`); the Trainer's resume logic then skips already-seen batches exactly, and the
  epoch reaches the collator's seeded crops too.
- Evaluation adds text↔audio retrieval (R@1/5/10, mAP@10) on the evaluation dataset's clips and
  all their captions (examples `{"audio", "captions"}`).
"""

from __future__ import annotations

import time
from collections import defaultdict

import torch
from torch.utils.data import DataLoader, Sampler
from transformers import Trainer, TrainerCallback

from slap_audio.eval.embed import embed_examples
from slap_audio.eval.retrieval import retrieval_metrics

LOSS_COMPONENTS = ("contrastive_loss", "self_supervised_loss", "captioning_loss", "reconstruction_loss", "byol_loss")


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
    """

    def __init__(self, *args, train_batch_sampler=None, text_learning_rate_scale: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.train_batch_sampler = train_batch_sampler
        self.text_learning_rate_scale = text_learning_rate_scale
        self._retrieval_examples: list[dict] | None = None
        # the model's forward takes **kwargs but does not normalise by num_items_in_batch
        self.model_accepts_loss_kwargs = False
        self.add_callback(TeacherUpdateCallback())
        self._sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=self.args.device))
        self._micro_batches = 0
        self._tokens = 0
        self._window_start = time.perf_counter()

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
        `text_learning_rate_scale` × the learning rate (a pretrained tower is fine-tuned gently)."""
        optimizer = super().create_optimizer(model)
        if self.text_learning_rate_scale == 1.0:
            return optimizer
        model = self.model if model is None else model
        text = {id(p) for name, p in model.named_parameters() if name.startswith("text_model.encoder.")}
        groups, optimizer.param_groups = optimizer.param_groups, []  # no state yet: regroup in place
        for group in groups:
            for is_text in (False, True):
                params = [p for p in group["params"] if (id(p) in text) == is_text]
                if params:
                    scale = self.text_learning_rate_scale if is_text else 1.0
                    optimizer.add_param_group({**group, "params": params, "lr": group["lr"] * scale})
        return optimizer

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
            if "audio_lengths" in inputs:
                patch_frames = self.model.config.audio_config.patch_frames
                self._tokens += int(inputs["audio_lengths"].sum()) // patch_frames * self.model.config.audio_config.freq_patches
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._micro_batches:
            names = sorted(self._sums)
            stacked = torch.stack([self._sums[n] for n in names]) / self._micro_batches
            stacked = self.accelerator.reduce(stacked, reduction="mean")
            logs.update({name: float(v) for name, v in zip(names, stacked, strict=True)})
            elapsed = time.perf_counter() - self._window_start
            tokens = self.accelerator.reduce(torch.tensor(float(self._tokens), device=self.args.device), reduction="sum")
            logs["tokens_per_second"] = round(float(tokens) / max(elapsed, 1e-9), 1)
            momentum = getattr(self.model, "current_teacher_momentum", None)
            if momentum is not None:
                logs["teacher_momentum"] = round(momentum, 6)
            self._sums.clear()
            self._micro_batches, self._tokens = 0, 0
            self._window_start = time.perf_counter()
        super().log(logs, start_time)

    def retrieval_examples(self, dataset) -> list[dict]:
        """The decodable examples of `dataset`, kept for the evaluation set (built-in clips are
        generated on access)."""
        if dataset is self.eval_dataset and self._retrieval_examples is not None:
            return self._retrieval_examples
        examples = [e for e in (dataset[i] for i in range(len(dataset))) if e["audio"] is not None]
        if dataset is self.eval_dataset:
            self._retrieval_examples = examples
        return examples

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """The Trainer's evaluation (pretraining loss on the evaluation set) plus retrieval metrics."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        with torch.random.fork_rng(devices=[]):  # evaluation must not move the training RNG
            metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        if dataset is not None and self.processing_class is not None and self.is_world_process_zero():
            model = self.accelerator.unwrap_model(self.model)
            embedded = embed_examples(model, self.processing_class, self.retrieval_examples(dataset))
            retrieval = retrieval_metrics(embedded.audio, embedded.text, embedded.caption_to_audio)
            retrieval = {f"{metric_key_prefix}_{k.replace('/', '_')}": v for k, v in retrieval.items()}
            self.log(retrieval)
            metrics.update(retrieval)
        return metrics
