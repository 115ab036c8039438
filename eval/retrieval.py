"""Cross-modal retrieval metrics (SPEC §6): text→audio and audio→text Recall@k, mAP@10, MRR@10.

The AudioCaps/Clotho protocol: N clips, M >= N captions, `caption_to_audio[j]` is the clip that
caption j describes.
- text→audio: every caption queries all N clips; its one relevant item is its own clip.
- audio→text: every clip queries all M captions; relevant items are all of its captions.

Scores are dot products of the given embeddings (cosine similarity when they are L2-normalised,
as `get_audio_features` / `get_text_features` return them). Queries are processed in chunks, so
at most `chunk_size × num_candidates` scores exist at once (10,000 clips × 50,000 captions never
materialise); results do not depend on the chunk size.

Ties are counted against the query (pessimistic, deterministic): a tied irrelevant candidate
ranks ahead of a relevant one, tied relevant candidates rank among themselves by index. The
0-based position of relevant candidate c with score s is

    #{candidates scoring > s} + #{irrelevant candidates scoring == s}
        + #{relevant candidates scoring == s with index < c}

so a constant embedding earns no free hits. Duplicate caption texts on different clips are
distinct candidates: a model cannot separate them, so for one of the clips one of them must lose.

Metrics, averaged over queries (all in [0, 1]):
- `R@k`: the first relevant candidate is at a position < k.
- `mAP@10`: AP@10 = (1 / min(R, 10)) * sum over relevant candidates at position p < 10 of
  precision@(p + 1) = (#relevant at positions <= p) / (p + 1), with R = number of relevant items.
  For text→audio (R = 1) this is 1 / (p + 1) if p < 10 else 0, the DCASE 2022 task 6b
  definition; for audio→text it averages over all reference captions found in the top 10.
- `MRR@10`: 1 / (p_first + 1) if p_first < 10 else 0 — what LAION-CLAP reports as the
  audio→text "mAP@10". For text→audio it equals mAP@10.
- `median_rank`: median 1-based rank of the first relevant candidate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

DEFAULT_SCORE_BUDGET = 1 << 24  # scores per chunk (64 MB in float32)


def _as_tensor(x) -> torch.Tensor:
    x = torch.as_tensor(x)
    if not torch.is_floating_point(x):
        x = x.float()
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (items, dim), got shape {tuple(x.shape)}")
    return x


def flatten_captions(captions_per_clip: Sequence[Sequence[str]]) -> tuple[list[str], np.ndarray]:
    """[[c0a, c0b], [c1a]] -> ([c0a, c0b, c1a], caption_to_audio=[0, 0, 1])."""
    captions = [c for clip in captions_per_clip for c in clip]
    caption_to_audio = np.repeat(
        np.arange(len(captions_per_clip)), [len(c) for c in captions_per_clip]
    )
    return captions, caption_to_audio


def _relevant_lists(
    caption_to_audio: torch.Tensor, num_audio: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Captions of each clip as a padded (num_audio, max_captions) index matrix plus mask."""
    counts = torch.bincount(caption_to_audio, minlength=num_audio)
    if bool((counts == 0).any()):
        raise ValueError(f"clip {int(torch.nonzero(counts == 0)[0])} has no caption")
    order = torch.argsort(
        caption_to_audio, stable=True
    )  # caption indices grouped by clip, ascending
    slot = torch.arange(len(order)) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    index = torch.zeros(num_audio, int(counts.max()), dtype=torch.long)
    mask = torch.zeros(num_audio, int(counts.max()), dtype=torch.bool)
    index[caption_to_audio[order], slot] = order
    mask[caption_to_audio[order], slot] = True
    return index, mask


