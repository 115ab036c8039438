"""`slap-train --streaming`: token-budget batches read from tar / parquet shards in DataLoader workers.

`ShardStream` is an `IterableDataset` of batches (lists of examples) for
`DataLoader(stream, batch_size=None, collate_fn=collator, num_workers=W)`:

- **rank- and worker-aware**: each pass, the shards are put in an order drawn from `(seed, pass)`
  and dealt out to the `world_size × W` readers (rank `r`, worker `w` takes shards
  `r·W + w, r·W + w + world_size·W, ...`): every shard is read by exactly one worker of one rank per
  pass. So every reader has at least one shard, there must be at least `world_size × W` shards.
- **token budget from the headers**: a sample's tokens come from its audio header (`soundfile.info`,
  after the crop), so clips are packed before anything is decoded; a seeded shuffle buffer mixes
  samples across the reader's shards.
- **decoded in the workers, crops only**: a batch's clips are decoded when it is emitted, each only
  over its training crop (`SlapCollator.window_for(clip_id, pass)`: new crops each pass).
- **endless**: each reader goes on to its next pass by itself, so no rank runs out before the others
  (train with `max_steps`); ranks see similar, not equal, numbers of clips per pass.
- **resumable**: everything above is a function of `(seed, rank, worker)`, and the DataLoader takes
  batches from its workers in turn, so a position is one number: the batches this rank consumed.
  `ShardStream(..., start_batch=n)` has each worker skip its share of the first `n` batches by
  reading headers only (no decoding, no features), the workers' roles rotated so that the turn
  goes on where it stopped; `slap-train` passes `global_step ×
  gradient_accumulation_steps` of the checkpoint it resumes from.

Broken samples (no metadata, no audio, undecodable header, NaN samples...) travel as examples with
a `skip_reason` next to the good ones, and the collator drops and counts them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from slap_audio.data.examples import (
    NO_TEXT,
    ColumnMapping,
    ExampleDecoder,
    SkippedItem,
    probe_duration,
)
from slap_audio.data.shards import iter_shard, list_shards, shard_row_fields
from slap_audio.training.batching import pack_with_broken
from slap_audio.training.collator import SlapCollator
from slap_audio.training.trainer import SlapTrainer

DEFAULT_SHUFFLE_BUFFER = 256


def _shuffled(items: Iterator[Any], size: int, generator: np.random.Generator) -> Iterator[Any]:
    """A seeded shuffle buffer of `size` items (`size <= 1`: the stream's order)."""
    if size <= 1:
        yield from items
        return
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        slot = int(generator.integers(size))
        yield buffer[slot]
        buffer[slot] = item
    generator.shuffle(buffer)
    yield from buffer


class ShardStream(torch.utils.data.IterableDataset):
    """Endless token-budget batches of examples from tar / parquet shards (see the module docstring).

    Args:
        shards: a folder of `*.tar` or `*.parquet` shards, a glob or a list of files.
        collator: the run's `SlapCollator`; its crop (`crop_seconds`, `max_tokens`) and seed decide
            every clip's window.
        max_tokens, max_clips: the batch budget.
        seed: order of the shards per pass and of the shuffle buffer.
        rank, world_size: this process among the data-parallel ranks.
        start_batch: batches this rank already consumed (resuming).
        shuffle_buffer: samples mixed at once (1: shard order).
        open_batches: batches filled at once by first fit.
        mapping: column names of the shards' metadata.
    """

    def __init__(self, shards: str | Sequence[str], collator: SlapCollator, max_tokens: int,
                 max_clips: int | None = None, seed: int = 0, rank: int = 0, world_size: int = 1,
                 start_batch: int = 0, shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER, open_batches: int = 8,
                 mapping: ColumnMapping | None = None):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.shards = list_shards(shards)
        self.collator, self.max_tokens, self.max_clips = collator, int(max_tokens), max_clips
        self.seed, self.rank, self.world_size = int(seed), rank, world_size
        self.start_batch, self.shuffle_buffer, self.open_batches = int(start_batch), shuffle_buffer, open_batches
        self.mapping = mapping or ColumnMapping()

    def reader_shards(self, epoch: int, worker: int, num_workers: int) -> list[str]:
        """The shards one reader (this rank's `worker` of `num_workers`) reads in pass `epoch`."""
        readers = self.world_size * num_workers
        if len(self.shards) < readers:
            raise ValueError(
                f"{len(self.shards)} shards for {self.world_size} rank(s) × {num_workers} DataLoader worker(s): "
                f"every reader needs a shard; write at least {readers} shards (slap-data shards "
                "--clips_per_shard) or use fewer workers (--dataloader_num_workers)"
            )
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.shards))
        return [self.shards[i] for i in order[self.rank * num_workers + worker :: readers]]

    def _samples(self, epoch: int, worker: int, num_workers: int) -> Iterator[tuple[dict, int]]:
        """`(fields, tokens)` of the reader's samples in pass `epoch`; 0 tokens for a broken one
        (its `skip_reason` set)."""
        crop_seconds = self.collator.crop_seconds if self.collator.train else None
        index = itertools.count()
        rows = (shard_row_fields(row, next(index), self.mapping)
                for shard in self.reader_shards(epoch, worker, num_workers) for row in iter_shard(shard))
        generator = np.random.default_rng([self.seed, epoch, self.rank, worker])
        for fields_ in _shuffled(rows, self.shuffle_buffer, generator):
            if fields_.get("skip_reason") is None and not fields_["captions"]:
                fields_["skip_reason"] = NO_TEXT
            if fields_.get("skip_reason") is not None:
                yield fields_, 0
                continue
            try:
                yield fields_, self.collator.geometry.tokens_for_duration(probe_duration(fields_["audio"]), crop_seconds)
            except SkippedItem as err:
                yield {**fields_, "skip_reason": err.reason}, 0

    def _example(self, fields_: dict, epoch: int) -> dict[str, Any]:
        if fields_.get("skip_reason") is not None:
            return {"audio": None, "captions": [], "clip_id": str(fields_["clip_id"]),
                    "skip_reason": fields_["skip_reason"]}
        return ExampleDecoder()(fields_, self.collator.window_for(fields_["clip_id"], epoch))

    def _packed(self, epoch: int, worker: int, num_workers: int) -> Iterator[list[dict]]:
        return pack_with_broken(self._samples(epoch, worker, num_workers), self.max_tokens, self.max_clips,
                                self.open_batches, self.collator.geometry.min_tokens)

    def epoch_batches(self, epoch: int, worker: int = 0, num_workers: int = 1) -> Iterator[list[dict]]:
        """One reader's batches of one pass (`__iter__` chains the passes)."""
        for batch in self._packed(epoch, worker, num_workers):
            yield [self._example(fields_, epoch) for fields_ in batch]

    def __iter__(self) -> Iterator[list[dict]]:
        info = torch.utils.data.get_worker_info()
        num_workers = info.num_workers if info is not None else 1
        # The DataLoader takes batches from its workers 0, 1, ... in turn, starting with worker 0: after
        # `start_batch` batches the next one is reader `start_batch % W`'s, so worker w plays reader
        # (w + start_batch) % W and skips that reader's share of the consumed batches.
        worker = ((info.id if info is not None else 0) + self.start_batch) % num_workers
        skip = self.start_batch // num_workers + int(worker < self.start_batch % num_workers)
        for epoch in itertools.count():
            emitted = 0
            for batch in self._packed(epoch, worker, num_workers):
                emitted += 1
                if skip:  # headers were read, nothing is decoded
                    skip -= 1
                    continue
                yield [self._example(fields_, epoch) for fields_ in batch]
            if not emitted:
                raise RuntimeError(f"worker {worker} of rank {self.rank} found no samples in its shards "
                                   f"{self.reader_shards(epoch, worker, num_workers)}")


