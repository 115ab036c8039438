"""`SlapCollator`: a list of examples → SLAP's model inputs (packed audio features + tokenized captions).

Training (`train=True`): a clip longer than `crop_seconds` (or than `max_tokens` allows) is cut to a
window whose start is drawn from a generator seeded by `(seed, epoch, clip_id)`, and one caption per
clip is drawn the same way (label-only clips have one caption per keyword template, so this also
picks the template). Nothing depends on the global RNG, on the batch's other clips or on the
process: the same `(seed, epoch, batch)` gives identical tensors. Evaluation (`train=False`): clips
whole, first caption.

Broken examples (`None`, or `audio=None` with a `skip_reason`, see `training/examples.py`) are dropped
and counted in `collator.skip_stats`. In DataLoader worker processes each worker counts in its own
copy: pass `return_metadata=True` to get each batch's `skipped` counts (and `clip_ids`) in the
batch, and pop them before the forward pass. `set_epoch` reaches workers when their iterator is
created, i.e. each epoch unless `persistent_workers=True`.

    collator = SlapCollator(processor, crop_seconds=30.0, seed=0)
    batch = collator([dataset[i] for i in batch_indices])
    model(**batch)  # input_features, audio_lengths, input_ids, attention_mask, caption_labels
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from slap_audio.training.batching import seconds_for_tokens
from slap_audio.training.examples import NO_TEXT, SkipStats, samples_axis

NONE_EXAMPLE = "none_example"  # skip reason of a `None` in the batch
MISSING_AUDIO = "missing_audio"  # an example without audio and without a skip reason
_CROP_STREAM, _CAPTION_STREAM = 0, 1  # independent random streams per clip


def clip_generator(seed: int, epoch: int, clip_id: str, stream: int) -> np.random.Generator:
    """A generator that depends only on (seed, epoch, clip id, stream) — not on Python's hash seed."""
    key = int.from_bytes(hashlib.blake2b(str(clip_id).encode(), digest_size=8).digest(), "little")
    return np.random.default_rng([int(seed), int(epoch), int(stream), key])