def relevant_positions(
    queries, candidates, relevant: torch.Tensor, mask: torch.Tensor, chunk_size: int | None = None
) -> torch.Tensor:
    """0-based positions (pessimistic ties, see module docstring) of each query's relevant
    candidates: `relevant` (Q, R) holds candidate indices in ascending order per row, `mask`
    (Q, R) marks real entries. Returns (Q, R) int64 with -1 where the mask is False."""
    queries = _as_tensor(queries)
    candidates = _as_tensor(candidates).to(device=queries.device, dtype=queries.dtype)
    num_candidates = candidates.shape[0]
    chunk_size = chunk_size or max(1, DEFAULT_SCORE_BUDGET // max(1, num_candidates))
    relevant, mask = relevant.to(queries.device), mask.to(queries.device)
    width = relevant.shape[1]
    earlier = torch.ones(width, width, dtype=torch.bool, device=queries.device).tril(
        -1
    )  # [r, r'] = r' < r
    out = []
    for start in range(0, queries.shape[0], chunk_size):
        scores = queries[start : start + chunk_size] @ candidates.T  # (chunk, num_candidates)
        if not bool(torch.isfinite(scores).all()):
            raise ValueError("non-finite similarity scores")
        rel, valid = relevant[start : start + chunk_size], mask[start : start + chunk_size]
        rel_scores = scores.gather(1, rel)  # (chunk, R)
        greater = torch.stack([(scores > rel_scores[:, r : r + 1]).sum(1) for r in range(width)], 1)
        equal = torch.stack([(scores == rel_scores[:, r : r + 1]).sum(1) for r in range(width)], 1)
        same = (rel_scores[:, :, None] == rel_scores[:, None, :]) & valid[
            :, None, :
        ]  # (chunk, R, R)
        tied_relevant = same.sum(2)
        tied_relevant_before = (same & earlier).sum(2)
        position = greater + (equal - tied_relevant) + tied_relevant_before
        out.append(torch.where(valid, position, torch.full_like(position, -1)))
    return torch.cat(out) if out else torch.zeros(0, width, dtype=torch.long)


def _summarise(
    positions: torch.Tensor, mask: torch.Tensor, ks: Sequence[int], map_k: int
) -> dict[str, float]:
    big = torch.iinfo(torch.long).max
    positions = (
        torch.where(mask, positions, torch.full_like(positions, big)).sort(1).values.double()
    )
    first = positions[:, 0]
    result = {f"R@{k}": float((first < k).double().mean()) for k in ks}
    found = torch.arange(
        1, positions.shape[1] + 1, dtype=torch.float64
    )  # relevant items up to here
    precision = torch.where(positions < map_k, found / (positions + 1), torch.zeros_like(positions))
    num_relevant = mask.sum(1).clamp(max=map_k).double()
    result[f"mAP@{map_k}"] = float((precision.sum(1) / num_relevant).mean())
    result[f"MRR@{map_k}"] = float(
        torch.where(first < map_k, 1.0 / (first + 1), torch.zeros_like(first)).mean()
    )
    result["median_rank"] = float(np.median(first.numpy() + 1))
    return result


def retrieval_metrics(
    audio_embeds,
    text_embeds,
    caption_to_audio,
    *,
    ks: Sequence[int] = (1, 5, 10),
    map_k: int = 10,
    chunk_size: int | None = None,
) -> dict[str, float]:
    """Text→audio and audio→text retrieval metrics, keys like `text_to_audio/R@1`,
    `audio_to_text/mAP@10` (definitions in the module docstring).

    audio_embeds: (N, D); text_embeds: (M, D); caption_to_audio: (M,) clip index of each caption.
    """
    audio, text = _as_tensor(audio_embeds), _as_tensor(text_embeds)
    caption_to_audio = torch.as_tensor(np.asarray(caption_to_audio), dtype=torch.long)
    if caption_to_audio.shape != (text.shape[0],):
        raise ValueError("caption_to_audio needs one clip index per caption")
    if len(caption_to_audio) and (
        int(caption_to_audio.min()) < 0 or int(caption_to_audio.max()) >= audio.shape[0]
    ):
        raise ValueError("caption_to_audio holds an index outside the audio embeddings")
    one = torch.ones(text.shape[0], 1, dtype=torch.bool)
    t2a = relevant_positions(text, audio, caption_to_audio[:, None], one, chunk_size)
    index, mask = _relevant_lists(caption_to_audio, audio.shape[0])
    a2t = relevant_positions(audio, text, index, mask, chunk_size)
    result = {f"text_to_audio/{k}": v for k, v in _summarise(t2a.cpu(), one, ks, map_k).items()}
    result.update(
        {f"audio_to_text/{k}": v for k, v in _summarise(a2t.cpu(), mask, ks, map_k).items()}
    )
    return result


def top_k(
    queries, candidates, k: int, chunk_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, indices) of each query's k best candidates, ties by ascending index; chunked."""
    queries = _as_tensor(queries)
    candidates = _as_tensor(candidates).to(device=queries.device, dtype=queries.dtype)
    chunk_size = chunk_size or max(1, DEFAULT_SCORE_BUDGET // max(1, candidates.shape[0]))
    k = min(k, candidates.shape[0])
    scores, indices = [], []
    for start in range(0, queries.shape[0], chunk_size):
        chunk = queries[start : start + chunk_size] @ candidates.T
        values, order = torch.sort(chunk, dim=1, descending=True, stable=True)
        scores.append(values[:, :k])
        indices.append(order[:, :k])
    if not scores:
        return torch.zeros(0, k, dtype=queries.dtype), torch.zeros(0, k, dtype=torch.long)
    return torch.cat(scores), torch.cat(indices)
