"""The `slap-train` command: pretrain SLAP from a YAML/JSON config with command-line overrides.

    slap-train configs/tiny.yaml --max_steps 500 --output_dir runs/mine
    accelerate launch -m slap_audio.training.cli configs/base.yaml      # several processes
    torchrun --nproc_per_node 2 -m slap_audio.training.cli configs/micro.yaml --use_cpu true
    slap-train configs/tiny.yaml --streaming true --train_source shards/ --max_steps 1000 \
        --dataloader_num_workers 4                                        # tar / parquet shards

Every key of the config file is an argument of `ModelArguments`, `DataArguments` or
`transformers.TrainingArguments`; flags after the file override it. The run ends with the release
models in `output_dir`: `slap/` (a `SlapModel` + processor with remote code, what `eval` and the
zero-shot pipeline load) and `captioner/` (a `SlapForConditionalGeneration`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import yaml
from transformers import HfArgumentParser, TrainingArguments, enable_full_determinism, set_seed

from slap_audio.data.sources import load_audio_text_dataset
from slap_audio.modeling_slap import (
    SlapConfig,
    SlapFeatureExtractor,
    SlapForConditionalGeneration,
    SlapForPreTraining,
    SlapModel,
    SlapProcessor,
    register_auto_classes,
)
from slap_audio.training.batching import PatchGeometry, TokenBudgetBatchSampler
from slap_audio.training.collator import SlapCollator
from slap_audio.training.streaming import ShardStream, StreamingSlapTrainer, shard_captions
from slap_audio.training.text import resolve_text_weights, text_side

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    """What model to train."""

    size: str = field(default="tiny", metadata={"help": "named size: micro, tiny or base"})
    init_from: str | None = field(default=None, metadata={"help": "a SLAP checkpoint to start from (SlapModel or SlapForPreTraining)"})
    text_weights: str | None = field(default="minilm", metadata={"help": "pretrained text encoder: 'minilm', a path or Hub id, or 'none'"})
    text_vocab_size: int = field(default=1024, metadata={"help": "WordPiece vocabulary built from the captions when text_weights is none"})
    text_learning_rate_scale: float | None = field(default=None, metadata={"help": "learning-rate multiplier of the text encoder (0 freezes it); default 0.1 with pretrained text weights, else 1"})
    config_overrides: str | None = field(default=None, metadata={"help": "JSON object of SlapConfig fields, e.g. '{\"captioning_weight\": 0}'"})
    hop_length: int = field(default=160, metadata={"help": "mel frame hop in samples at 16 kHz (160 = 10 ms, 25 tokens/s; 320 halves the audio tokens; a new model only: --init_from and resumed runs keep their processor's)"})


@dataclass
class DataArguments:
    """What to train and evaluate on."""

    train_source: str = field(default="builtin:train", metadata={"help": "builtin:<split>, an audio folder, a JSONL manifest, shards or a Hub id"})
    train_size: int | None = field(default=2000, metadata={"help": "clips of built-in data"})
    eval_source: str | None = field(default="builtin:validation", metadata={"help": "retrieval evaluation set (none to skip)"})
    eval_size: int | None = field(default=200, metadata={"help": "clips of built-in evaluation data"})
    max_tokens: int = field(default=6000, metadata={"help": "audio tokens per batch (25 per second with the default features)"})
    max_clips: int | None = field(default=64, metadata={"help": "clips per batch at most"})
    crop_seconds: float = field(default=30.0, metadata={"help": "training crop of long clips (seeded)"})
    train_max_duration: float = field(default=30.0, metadata={"help": "longest built-in training clip generated, in seconds (whole clips whose captions describe all of them, unlike crops)"})
    streaming: bool = field(default=False, metadata={"help": "train_source is tar or parquet shards (a folder or a glob; slap-data shards writes them), read and decoded in DataLoader workers; needs --max_steps"})
    shuffle_buffer: int = field(default=256, metadata={"help": "streaming: samples shuffled at once within a worker's shards"})


def read_config_file(path: str) -> dict:
    """The keys and values of a YAML or JSON training config."""
    with open(path) as handle:
        values = yaml.safe_load(handle) if path.endswith((".yaml", ".yml")) else json.load(handle)
    return values or {}


def config_to_argv(path: str) -> list[str]:
    """A YAML/JSON config file as command-line flags (so later flags override it)."""
    argv = []
    for key, value in read_config_file(path).items():
        if value is None:
            continue
        if isinstance(value, list):
            argv += [f"--{key}", *map(str, value)]
        elif isinstance(value, dict):
            argv += [f"--{key}", json.dumps(value)]
        else:
            argv += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return argv


def parse_arguments(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith((".yaml", ".yml", ".json")):
        argv = config_to_argv(argv[0]) + argv[1:]
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    training_args.remove_unused_columns = False  # the collator needs the raw examples
    if data_args.eval_source in (None, "", "none") and training_args.eval_strategy != "no":
        raise ValueError(
            f"eval_strategy={training_args.eval_strategy.value!r} needs an evaluation set, but "
            "eval_source is none: pass --eval_strategy no (or an --eval_source)"
        )
    if data_args.streaming and training_args.max_steps <= 0:
        raise ValueError("--streaming reads an endless stream of shards: pass --max_steps")
    return model_args, data_args, training_args


def checkpoint_config(checkpoint: str) -> SlapConfig:
    """The config a run resumes with. A BYOL run saved before `byol_intra_weight` existed (December
    2026) keeps its cross-modal-only loss (0), so the resumed run optimises what it started with."""
    with open(os.path.join(checkpoint, "config.json")) as handle:
        saved = json.load(handle)
    if saved.get("byol_weight") and "byol_intra_weight" not in saved:
        logger.warning("%s predates byol_intra_weight: resuming with its cross-modal-only BYOL loss (0)", checkpoint)
        return SlapConfig.from_pretrained(checkpoint, byol_intra_weight=0.0)
    return SlapConfig.from_pretrained(checkpoint)


def checkpoint_batches(checkpoint: str, training_args: TrainingArguments) -> int:
    """Batches each rank consumed up to `checkpoint` (a streamed run resumes from there)."""
    with open(os.path.join(checkpoint, "trainer_state.json")) as handle:
        global_step = json.load(handle)["global_step"]
    return global_step * training_args.gradient_accumulation_steps


def _source_options(source: str, size: int | None, seed: int, max_duration: float | None = None) -> dict:
    if not source.startswith("builtin:"):
        return {}
    return {"num_clips": size, "seed": seed, **({} if max_duration is None else {"max_duration": max_duration})}


def build_model(model_args: ModelArguments, captions: Iterable[str]) -> tuple[SlapForPreTraining, SlapProcessor]:
    """A new (or continued) pretraining model and its processor."""
    overrides = json.loads(model_args.config_overrides) if model_args.config_overrides else {}
    if model_args.init_from:
        model, info = SlapForPreTraining.from_pretrained(model_args.init_from, output_loading_info=True, **overrides)
        if any(key.startswith("teacher_") for key in info["missing_keys"]):  # e.g. from a SlapModel
            model.init_teacher_from_student()
        return model, SlapProcessor.from_pretrained(model_args.init_from)
    tokenizer, text_config, text_path = text_side(model_args.text_weights, captions, model_args.text_vocab_size)
    config = SlapConfig.from_size(model_args.size, text_config=text_config, **overrides)
    if text_path is None:
        config.text_config.vocab_size = len(tokenizer)
    config.decoder_config.vocab_size = config.text_config.vocab_size
    config.decoder_config.bos_token_id = tokenizer.cls_token_id
    config.decoder_config.eos_token_id = tokenizer.sep_token_id
    config.decoder_config.pad_token_id = tokenizer.pad_token_id
    positions = getattr(config.text_config, "max_position_embeddings", None)
    if positions:  # truncation=True then cuts captions to what the text tower can take
        tokenizer.model_max_length = min(tokenizer.model_max_length, positions)
    model = SlapForPreTraining(config)
    if text_path is not None:
        model.text_model.load_pretrained_encoder(text_path)
        model.init_teacher_from_student()
    audio = config.audio_config  # the features the audio encoder's patches are cut from
    features = SlapFeatureExtractor(feature_size=audio.num_mel_bins, patch_frames=audio.patch_frames,
                                    hop_length=model_args.hop_length)
    return model, SlapProcessor(features, tokenizer)


def _text_learning_rate_scale(model_args: ModelArguments) -> float:
    if model_args.text_learning_rate_scale is not None:
        return model_args.text_learning_rate_scale
    pretrained = model_args.init_from or resolve_text_weights(model_args.text_weights)
    return 0.1 if pretrained else 1.0


def seed_run(training_args: TrainingArguments) -> None:
    """Seed Python, NumPy and torch from `--seed` (deterministic kernels with `--full_determinism`).

    Called before anything random — the text vocabulary, the model's initial weights: the Trainer
    seeds only when it is created, after both exist, so the same config and seed would otherwise
    give the same data order but different weights, and different losses from the first step.
    """
    if training_args.full_determinism:
        enable_full_determinism(training_args.seed)
    else:
        set_seed(training_args.seed)


def export_release_models(model: SlapForPreTraining, processor: SlapProcessor, output_dir: str) -> dict[str, str]:
    """Save the release models (with remote code) next to the training checkpoints."""
    register_auto_classes()
    paths = {}
    for name, model_class in (("slap", SlapModel), ("captioner", SlapForConditionalGeneration)):
        if model_class is SlapForConditionalGeneration and not model.config.captioning_weight:
            continue
        path = os.path.join(output_dir, name)
        model.to_model(model_class).save_pretrained(path)
        processor.save_pretrained(path)
        paths[name] = path
    return paths


def main(argv: list[str] | None = None) -> dict[str, str]:
    model_args, data_args, training_args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO if training_args.process_index == 0 else logging.WARNING)
    # Checkpoints then carry the model code and `auto_map` (each loads with remote code anywhere),
    # and a process resuming from one — a new one after a crash — resolves model_type "slap" locally.
    register_auto_classes()
    seed_run(training_args)
    seed = training_args.data_seed if training_args.data_seed is not None else training_args.seed
    if data_args.streaming:
        train = None
        captions = shard_captions(data_args.train_source)
    else:
        train = load_audio_text_dataset(
            data_args.train_source, split="train", **_source_options(
                data_args.train_source, data_args.train_size, seed, data_args.train_max_duration
            )
        )
        if training_args.process_index == 0 and train.skip_stats.total:
            logger.warning("training data: %s", train.skip_stats.summary())
        # read only when a tokenizer has to be built (reading built-in clips generates them)
        captions = (c for i in range(min(len(train), 500)) for c in (train[i]["captions"] or []))
    if training_args.resume_from_checkpoint:  # the checkpoint's config and vocabulary; the Trainer loads the rest
        checkpoint = training_args.resume_from_checkpoint
        model = SlapForPreTraining(checkpoint_config(checkpoint))
        processor = SlapProcessor.from_pretrained(checkpoint)
    else:
        model, processor = build_model(model_args, captions)
    evaluation = None
    if data_args.eval_source and data_args.eval_source != "none":
        evaluation = load_audio_text_dataset(
            data_args.eval_source, split="validation",
            **_source_options(data_args.eval_source, data_args.eval_size, seed),
        )
    geometry = PatchGeometry.of(processor.feature_extractor, model.config.audio_config)
    collator = SlapCollator(processor, max_tokens=data_args.max_tokens, crop_seconds=data_args.crop_seconds, seed=seed,
                            geometry=geometry)
    if data_args.streaming:
        sampler = None
        start_batch = 0
        if training_args.resume_from_checkpoint:  # the stream skips to its position itself, from headers
            start_batch = checkpoint_batches(training_args.resume_from_checkpoint, training_args)
            training_args.ignore_data_skip = True
        train = ShardStream(
            data_args.train_source, collator, data_args.max_tokens, max_clips=data_args.max_clips, seed=seed,
            rank=training_args.process_index, world_size=training_args.world_size, start_batch=start_batch,
            shuffle_buffer=data_args.shuffle_buffer,
        )
    else:
        train.set_crops(collator)  # decode only each clip's crop
        sampler = TokenBudgetBatchSampler.from_durations(
            train.durations, data_args.max_tokens, crop_seconds=data_args.crop_seconds, max_clips=data_args.max_clips,
            geometry=geometry, seed=seed, num_replicas=training_args.world_size, rank=training_args.process_index,
        )
    trainer = StreamingSlapTrainer(
        model=model, args=training_args, train_dataset=train, eval_dataset=evaluation, data_collator=collator,
        train_batch_sampler=sampler, processing_class=processor,
        text_learning_rate_scale=_text_learning_rate_scale(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_state()  # output_dir/trainer_state.json: the log history (curves)
    paths = {}
    if trainer.is_world_process_zero():
        paths = export_release_models(trainer.accelerator.unwrap_model(trainer.model), processor, training_args.output_dir)
        logger.info("release models: %s", paths)
    end_distributed()
    return paths


def end_distributed() -> None:
    """Wait for every rank (rank 0 writes the release models), then close the process group: a rank
    leaving with gloo's threads alive aborted at exit ("terminate called without an active
    exception"), and torchrun reported the whole run as failed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def console_main() -> int:
    """Entry point of `slap-train` (exit status 0; `main` returns the release model paths)."""
    main()
    return 0


if __name__ == "__main__":
    main()
