"""`SlapCollator`: a list of examples → SLAP's model inputs (packed audio features + tokenized captions).

Training (`train=True`): a clip longer than `crop_seconds` (or than `max_tokens` allows) is cut to a
window whose start is drawn from a generator seeded by `(seed, epoch, clip_id)`, and one caption per
clip is drawn the same way (label-only clips have one caption per keyword template, so this also
picks the template). Nothing depends on the global RNG, on the batch's other clips or on the
process: the same `(seed, epoch, batch)` gives identical tensors. Evaluation (`train=False`): clips
whole, first caption.

Broken examples are dropped, one clip at a time, and counted by reason in `collator.skip_stats`:
`None`, `audio=None` with the `skip_reason` decoding found (see `data/examples.py`), and clips
the feature extractor refuses (its `ValueError`: e.g. a sampling rate it cannot resample), counted
as `unsupported_audio`. Nothing else is caught: a bug raises. Multichannel clips are down-mixed
here (the time axis is the longer one), so any channel count trains. A batch whose clips were all
dropped comes out empty (`B = 0`); `SlapTrainer` skips it.

In DataLoader worker processes each worker counts in its own copy: `return_metadata=True` (which
`SlapTrainer` switches on) puts each batch's `skipped` (a `SkipStats`) and `clip_ids` in the batch,
to be popped before the forward pass. `set_epoch` reaches workers when their iterator is created,
i.e. each epoch unless `persistent_workers=True`.

    collator = SlapCollator(processor, crop_seconds=30.0, seed=0)
    batch = collator([dataset[i] for i in batch_indices])
    model(**batch)  # input_features, audio_lengths, input_ids, attention_mask, caption_labels
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from slap_audio.data.examples import NO_TEXT, CropWindow, SkipStats, samples_axis
from slap_audio.modeling_slap.packed_attention import length_groups
from slap_audio.training.batching import PatchGeometry

logger = logging.getLogger(__name__)

NONE_EXAMPLE = "none_example"  # skip reason of a `None` in the batch
MISSING_AUDIO = "missing_audio"  # an example without audio and without a skip reason
UNSUPPORTED_AUDIO = "unsupported_audio"  # a clip the feature extractor refuses (its ValueError)
_CROP_STREAM, _CAPTION_STREAM = 0, 1  # independent random streams per clip


def clip_generator(seed: int, epoch: int, clip_id: str, stream: int) -> np.random.Generator:
    """A generator that depends only on (seed, epoch, clip id, stream) — not on Python's hash seed."""
    key = int.from_bytes(hashlib.blake2b(str(clip_id).encode(), digest_size=8).digest(), "little")
    return np.random.default_rng([int(seed), int(epoch), int(stream), key])


def downmix(array: np.ndarray) -> np.ndarray:
    """A float clip `(samples,)`, `(samples, channels)` or `(channels, samples)` as mono: the mean
    over channels, the time axis being the longer one (as for crops). Integer PCM is left to the
    feature extractor, which scales it."""
    if array.ndim != 2 or array.dtype.kind != "f":
        return array
    return array.mean(axis=1 - samples_axis(array), dtype=array.dtype)


