"""Retrieval metrics (eval/retrieval.py): hand-worked cases, ties, chunking, chance level."""

import numpy as np
import pytest
import torch

from slap_audio.eval.retrieval import flatten_captions, relevant_positions, retrieval_metrics, top_k


def _unit(x):
    return torch.nn.functional.normalize(torch.as_tensor(x, dtype=torch.float32), dim=1)


def test_oracle_embeddings_score_one_everywhere():
    audio = _unit(torch.randn(50, 16, generator=torch.Generator().manual_seed(0)))
    caption_to_audio = np.repeat(np.arange(50), 5)
    result = retrieval_metrics(audio, audio[caption_to_audio], caption_to_audio)
    assert result and all(value == 1.0 for value in result.values())  # median rank 1 too


def test_random_embeddings_score_near_chance():
    g = torch.Generator().manual_seed(1)
    n = 300
    audio, text = (
        _unit(torch.randn(n, 256, generator=g)),
        _unit(torch.randn(5 * n, 256, generator=g)),
    )
    result = retrieval_metrics(audio, text, np.repeat(np.arange(n), 5))
    # chance: text→audio R@k = k/N; audio→text R@k ≈ 1-(1-5/5N)^k ≈ k/N
    assert result["text_to_audio/R@1"] < 0.015 and result["text_to_audio/R@10"] < 0.07
    assert result["audio_to_text/R@1"] < 0.02 and result["audio_to_text/R@10"] < 0.08
    assert result["text_to_audio/mAP@10"] < 0.03
    assert 100 < result["text_to_audio/median_rank"] < 200  # about (N + 1) / 2


