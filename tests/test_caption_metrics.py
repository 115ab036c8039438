"""Captioning metrics (eval/caption_metrics.py) against hand-worked values and coco-caption."""

import importlib.util
import math

import numpy as np
import pytest

from slap_audio.eval import caption_metrics as cm
from slap_audio.eval.caption_metrics import (
    bleu,
    caption_metrics,
    cider_d,
    cider_d_scores,
    rouge_l,
    tokenize,
)

HAS_COCO = importlib.util.find_spec("pycocoevalcap") is not None


def test_tokenize_lowercases_and_splits_on_punctuation():
    assert tokenize("A loud, HIGH-pitched beep... then 3 clicks!") == [
        "a",
        "loud",
        "high",
        "pitched",
        "beep",
        "then",
        "3",
        "clicks",
    ]
    assert tokenize("  ") == []


def test_identical_candidate_scores_one():
    caption = "a low hum then three sharp clicks"
    assert bleu([caption], [[caption]])["BLEU-4"] == pytest.approx(1.0, abs=1e-9)
    assert rouge_l([caption], [[caption, "something else entirely"]]) == pytest.approx(1.0)


def test_bleu_hand_worked():
    # "the cat sat on the mat" vs "the cat is on the mat" (6 tokens each, no brevity penalty):
    #   1-grams: the x2, cat, on, mat match; sat does not      -> p1 = 5/6
    #   2-grams: "the cat", "on the", "the mat" of 5           -> p2 = 3/5
    #   3-grams: "on the mat" of 4                             -> p3 = 1/4
    #   BLEU-2 = sqrt(5/6 * 3/5) = sqrt(1/2); BLEU-3 = (5/6 * 3/5 * 1/4)^(1/3) = 1/2
    scores = bleu(["the cat sat on the mat"], [["the cat is on the mat"]])
    assert scores["BLEU-1"] == pytest.approx(5 / 6)
    assert scores["BLEU-2"] == pytest.approx(math.sqrt(0.5))
    assert scores["BLEU-3"] == pytest.approx(0.5)
    assert scores["BLEU-4"] < 1e-3  # no 4-gram matches (only coco-caption's 1e-15 guard)
    # brevity penalty: "the cat" (2) vs a 6-token reference: p1 = p2 = 1, BP = exp(1 - 6/2)
    assert bleu(["the cat"], [["the cat is on the mat"]])["BLEU-2"] == pytest.approx(math.exp(-2))
    # clipping by the maximum count in any one reference; reference length = the closest (3)
    assert bleu(["the the the the"], [["the cat", "the the dog"]])["BLEU-1"] == pytest.approx(2 / 4)
    # corpus level: counts are pooled, not averaged -> p1 = (2 + 0) / (2 + 4)
    assert bleu(["a b", "c d e f"], [["a b"], ["w x y z"]])["BLEU-1"] == pytest.approx(1 / 3)


def test_rouge_l_hand_worked():
    # LCS("the cat on mat", "the cat is on the mat") = 4: P = 4/4, R = 4/6
    # F = (1 + 1.2^2) P R / (R + 1.2^2 P) = 2.44 * (2/3) / (2/3 + 1.44)
    expected = 2.44 * (2 / 3) / (2 / 3 + 1.44)
    assert rouge_l(["the cat on mat"], [["the cat is on the mat"]]) == pytest.approx(expected)
    # precision and recall are each maximised over the references
    assert rouge_l(["the cat on mat"], [["the cat is on the mat", "dog"]]) == pytest.approx(
        expected
    )
    assert rouge_l(["zzz"], [["the cat"]]) == 0.0 and rouge_l([""], [["the cat"]]) == 0.0


def test_cider_d_hand_worked():
    # two images, refs ["a b"] and ["c d"]; every n-gram appears in one document -> idf weight
    # L = log(2) - log(1). Candidate "a b" against "a b": cosine 1 for n = 1 and n = 2, 0 for
    # n = 3, 4 (no such n-grams); equal length -> CIDEr-D = 10 * (1 + 1 + 0 + 0) / 4 = 5.
    assert cider_d_scores(["a b", "c d"], [["a b"], ["c d"]]) == pytest.approx([5.0, 5.0])
    # candidate "a b c" against "a b": unigram cosine 2L^2 / (sqrt(3) L * sqrt(2) L) = 2/sqrt(6);
    # bigram cosine L^2 / (sqrt(2) L * L) = 1/sqrt(2); length (bigrams) 2 vs 1 -> exp(-1/72)
    expected = 10 / 4 * math.exp(-1 / 72) * (2 / math.sqrt(6) + 1 / math.sqrt(2))
    scores = cider_d_scores(["a b c", "c d"], [["a b"], ["c d"]])
    assert scores == pytest.approx([expected, 5.0])
    assert cider_d(["a b c", "c d"], [["a b"], ["c d"]]) == pytest.approx((expected + 5.0) / 2)
    # clipping: repeating a matching word cannot raise the unigram score above the reference's
    assert (
        cider_d_scores(["a a a a", "c d"], [["a b"], ["c d"]])[0]
        < cider_d_scores(["a b", "c d"], [["a b"], ["c d"]])[0]
    )


def test_references_must_match_candidates():
    with pytest.raises(ValueError):
        bleu(["a"], [])
    with pytest.raises(ValueError):
        rouge_l(["a"], [[]])


