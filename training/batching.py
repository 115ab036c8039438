"""Token-budget batching: each batch holds as many clips as fit `max_tokens` audio patches.

SLAP packs clips of any duration into one sequence, so the cost of a step follows the number of
audio tokens, not the number of clips. `TokenBudgetBatchSampler` (map-style data) and
`TokenBudgetStream` (streamed data) group clips so that every batch carries close to `max_tokens`
tokens (and at most `max_clips` clips): steady compute per step whatever the duration mix.

Tokens of a clip, as `SlapFeatureExtractor` + the audio encoder count them (`PatchGeometry`; with the
default features 25 tokens per second): frames = ceil(samples / hop) at the extractor's rate, rounded
up to a multiple of the patch's frames; tokens = frequency patches (mel bins / patch bins) per patch
column. The only waste of packing is that rounding (on average half a patch column, 80 ms by
default, per clip); `batching_stats` reports it next to the fill ratio and to what pad-to-longest
batches of the same clips would waste.

    geometry = PatchGeometry.of(processor.feature_extractor, model.config.audio_config)
    sampler = TokenBudgetBatchSampler.from_durations(dataset.durations, max_tokens=16384,
                                                     crop_seconds=30.0, seed=0, geometry=geometry)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collator)
    sampler.set_epoch(epoch)  # new order each epoch, reproducible from (seed, epoch)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from slap_audio.data.examples import num_samples
from slap_audio.modeling_slap import SlapAudioConfig, SlapFeatureExtractor


@dataclass(frozen=True)
class PatchGeometry:
    """How a clip's duration becomes audio tokens: the feature extractor's sampling rate, hop and
    frames per patch, and the audio encoder's frequency patches per time column. The defaults are
    `SlapFeatureExtractor()` with 16-bin patches over 64 mel bins: 25 tokens per second."""

    sampling_rate: int = 16_000
    hop_length: int = 160
    patch_frames: int = 16
    frequency_patches: int = 4

    @classmethod
    def of(cls, feature_extractor: SlapFeatureExtractor, audio_config: SlapAudioConfig | None = None) -> PatchGeometry:
        """The geometry of a feature extractor and the audio config it feeds (without a config: the
        config's default patches over the extractor's bins). A config whose mel bins or patch frames
        differ from the extractor's is refused: its model could not read these features."""
        features = feature_extractor
        if audio_config is None:
            audio_config = SlapAudioConfig(num_mel_bins=features.feature_size, patch_frames=features.patch_frames)
        if (audio_config.num_mel_bins, audio_config.patch_frames) != (features.feature_size, features.patch_frames):
            raise ValueError(
                f"the feature extractor makes {features.feature_size} mel bins in {features.patch_frames}-frame "
                f"patches, the audio config expects num_mel_bins={audio_config.num_mel_bins}, "
                f"patch_frames={audio_config.patch_frames}"
            )
        return cls(int(features.sampling_rate), int(features.hop_length), int(features.patch_frames),
                   audio_config.freq_patches)

    @property
    def tokens_per_second(self) -> float:
        return self.sampling_rate / self.hop_length / self.patch_frames * self.frequency_patches

    @property
    def min_tokens(self) -> int:
        """Tokens of the shortest clip: one patch column."""
        return self.frequency_patches

    def tokens_for_samples(self, num_samples: int) -> int:
        """Audio tokens of a clip of `num_samples` samples at `sampling_rate`
        (`SlapFeatureExtractor.num_frames` / patch frames × frequency patches)."""
        frames = max(1, -(-int(num_samples) // self.hop_length))
        return self.frequency_patches * -(-frames // self.patch_frames)

    def tokens_for_duration(self, seconds: float, crop_seconds: float | None = None) -> int:
        """Audio tokens of a clip of `seconds` (after cropping to `crop_seconds`, if given)."""
        if crop_seconds is not None:
            seconds = min(seconds, crop_seconds)
        # the epsilon absorbs float error in durations computed as samples / rate
        return self.tokens_for_samples(math.ceil(seconds * self.sampling_rate - 1e-6))

    def seconds_for_tokens(self, tokens: int) -> float:
        """Longest duration whose clip has at most `tokens` tokens (whole patch columns)."""
        columns = int(tokens) // self.frequency_patches
        if columns < 1:
            raise ValueError(f"{tokens} tokens hold no patch column (at least {self.frequency_patches} needed)")
        return columns * self.patch_frames * self.hop_length / self.sampling_rate


DEFAULT_GEOMETRY = PatchGeometry()
T = TypeVar("T")


def pack_by_token_budget(items: Iterable[tuple[T, int]], max_tokens: int, max_clips: int | None = None,
                         open_batches: int = 8, min_tokens: int = DEFAULT_GEOMETRY.min_tokens) -> Iterator[list[T]]:
    """Group `(item, tokens)` pairs into batches of at most `max_tokens` tokens and `max_clips` items.

    First fit over up to `open_batches` batches filled at once (1 = plain sequential filling): an
    item goes into the first open batch it fits in; when none has room, the fullest open batch is
    emitted. A batch is emitted as soon as no clip of `min_tokens` fits any more. An item of
    `max_tokens` or more forms a batch of its own. Deterministic: same input order, same batches.
    """
    if max_tokens < 1 or open_batches < 1 or (max_clips is not None and max_clips < 1):
        raise ValueError("max_tokens, max_clips and open_batches must be positive")
    batches: list[tuple[int, list[T]]] = []  # (tokens, items) of the open batches
    for item, tokens in items:
        if tokens >= max_tokens:
            yield [item]
            continue
        slot = next((i for i, (used, _) in enumerate(batches) if used + tokens <= max_tokens), None)
        if slot is None:
            if len(batches) == open_batches:
                fullest = max(range(len(batches)), key=lambda i: batches[i][0])
                yield batches.pop(fullest)[1]
            batches.append((0, []))
            slot = len(batches) - 1
        used, members = batches[slot]
        members.append(item)
        batches[slot] = (used + tokens, members)
        if max_tokens - (used + tokens) < min_tokens or (max_clips is not None and len(members) >= max_clips):
            yield batches.pop(slot)[1]
    for _, members in batches:
        yield members


@dataclass
class BatchingStats:
    """How well a set of batches uses its compute.

    Attributes:
        num_batches, num_clips: counts.
        tokens: tokens computed (clips' frames rounded up to whole patches).
        audio_tokens: tokens of the audio itself (duration × tokens per second), if durations were given.
        padding_waste: 1 - audio_tokens / tokens: the packing's rounding waste.
        fill_ratio: tokens / (num_batches × max_tokens), if a budget was given.
        max_batch_tokens: the largest batch.
        pad_to_longest_tokens: tokens if every batch were padded to its longest clip.
        pad_to_longest_waste: 1 - audio_tokens / pad_to_longest_tokens (tokens when no durations).
    """

    num_batches: int
    num_clips: int
    tokens: int
    audio_tokens: float | None
    padding_waste: float | None
    fill_ratio: float | None
    max_batch_tokens: int
    pad_to_longest_tokens: int
    pad_to_longest_waste: float


def batching_stats(batches: Sequence[Sequence[int]], lengths_in_tokens: Sequence[int], max_tokens: int | None = None,
                   durations: Sequence[float] | None = None, crop_seconds: float | None = None,
                   geometry: PatchGeometry = DEFAULT_GEOMETRY) -> BatchingStats:
    """Statistics of `batches` (lists of clip indices): packed tokens, rounding waste, fill ratio,
    and the pad-to-longest cost of the same batches. Works for any batching, e.g.
    `fixed_size_batches` to compare with a plain batch-size loader."""
    batch_tokens = [[int(lengths_in_tokens[i]) for i in batch] for batch in batches]
    tokens = sum(map(sum, batch_tokens))
    padded = sum(len(b) * max(b) for b in batch_tokens if b)
    audio = None
    if durations is not None:
        audio = sum(min(durations[i], crop_seconds or math.inf) * geometry.tokens_per_second
                    for batch in batches for i in batch)
    real = audio if audio is not None else tokens
    return BatchingStats(
        num_batches=len(batches), num_clips=sum(map(len, batches)), tokens=tokens, audio_tokens=audio,
        padding_waste=None if audio is None or not tokens else 1.0 - audio / tokens,
        fill_ratio=tokens / (len(batches) * max_tokens) if max_tokens and batches else None,
        max_batch_tokens=max(map(sum, batch_tokens), default=0),
        pad_to_longest_tokens=padded, pad_to_longest_waste=1.0 - real / padded if padded else 0.0,
    )


def fixed_size_batches(num_clips: int, batch_size: int, shuffle: bool = True, seed: int = 0) -> list[list[int]]:
    """Batches of `batch_size` clips in a seeded random order: the usual loader, for comparison."""
    order = np.random.default_rng(seed).permutation(num_clips) if shuffle else np.arange(num_clips)
    return [order[i : i + batch_size].tolist() for i in range(0, num_clips, batch_size)]


class TokenBudgetBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of clip indices filling a token budget; a `batch_sampler` for `DataLoader`.

    Each epoch: the clips in a random order from `(seed, epoch)`, packed by
    `pack_by_token_budget`, then the batches in a random order. The whole list of batches is the
    same on every rank; rank `r` of `num_replicas` takes batches `r, r + R, r + 2R, ...`, so ranks
    get disjoint clips and similar token counts. When the number of batches is not a multiple of
    `num_replicas`, `drop_last=False` pads by repeating the first batches (those clips are seen
    twice that epoch, as with `DistributedSampler`) and `drop_last=True` drops the last batches
    (their clips are not seen that epoch). Every rank gets `len(self)` batches.

    The number of batches depends on the epoch's order: `len(self)` is exact for the epoch set by
    `set_epoch` (it varies by a few batches between epochs).

    Args:
        lengths_in_tokens: tokens of each clip, after cropping (`PatchGeometry.tokens_for_duration`).
        max_tokens: token budget of a batch; a longer clip forms a batch of its own.
        max_clips: at most this many clips per batch (`None`: no limit).
        shuffle: random order per epoch; `False` keeps the dataset order (evaluation).
        seed: seed of the order; with the epoch it fixes every batch.
        drop_last: across replicas, drop the remainder instead of padding.
        num_replicas, rank: data-parallel world size and this process's rank.
        open_batches: batches filled at once (first fit); more gives fuller batches.
        durations: seconds per clip, only for `stats()` (padding waste).
        crop_seconds: crop length the lengths assume, only for `stats()`.
        geometry: how durations become tokens (`PatchGeometry.of(feature_extractor, audio_config)`).
    """

    def __init__(self, lengths_in_tokens: Sequence[int], max_tokens: int, max_clips: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False, num_replicas: int = 1, rank: int = 0,
                 *, open_batches: int = 8, durations: Sequence[float] | None = None,
                 crop_seconds: float | None = None, geometry: PatchGeometry = DEFAULT_GEOMETRY):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        if max_tokens < geometry.min_tokens:
            raise ValueError(f"max_tokens must be at least {geometry.min_tokens}, got {max_tokens}")
        self.lengths = [int(length) for length in lengths_in_tokens]
        self.max_tokens, self.max_clips, self.open_batches = int(max_tokens), max_clips, open_batches
        self.shuffle, self.seed, self.drop_last = shuffle, int(seed), drop_last
        self.num_replicas, self.rank = num_replicas, rank
        self.durations, self.crop_seconds, self.geometry = durations, crop_seconds, geometry
        self.epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    @classmethod
    def from_durations(cls, durations: Sequence[float], max_tokens: int, crop_seconds: float | None = None,
                       geometry: PatchGeometry = DEFAULT_GEOMETRY, **kwargs: Any) -> TokenBudgetBatchSampler:
        """Sampler over clips of these durations (seconds), cropped to `crop_seconds` as the
        collator will crop them."""
        lengths = [geometry.tokens_for_duration(d, crop_seconds) for d in durations]
        return cls(lengths, max_tokens, durations=list(durations), crop_seconds=crop_seconds, geometry=geometry,
                   **kwargs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def all_batches(self, epoch: int | None = None) -> list[list[int]]:
        """The epoch's batches for all replicas together, before they are dealt out."""
        epoch = self.epoch if epoch is None else int(epoch)
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        generator = np.random.default_rng([self.seed, epoch])
        order = generator.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        min_tokens = min(self.lengths, default=self.geometry.min_tokens)
        pairs = ((int(i), self.lengths[i]) for i in order)
        batches = list(pack_by_token_budget(pairs, self.max_tokens, self.max_clips, self.open_batches, min_tokens))
        if self.shuffle:
            batches = [batches[i] for i in generator.permutation(len(batches))]
        self._cache = (epoch, batches)
        return batches

    def _rank_batches(self) -> list[list[int]]:
        batches = self.all_batches()
        replicas = self.num_replicas
        if replicas > 1 and len(batches) % replicas:
            if self.drop_last:
                batches = batches[: len(batches) - len(batches) % replicas]
            elif batches:
                padding = replicas - len(batches) % replicas
                batches = batches + [batches[i % len(batches)] for i in range(padding)]
        return batches[self.rank :: replicas]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._rank_batches())

    def __len__(self) -> int:
        return len(self._rank_batches())

    def stats(self) -> BatchingStats:
        """`batching_stats` of this epoch's batches over all replicas."""
        return batching_stats(self.all_batches(), self.lengths, self.max_tokens, self.durations, self.crop_seconds,
                              self.geometry)


def example_tokens(example: dict | None, crop_seconds: float | None = None,
                   geometry: PatchGeometry = DEFAULT_GEOMETRY) -> int:
    """Tokens of a decoded example (0 for a broken one, which the collator drops)."""
    if example is None or example.get("audio") is None:
        return 0
    audio = example["audio"]
    seconds = num_samples(np.asarray(audio["array"])) / int(audio["sampling_rate"])
    return geometry.tokens_for_duration(seconds, crop_seconds)


def pack_with_broken(items: Iterable[tuple[T, int]], max_tokens: int, max_clips: int | None = None,
                     open_batches: int = 8, min_tokens: int = DEFAULT_GEOMETRY.min_tokens) -> Iterator[list[T]]:
    """`pack_by_token_budget` for a stream in which some items are broken (0 tokens): those ride
    along with the next batch (the collator drops and counts them), so that no batch is only
    broken, and the stream's last broken items join its last batch."""
    broken: list[T] = []

    def usable() -> Iterator[tuple[T, int]]:
        for item, tokens in items:
            if tokens:
                yield item, tokens
            else:
                broken.append(item)

    previous: list[T] | None = None  # held back one step, to take the stream's last broken items
    for batch in pack_by_token_budget(usable(), max_tokens, max_clips, open_batches, min_tokens):
        if previous is not None:
            yield previous
        previous, broken = batch + broken, []
    if previous is not None or broken:
        yield (previous or []) + broken


class TokenBudgetStream(torch.utils.data.IterableDataset):
    """A stream of examples → a stream of token-budget batches (lists of examples).

    For streamed data, where no sampler can see all durations: use it as
    `DataLoader(TokenBudgetStream(stream, max_tokens, crop_seconds=30.0), batch_size=None,
    collate_fn=collator)`. A `datasets.IterableDataset` inside splits itself across DataLoader
    workers and data-parallel ranks (`datasets.distributed.split_dataset_by_node`); ranks may then
    get different numbers of batches, so bound training by `max_steps`. (`slap-train --streaming`
    reads tar / parquet shards with `training/streaming.py`'s `ShardStream`, which packs the same
    way from the files' headers, before decoding.)
    """

    def __init__(self, examples: Iterable[dict], max_tokens: int, max_clips: int | None = None,
                 crop_seconds: float | None = None, open_batches: int = 8, geometry: PatchGeometry = DEFAULT_GEOMETRY):
        self.examples = examples
        self.max_tokens, self.max_clips, self.open_batches = max_tokens, max_clips, open_batches
        self.crop_seconds, self.geometry = crop_seconds, geometry

    def set_epoch(self, epoch: int) -> None:
        """Passed on to the wrapped stream (a shuffled `datasets.IterableDataset` reshuffles)."""
        if hasattr(self.examples, "set_epoch"):
            self.examples.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[dict]]:
        pairs = ((example, example_tokens(example, self.crop_seconds, self.geometry)) for example in self.examples)
        return pack_with_broken(pairs, self.max_tokens, self.max_clips, self.open_batches, self.geometry.min_tokens)