def test_ties_count_against_the_query():
    # clips 0 and 1 have the same embedding, so caption 0 (of clip 0) scores [1, 1, 0]: its clip
    # ties with an irrelevant one and ranks second; likewise caption 1; caption 2 ranks first.
    audio = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    text = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    result = retrieval_metrics(audio, text, [0, 1, 2])
    assert result["text_to_audio/R@1"] == pytest.approx(1 / 3)
    assert result["text_to_audio/R@5"] == 1.0
    assert result["text_to_audio/mAP@10"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    # all-constant embeddings: no free hits below k = N, and rank N for everyone
    flat = retrieval_metrics(
        np.ones((4, 3)), np.ones((8, 3)), np.repeat(np.arange(4), 2), ks=(1, 3, 4)
    )
    assert flat["text_to_audio/R@3"] == 0.0 and flat["text_to_audio/R@4"] == 1.0
    assert flat["audio_to_text/R@1"] == 0.0 and flat["text_to_audio/median_rank"] == 4.0
    assert (
        flat["audio_to_text/median_rank"] == 7.0
    )  # 6 irrelevant captions tie ahead of the first relevant


def test_duplicate_captions_within_and_across_clips():
    # within: clip 0 has two identical captions; both are relevant, so the tie costs nothing
    result = retrieval_metrics(
        [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [0, 0, 1]
    )
    assert all(v == 1.0 for v in result.values())
    # across: captions 0 (clip 0) and 1 (clip 1) are the same text. Audio→text:
    #   clip 0 scores [1, 1, 0]: its caption ties with clip 1's -> position 1: AP = 1/2
    #   clip 1 = (0.6, 0.8) scores [.6, .6, .8]: caption 2 first (position 0); caption 1 ties
    #   with irrelevant caption 0 -> position 2: AP = (1/1 + 2/3) / 2 = 5/6
    result = retrieval_metrics(
        [[1.0, 0.0], [0.6, 0.8]], [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [0, 1, 1]
    )
    assert result["audio_to_text/R@1"] == 0.5
    assert result["audio_to_text/mAP@10"] == pytest.approx((1 / 2 + 5 / 6) / 2)
    assert result["audio_to_text/MRR@10"] == pytest.approx((1 / 2 + 1) / 2)


def test_several_captions_per_clip_average_precision():
    # 1-D embeddings so scores are just the caption values (clip 0 = +1, clip 1 = -1).
    # captions 0 and 2 belong to clip 0, captions 1 and 3 to clip 1.
    audio, text = [[1.0], [-1.0]], [[0.9], [0.8], [0.7], [0.95]]
    result = retrieval_metrics(audio, text, [0, 1, 0, 1])
    # clip 0 ranking: c3 (irr), c0 (rel), c1 (irr), c2 (rel) -> positions 1, 3: AP = (1/2 + 2/4) / 2
    # clip 1 ranking (scores negated): c2, c1 (rel), c0, c3 (rel) -> positions 1, 3: AP = 1/2
    assert result["audio_to_text/mAP@10"] == pytest.approx(0.5)
    assert result["audio_to_text/MRR@10"] == pytest.approx(0.5)
    assert result["audio_to_text/R@1"] == 0.0 and result["audio_to_text/R@5"] == 1.0
    # text→audio: captions 0 and 2 find clip 0 first; captions 1 and 3 find clip 1 second
    assert result["text_to_audio/R@1"] == 0.5
    assert result["text_to_audio/mAP@10"] == pytest.approx((1 + 1 / 2 + 1 + 1 / 2) / 4)
    # truncation: mAP@2 keeps only clip 0's caption at position 1 -> AP = (1/2) / min(2, 2)
    assert retrieval_metrics(audio, text, [0, 1, 0, 1], map_k=2)[
        "audio_to_text/mAP@2"
    ] == pytest.approx(0.25)


def _brute_force_positions(scores, relevant_sets):
    """Sort candidates by (-score, relevant last among ties, index): the documented order."""
    out = []
    for row, relevant in zip(scores, relevant_sets, strict=True):
        order = sorted(range(len(row)), key=lambda c: (-row[c], c in relevant, c))
        out.append(sorted(order.index(c) for c in relevant))
    return out


def test_positions_match_brute_force_with_many_ties():
    g = torch.Generator().manual_seed(2)
    audio = torch.randint(-2, 3, (23, 3), generator=g).float()  # small integers: lots of exact ties
    text = torch.randint(-2, 3, (61, 3), generator=g).float()
    caption_to_audio = torch.cat([torch.arange(23), torch.randint(0, 23, (38,), generator=g)])
    scores = (audio @ text.T).tolist()
    relevant = [sorted(int(j) for j in torch.nonzero(caption_to_audio == i)) for i in range(23)]
    width = max(len(r) for r in relevant)
    index = torch.tensor([r + [0] * (width - len(r)) for r in relevant])
    mask = torch.tensor([[True] * len(r) + [False] * (width - len(r)) for r in relevant])
    positions = relevant_positions(audio, text, index, mask, chunk_size=5)
    got = [sorted(int(p) for p in row if p >= 0) for row in positions]
    assert got == _brute_force_positions(scores, [set(r) for r in relevant])


@pytest.mark.parametrize("quantise", [False, True])
def test_chunked_equals_unchunked(quantise):
    g = torch.Generator().manual_seed(3)
    audio, text = _unit(torch.randn(97, 8, generator=g)), _unit(torch.randn(300, 8, generator=g))
    if quantise:  # coarse values create ties that straddle chunk boundaries
        audio, text = torch.round(audio * 2) / 2, torch.round(text * 2) / 2
    caption_to_audio = torch.cat(
        [torch.arange(97), torch.randint(0, 97, (203,), generator=g)]
    ).numpy()
    whole = retrieval_metrics(audio, text, caption_to_audio, chunk_size=10_000)
    assert retrieval_metrics(audio, text, caption_to_audio, chunk_size=7) == whole
    assert retrieval_metrics(audio, text, caption_to_audio, chunk_size=1) == whole
    assert (
        retrieval_metrics(audio.numpy(), text.double().numpy(), caption_to_audio) == whole
    )  # numpy, float64


def test_input_validation():
    with pytest.raises(ValueError, match="no caption"):
        retrieval_metrics(np.eye(3), np.eye(3)[:2], [0, 1])
    with pytest.raises(ValueError, match="outside"):
        retrieval_metrics(np.eye(2), np.eye(2), [0, 2])
    with pytest.raises(ValueError, match="one clip index per caption"):
        retrieval_metrics(np.eye(2), np.eye(2), [0])
    with pytest.raises(ValueError, match="non-finite"):
        retrieval_metrics(np.array([[np.nan, 0.0], [0.0, 1.0]]), np.eye(2), [0, 1])


def test_top_k_orders_by_score_then_index():
    scores, indices = top_k(
        [[1.0, 0.0]], [[0.5, 0.0], [1.0, 0.0], [0.5, 0.0], [0.9, 0.0]], k=3, chunk_size=1
    )
    assert indices.tolist() == [[1, 3, 0]] and scores[0].tolist() == pytest.approx([1.0, 0.9, 0.5])


def test_flatten_captions():
    captions, caption_to_audio = flatten_captions([["a", "b"], ["c"], ["d", "e", "f"]])
    assert captions == ["a", "b", "c", "d", "e", "f"] and caption_to_audio.tolist() == [
        0,
        0,
        1,
        2,
        2,
        2,
    ]