class SlapCollator:
    """Collates examples into `SlapForPreTraining` / `SlapModel` inputs.

    Args:
        processor: a `SlapProcessor` (its feature extractor and tokenizer are used).
        max_tokens: if set, training crops also keep every clip within this many audio tokens, so a
            single long clip never exceeds the batch budget.
        geometry: how seconds become audio tokens (default: the processor's feature extractor with
            16-bin patches; pass `PatchGeometry.of(feature_extractor, audio_config)` for others).
        crop_seconds: training crop length (`None`: no crop). Match the batch sampler's.
        seed: seed of crops and caption choices.
        caption_max_length: captions are truncated to this many tokens.
        train: crop and draw captions (`True`), or keep clips whole with their first caption.
        return_metadata: add `clip_ids` (list of str) and `skipped` (the batch's `SkipStats`) to the
            batch.

    Returns (from `__call__`): `input_features` `(total_frames, 64)` packed, `audio_lengths` `(B,)`,
    `input_ids` / `attention_mask` `(B, L)`, `caption_labels` `(B, L)` (= `input_ids`, -100 at
    padding), and the pack's layout as host ints computed here on the CPU: `max_audio_length` and
    `audio_length_groups` (see `SlapFeatureExtractor`), so the model's audio passes never read a
    tensor on the host. A batch whose examples are all broken has `B = 0` (and no layout ints); the
    training loop must skip it (`SlapTrainer` does).
    """

    def __init__(self, processor, max_tokens: int | None = None, crop_seconds: float | None = 30.0, seed: int = 0,
                 caption_max_length: int = 64, train: bool = True, return_metadata: bool = False,
                 geometry: PatchGeometry | None = None):
        self.processor = processor
        self.max_tokens, self.seed, self.train = max_tokens, int(seed), train
        self.caption_max_length, self.return_metadata = caption_max_length, return_metadata
        self.geometry = geometry or PatchGeometry.of(processor.feature_extractor)
        by_budget = self.geometry.seconds_for_tokens(max_tokens) if max_tokens else None
        limits = [s for s in (crop_seconds, by_budget) if s is not None]
        self.crop_seconds = min(limits) if limits else None
        self.epoch = 0
        self.skip_stats = SkipStats()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def crop_window(self, example: dict) -> tuple[int, int]:
        """`(start, num_samples)` of the clip's window at its own sampling rate (whole clip if
        it is short enough or `train=False`)."""
        array = np.asarray(example["audio"]["array"])
        return self.window_for(example["clip_id"])(array.shape[samples_axis(array)], int(example["audio"]["sampling_rate"]))

    def window_for(self, clip_id: str, epoch: int | None = None) -> CropWindow:
        """The clip's crop as a function `(total_samples, sampling_rate) -> (start, num_samples)`:
        what a decoder needs to read only the window (`decode_audio(..., window=...)`), before it
        knows the clip's length. `epoch` defaults to the collator's."""
        epoch = self.epoch if epoch is None else int(epoch)

        def window(total: int, rate: int) -> tuple[int, int]:
            if not self.train or self.crop_seconds is None:
                return 0, total
            # floor: the window never holds more than `crop_seconds` of audio (the sampler's token
            # estimate), whatever the input rate
            length = max(1, math.floor(self.crop_seconds * int(rate) + 1e-6))
            if total <= length:
                return 0, total
            return int(clip_generator(self.seed, epoch, clip_id, _CROP_STREAM).integers(0, total - length + 1)), length

        return window

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

    @staticmethod
    def _usable(examples: Sequence[dict | None], skipped: SkipStats) -> list[dict]:
        """The examples with audio and captions; the others counted in `skipped`."""
        kept = []
        for example in examples:
            if example is None:
                skipped.add(NONE_EXAMPLE)
            elif example.get("audio") is None or not len(example.get("captions") or []):
                reason = example.get("skip_reason") or (MISSING_AUDIO if example.get("audio") is None else NO_TEXT)
                skipped.add(reason, example.get("clip_id"))
            else:
                kept.append(example)
        return kept

    def _extract(self, clips: list[np.ndarray], rate: int, examples: list[dict]) -> list[torch.Tensor | None]:
        """Packed features of each clip at one rate, in one extractor call; if the extractor refuses
        the call, clip by clip, with `None` for each clip it refuses."""
        try:
            out = self.processor.feature_extractor(clips, sampling_rate=rate, packing=True, return_tensors="pt")
        except ValueError as err:  # the extractor's validation: bad data, not a bug
            if len(clips) == 1:
                logger.warning("skipping clip %s: %s", examples[0].get("clip_id"), err)
                return [None]
            return [piece for clip, example in zip(clips, examples, strict=True)
                    for piece in self._extract([clip], rate, [example])]
        return list(out["input_features"].split(out["audio_lengths"].tolist()))  # (frames_i, 64) each

    def _features(self, examples: list[dict], skipped: SkipStats) -> tuple[list[dict], list[torch.Tensor]]:
        """The examples the feature extractor accepts and their features (one call per rate); the
        others counted in `skipped` as `unsupported_audio`."""
        clips = [downmix(self.crop(e)) for e in examples]
        rates = [int(e["audio"]["sampling_rate"]) for e in examples]
        pieces: list[torch.Tensor | None] = [None] * len(examples)
        for rate in sorted(set(rates)):
            members = [i for i, r in enumerate(rates) if r == rate]
            extracted = self._extract([clips[i] for i in members], rate, [examples[i] for i in members])
            for i, piece in zip(members, extracted, strict=True):
                pieces[i] = piece
        for example, piece in zip(examples, pieces, strict=True):
            if piece is None:
                skipped.add(UNSUPPORTED_AUDIO, example.get("clip_id"))
        kept = [(e, p) for e, p in zip(examples, pieces, strict=True) if p is not None]
        return [e for e, _ in kept], [p for _, p in kept]

    def __call__(self, examples: Sequence[dict | None]) -> dict[str, Any]:
        skipped = SkipStats()
        kept, pieces = self._features(self._usable(examples, skipped), skipped)
        self.skip_stats.update(skipped)
        tokenizer = self.processor.tokenizer
        if kept:
            features = torch.cat(pieces)
            audio_lengths = torch.tensor([piece.shape[0] for piece in pieces], dtype=torch.int64)
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
        if kept:  # host ints: the encoder's layout without a device read (`SlapAudioModel.forward`)
            lengths = audio_lengths.tolist()
            batch["max_audio_length"] = max(lengths)
            batch["audio_length_groups"] = length_groups(lengths)
        if self.return_metadata:
            batch["clip_ids"] = [str(e["clip_id"]) for e in kept]
            batch["skipped"] = skipped
        return batch