def shard_captions(shards: str | Sequence[str], limit: int = 500) -> Iterator[str]:
    """Captions of the first `limit` samples of the shards (to build a text vocabulary)."""
    rows = (shard_row_fields(row, i) for i, row in enumerate(
        row for shard in list_shards(shards) for row in iter_shard(shard)))
    for fields_ in itertools.islice(rows, limit):
        yield from fields_.get("captions") or []


class StreamingSlapTrainer(SlapTrainer):
    """`SlapTrainer` over a `ShardStream`: the stream is already rank-aware and batched, so the
    DataLoader is built as is (accelerate would otherwise read it on rank 0 and split the packed
    batches between ranks). Its own generator seeds the workers: starting the loader draws nothing
    from the global RNG, which a resumed run restores from the checkpoint just before."""

    def get_train_dataloader(self) -> DataLoader:
        if not isinstance(self.train_dataset, ShardStream):
            return super().get_train_dataloader()
        generator = torch.Generator().manual_seed(self.train_dataset.seed)
        return DataLoader(self.train_dataset, batch_size=None, collate_fn=self.data_collator, generator=generator,
                          num_workers=self.args.dataloader_num_workers, pin_memory=self.args.dataloader_pin_memory,
                          prefetch_factor=self.args.dataloader_prefetch_factor if self.args.dataloader_num_workers else None)