class SlapCollator:
    """Collates examples into `SlapForPreTraining` / `SlapModel` inputs.

    Args:
        processor: a `SlapProcessor` (its feature extractor and tokenizer are used).
        max_tokens: if set, training crops also keep every clip within this many audio tokens, so a
            single long clip never exceeds the batch budget.
        crop_seconds: training crop length (`None`: no crop). Match the batch sampler's.
        seed: seed of crops and caption choices.
        caption_max_length: captions are truncated to this many tokens.
        train: crop and draw captions (`True`), or keep clips whole with their first caption.
        return_metadata: add `clip_ids` (list of str) and `skipped` ({reason: count}) to the batch.

    Returns (from `__call__`): `input_features` `(total_frames, 64)` packed, `audio_lengths` `(B,)`,
    `input_ids` / `attention_mask` `(B, L)`, `caption_labels` `(B, L)` (= `input_ids`, -100 at
    padding). A batch whose examples are all broken has `B = 0`; the training loop must skip it.
    """

    def __init__(self, processor, max_tokens: int | None = None, crop_seconds: float | None = 30.0, seed: int = 0,
                 caption_max_length: int = 64, train: bool = True, return_metadata: bool = False):
        self.processor = processor
        self.max_tokens, self.seed, self.train = max_tokens, int(seed), train
        self.caption_max_length, self.return_metadata = caption_max_length, return_metadata
        limits = [s for s in (crop_seconds, seconds_for_tokens(max_tokens) if max_tokens else None) if s is not None]
        self.crop_seconds = min(limits) if limits else None
        self.epoch = 0
        self.skip_stats = SkipStats()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def crop_window(self, example: dict) -> tuple[int, int]:
        """`(start, num_samples)` of the clip's window at its own sampling rate (whole clip if
        it is short enough or `train=False`)."""
        audio = example["audio"]
        array = np.asarray(audio["array"])
        total = array.shape[samples_axis(array)]
        if not self.train or self.crop_seconds is None:
            return 0, total
        # floor: the window never holds more 16 kHz samples than `crop_seconds` (the sampler's
        # token estimate), whatever the input rate
        length = max(1, math.floor(self.crop_seconds * int(audio["sampling_rate"]) + 1e-6))
        if total <= length:
            return 0, total
        start = int(clip_generator(self.seed, self.epoch, example["clip_id"], _CROP_STREAM).integers(0, total - length + 1))
        return start, length

    def crop(self, example: dict) -> np.ndarray:
        """The clip's audio as the model will see it (see `crop_window`)."""
        array = np.asarray(example["audio"]["array"])
        start, length = self.crop_window(example)
        window = [slice(None)] * array.ndim
        window[samples_axis(array)] = slice(start, start + length)
        return array[tuple(window)]

    def choose_caption(self, example: dict) -> str:
        """One of the clip's captions: drawn per (seed, epoch, clip) in training, else the first."""
        captions = example["captions"]
        if not self.train or len(captions) == 1:
            return str(captions[0])
        return str(captions[int(clip_generator(self.seed, self.epoch, example["clip_id"], _CAPTION_STREAM)
                                .integers(len(captions)))])

    def _usable(self, examples: Sequence[dict | None]) -> tuple[list[dict], Counter]:
        kept, skipped = [], Counter()
        for example in examples:
            if example is None:
                reason, clip_id = NONE_EXAMPLE, None
            elif example.get("audio") is None or not len(example.get("captions") or []):
                reason = example.get("skip_reason") or (MISSING_AUDIO if example.get("audio") is None else NO_TEXT)
                clip_id = example.get("clip_id")
            else:
                kept.append(example)
                continue
            skipped[reason] += 1
            self.skip_stats.add(reason, clip_id)
        return kept, skipped

    def _features(self, clips: list[np.ndarray], rates: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Packed features of clips at possibly different rates (one extractor call per rate)."""
        extractor = self.processor.feature_extractor
        if len(set(rates)) == 1:
            out = extractor(clips, sampling_rate=rates[0], packing=True, return_tensors="pt")
            return out["input_features"], out["audio_lengths"]
        pieces: list[torch.Tensor] = [torch.empty(0)] * len(clips)
        lengths = torch.zeros(len(clips), dtype=torch.int64)
        for rate in sorted(set(rates)):
            members = [i for i, r in enumerate(rates) if r == rate]
            out = extractor([clips[i] for i in members], sampling_rate=rate, packing=True, return_tensors="pt")
            for i, piece in zip(members, out["input_features"].split(out["audio_lengths"].tolist()), strict=True):
                pieces[i], lengths[i] = piece, piece.shape[0]
        return torch.cat(pieces), lengths

    def __call__(self, examples: Sequence[dict | None]) -> dict[str, Any]:
        kept, skipped = self._usable(examples)
        tokenizer = self.processor.tokenizer
        if kept:
            features, audio_lengths = self._features([self.crop(e) for e in kept],
                                                     [int(e["audio"]["sampling_rate"]) for e in kept])
            text = tokenizer([self.choose_caption(e) for e in kept], padding=True, truncation=True,
                             max_length=self.caption_max_length, return_tensors="pt")
            input_ids, attention_mask = text["input_ids"], text["attention_mask"]
        else:
            features = torch.zeros(0, self.processor.feature_extractor.feature_size)
            audio_lengths = torch.zeros(0, dtype=torch.int64)
            input_ids = attention_mask = torch.zeros(0, 0, dtype=torch.int64)
        batch: dict[str, Any] = {
            "input_features": features,  # (total_frames, 64)
            "audio_lengths": audio_lengths,  # (B,)
            "input_ids": input_ids,  # (B, L)
            "attention_mask": attention_mask,  # (B, L)
            "caption_labels": input_ids.masked_fill(attention_mask == 0, -100),  # (B, L)
        }
        if self.return_metadata:
            batch["clip_ids"] = [str(e["clip_id"]) for e in kept]
            batch["skipped"] = dict(skipped)
        return batch
