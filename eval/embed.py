"""Embed a dataset with a SLAP model: audio packed by a token budget, captions in batches.

Used by the evaluation CLI and by `SlapTrainer`'s retrieval evaluation. Works with any model that
has `get_audio_features` / `get_text_features` (`SlapModel`, `SlapForPreTraining`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from slap_audio.eval.retrieval import flatten_captions

DEFAULT_BATCH_SECONDS = 240.0  # audio seconds per packed forward pass (6,000 tokens)


@dataclass
class EmbeddedSet:
    """Normalised embeddings of a dataset: clips, all their captions, and which clip each caption describes."""

    audio: torch.Tensor  # (num_clips, dim)
    text: torch.Tensor  # (num_captions, dim)
    caption_to_audio: np.ndarray  # (num_captions,)
    captions: list[str]
    labels: list[str | None]


def _duration_batches(durations: Sequence[float], batch_seconds: float) -> list[list[int]]:
    """Consecutive clips grouped so that each group holds at most `batch_seconds` (a longer clip alone)."""
    batches, current, total = [], [], 0.0
    for index, seconds in enumerate(durations):
        if current and total + seconds > batch_seconds:
            batches.append(current)
            current, total = [], 0.0
        current.append(index)
        total += seconds
    if current:
        batches.append(current)
    return batches


@torch.no_grad()
def embed_audio(
    model,
    feature_extractor,
    waveforms: Sequence[np.ndarray],
    sampling_rates: Sequence[int],
    batch_seconds: float = DEFAULT_BATCH_SECONDS,
    progress: bool = False,
) -> torch.Tensor:
    """L2-normalised audio embeddings `(num_clips, dim)`, clips whole (no crop), in input order."""
    durations = [len(w) / sr for w, sr in zip(waveforms, sampling_rates, strict=True)]
    device = next(model.parameters()).device
    out = []
    for batch in tqdm(_duration_batches(durations, batch_seconds), desc="audio", disable=not progress):
        rates = {sampling_rates[i] for i in batch}
        groups = [[i for i in batch if sampling_rates[i] == rate] for rate in sorted(rates)]
        for group in groups:
            inputs = feature_extractor(
                [waveforms[i] for i in group], sampling_rate=sampling_rates[group[0]], return_tensors="pt"
            ).to(device)
            out.append((group, model.get_audio_features(**inputs).pooler_output.float().cpu()))
    embeds = torch.empty(len(waveforms), out[0][1].shape[-1]) if out else torch.empty(0, 0)
    for group, values in out:
        embeds[group] = values
    return embeds


@torch.no_grad()
def embed_texts(model, tokenizer, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    """L2-normalised text embeddings `(num_texts, dim)`."""
    device = next(model.parameters()).device
    chunks = []
    for start in tqdm(range(0, len(texts), batch_size), desc="text", disable=not progress):
        batch = tokenizer(list(texts[start : start + batch_size]), padding=True, truncation=True, return_tensors="pt")
        chunks.append(model.get_text_features(**batch.to(device)).pooler_output.float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, 0)


def embed_examples(
    model, processor, examples: Iterable[dict], batch_seconds: float = DEFAULT_BATCH_SECONDS, progress: bool = False
) -> EmbeddedSet:
    """Embed examples `{"audio": {"array", "sampling_rate"}, "captions": [...], "label": ...}`."""
    examples = list(examples)
    was_training = model.training
    model.eval()
    try:
        audio = embed_audio(
            model, processor.feature_extractor,
            [np.asarray(e["audio"]["array"], dtype=np.float32) for e in examples],
            [int(e["audio"]["sampling_rate"]) for e in examples],
            batch_seconds=batch_seconds, progress=progress,
        )
        captions, caption_to_audio = flatten_captions([e["captions"] for e in examples])
        text = embed_texts(model, processor.tokenizer, captions, progress=progress)
    finally:
        model.train(was_training)
    return EmbeddedSet(audio, text, caption_to_audio, captions, [e.get("label") for e in examples])