@pytest.mark.skipif(
    not HAS_COCO, reason="pycocoevalcap (coco-caption reference code) not installed"
)
def test_agrees_with_coco_caption_reference_code():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    from slap_audio.data.builtin_data import generate_clip

    rng = np.random.default_rng(0)
    references, candidates = [], []
    for i in range(30):
        captions = generate_clip(0, "test", i, max_duration=3.0, num_captions=6)["captions"]
        references.append(captions[:5])
        other = references[int(rng.integers(len(references)))][0]
        candidates.append([captions[5], other, " ".join(captions[5].split()[:4])][i % 3])
    gts = {i: [" ".join(tokenize(r)) for r in refs] for i, refs in enumerate(references)}
    res = {i: [" ".join(tokenize(c))] for i, c in enumerate(candidates)}
    coco_bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    ours = bleu(candidates, references)
    assert [ours[f"BLEU-{n}"] for n in range(1, 5)] == pytest.approx(coco_bleu, rel=1e-12)
    assert rouge_l(candidates, references) == pytest.approx(
        Rouge().compute_score(gts, res)[0], rel=1e-12
    )
    assert cider_d(candidates, references) == pytest.approx(
        Cider().compute_score(gts, res)[0], rel=1e-12
    )


def test_unavailable_metrics_are_reported_not_faked(monkeypatch):
    monkeypatch.setattr(cm.shutil, "which", lambda name: None)  # no Java here
    result = caption_metrics(["a dog barks"], [["a dog is barking"]])
    assert "METEOR" not in result and "SPICE" not in result and "SPIDEr" not in result
    assert (
        "Java" in result["unavailable"]["METEOR"]
        or "pycocoevalcap" in result["unavailable"]["METEOR"]
    )
    assert set(result["unavailable"]) == {"METEOR", "SPICE", "SPIDEr"}
    assert {"BLEU-4", "ROUGE-L", "CIDEr-D"} <= set(result)
    with pytest.raises(cm.MetricUnavailable):
        cm.meteor(["a"], [["a"]])


@pytest.mark.skipif(
    cm.meteor_unavailable_reason() is not None, reason="METEOR needs pycocoevalcap and Java"
)
def test_meteor_runs_offline():
    result = caption_metrics(
        ["a dog barks loudly", "three short beeps"], [["a dog barks loudly"], ["a low hum"]]
    )
    assert 0.0 < result["METEOR"] < 1.0
    assert "SPICE" in result["unavailable"] or "SPICE" in result


# coco-caption's PTB tokenisation (Java)

PUNCTUATED = (["A dog's bark (twice), then rain.", "Cars pass by -- a horn honks!"],
              [["A dog barks twice; rain follows.", "Someone's dog is barking... then it rains"],
               ["A car's horn honks as cars pass by.", "Traffic: cars passing, a horn."]])


@pytest.mark.skipif(cm.ptb_unavailable_reason() is not None, reason="the PTB tokenizer needs pycocoevalcap and Java")
def test_ptb_tokenisation_and_scores_equal_coco_caption_pipeline():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    candidates, references = PUNCTUATED
    # coco-caption end to end: its PTBTokenizer wrapper, then its scorers
    coco = PTBTokenizer()
    gts = coco.tokenize({i: [{"caption": r} for r in refs] for i, refs in enumerate(references)})
    res = coco.tokenize({i: [{"caption": c}] for i, c in enumerate(candidates)})
    assert cm.ptb_tokenize(candidates) == [res[0][0], res[1][0]]
    assert res[0][0] == "a dog 's bark -lrb- twice -rrb- then rain"  # coco-caption keeps its bracket tokens

    ours = caption_metrics(candidates, references, java_metrics=False, tokenizer="ptb")
    assert ours["tokenizer"] == "ptb"
    assert [ours[f"BLEU-{n}"] for n in range(1, 5)] == pytest.approx(Bleu(4).compute_score(gts, res, verbose=0)[0],
                                                                     rel=1e-12)
    assert ours["ROUGE-L"] == pytest.approx(Rouge().compute_score(gts, res)[0], rel=1e-12)
    assert ours["CIDEr-D"] == pytest.approx(Cider().compute_score(gts, res)[0], rel=1e-12)
    # the default picks PTB here, and the simple tokenizer scores these captions differently
    assert caption_metrics(candidates, references, java_metrics=False) == ours
    simple = caption_metrics(candidates, references, java_metrics=False, tokenizer="simple")
    assert simple["tokenizer"] == "simple" and simple["BLEU-1"] != ours["BLEU-1"]


@pytest.mark.skipif(cm.ptb_unavailable_reason() is not None, reason="the PTB tokenizer needs pycocoevalcap and Java")
def test_ptb_keeps_each_caption_on_its_line_whatever_its_line_breaks():
    """PTBTokenizer -preserveLines ends a line at \\u2028, form feed... too: a caption holding one
    would shift every later caption onto another's tokens."""
    texts = ["a dog\u2028barks", "rain\x0cfalls", "wind\x85blows\u2029hard", "a bell\r\nrings", "birds sing"]
    assert cm.ptb_tokenize(texts) == ["a dog barks", "rain falls", "wind blows hard", "a bell rings", "birds sing"]


def test_tokenizer_choice_without_java(monkeypatch):
    monkeypatch.setattr(cm.shutil, "which", lambda name: None)
    candidates, references = PUNCTUATED
    result = caption_metrics(candidates, references, java_metrics=False)
    assert result["tokenizer"] == "simple"
    assert result["BLEU-4"] == bleu(candidates, references)["BLEU-4"]  # the simple tokenizer's numbers
    with pytest.raises(cm.MetricUnavailable, match="Java"):
        caption_metrics(candidates, references, tokenizer="ptb")
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        caption_metrics(candidates, references, tokenizer="nltk")
