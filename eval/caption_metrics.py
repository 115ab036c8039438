"""Captioning metrics computed offline (SPEC §6): BLEU-1..4, ROUGE-L, CIDEr-D, METEOR, SPICE.

BLEU, ROUGE-L and CIDEr-D are implemented here and follow the coco-caption reference code
(`pycocoevalcap`) number for number, on the same tokens:
- BLEU-n: corpus level, clipped n-gram precision against the per-n-gram maximum count over a
  candidate's references, brevity penalty from the sum of the closest reference lengths (ties:
  the shorter one), coco-caption's 1e-15 / 1e-9 guards against log(0).
- ROUGE-L: LCS precision and recall, each maximised over the references, F-measure with
  beta = 1.2; mean over candidates.
- CIDEr-D: tf-idf vectors of 1..4-grams (document frequencies over the reference sets of the
  corpus), candidate counts clipped by the reference's, cosine per n, Gaussian length penalty
  with sigma = 6, mean over n and references, times 10; mean over candidates. (As in the
  reference code, the "length" is the number of bigrams.)

Tokenisation (`tokenize`): lowercase, then runs of letters and digits; everything else
(punctuation, hyphens, apostrophes) separates tokens. coco-caption uses the Stanford PTB
tokenizer, which needs Java; this one is dependency-free and deterministic.

METEOR and SPICE run Java code shipped in the PyPI package `pycocoevalcap`:
- METEOR 1.5 (its jar bundles WordNet synonyms, and the paraphrase table ships in the wheel):
  available offline when `pycocoevalcap` is installed and `java` is on PATH.
- SPICE needs the Stanford CoreNLP 3.6.0 jars, which pycocoevalcap downloads from the internet
  on first use; no PyPI package ships them, so it is available only where they were put in
  place by hand. SPIDEr = (CIDEr-D + SPICE) / 2 needs SPICE.
Metrics that cannot run are never estimated: `caption_metrics` lists them under "unavailable"
with the reason.
"""

from __future__ import annotations

import importlib.util
import math
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

_TOKEN = re.compile(r"[a-z0-9]+")


class MetricUnavailable(RuntimeError):
    """Raised when a metric's resources are missing; the message says what is missing."""


def tokenize(text: str) -> list[str]:
    """'A loud, high-pitched beep.' -> ['a', 'loud', 'high', 'pitched', 'beep']."""
    return _TOKEN.findall(text.lower())


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    """Counts of all 1..n-grams (as tuples)."""
    return Counter(
        tuple(tokens[i : i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1)
    )


def _check(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if len(candidates) != len(references):
        raise ValueError("one list of references per candidate is needed")
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every candidate needs at least one reference")


# ---------------------------------------------------------------------------------------------
# BLEU


def bleu(
    candidates: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 4
) -> dict[str, float]:
    """Corpus BLEU-1..max_n as in coco-caption (`BleuScorer.compute_score(option="closest")`)."""
    _check(candidates, references)
    tiny, small = 1e-15, 1e-9
    guess, correct = [0] * max_n, [0] * max_n
    test_length = ref_length = 0
    for candidate, refs in zip(candidates, references, strict=True):
        tokens = tokenize(candidate)
        ref_tokens = [tokenize(r) for r in refs]
        max_counts: Counter = Counter()
        for ref in ref_tokens:
            for ngram, count in _ngrams(ref, max_n).items():
                max_counts[ngram] = max(max_counts[ngram], count)
        for ngram, count in _ngrams(tokens, max_n).items():
            correct[len(ngram) - 1] += min(max_counts[ngram], count)
        for k in range(max_n):
            guess[k] += max(0, len(tokens) - k)
        test_length += len(tokens)
        ref_length += min((abs(len(r) - len(tokens)), len(r)) for r in ref_tokens)[1]
    scores, product = {}, 1.0
    ratio = (test_length + tiny) / (ref_length + small)
    penalty = math.exp(1 - 1 / ratio) if ratio < 1 else 1.0
    for k in range(max_n):
        product *= (correct[k] + tiny) / (guess[k] + small)
        scores[f"BLEU-{k + 1}"] = product ** (1.0 / (k + 1)) * penalty
    return scores


# ---------------------------------------------------------------------------------------------
# ROUGE-L


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l_scores(
    candidates: Sequence[str], references: Sequence[Sequence[str]], beta: float = 1.2
) -> list[float]:
    """Per-candidate ROUGE-L F-measure as in coco-caption's `Rouge.calc_score`."""
    _check(candidates, references)
    scores = []
    for candidate, refs in zip(candidates, references, strict=True):
        tokens = tokenize(candidate)
        if not tokens:
            scores.append(0.0)
            continue
        precision = recall = 0.0
        for ref in refs:
            ref_tokens = tokenize(ref)
            common = _lcs(ref_tokens, tokens)
            precision = max(precision, common / len(tokens))
            recall = max(recall, common / len(ref_tokens) if ref_tokens else 0.0)
        if precision > 0 and recall > 0:
            scores.append((1 + beta**2) * precision * recall / (recall + beta**2 * precision))
        else:
            scores.append(0.0)
    return scores


def rouge_l(
    candidates: Sequence[str], references: Sequence[Sequence[str]], beta: float = 1.2
) -> float:
    scores = rouge_l_scores(candidates, references, beta)
    return sum(scores) / len(scores) if scores else 0.0


# ---------------------------------------------------------------------------------------------
# CIDEr-D


def cider_d_scores(
    candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0
) -> list[float]:
    """Per-candidate CIDEr-D as in coco-caption's `CiderScorer.compute_score`."""
    _check(candidates, references)
    ref_counts = [[_ngrams(tokenize(r), n) for r in refs] for refs in references]
    document_frequency: Counter = Counter()
    for counts in ref_counts:
        document_frequency.update({g for c in counts for g in c})
    log_num_documents = math.log(float(len(references))) if references else 0.0

    def vectorise(counts: Counter):
        vectors = [{} for _ in range(n)]
        norms = [0.0] * n
        length = 0
        for ngram, term_frequency in counts.items():
            k = len(ngram) - 1
            weight = term_frequency * (
                log_num_documents - math.log(max(1.0, document_frequency[ngram]))
            )
            vectors[k][ngram] = weight
            norms[k] += weight**2
            if k == 1:  # sic: the reference code counts bigrams as the length
                length += term_frequency
        return vectors, [math.sqrt(x) for x in norms], length

    scores = []
    for candidate, refs in zip(candidates, ref_counts, strict=True):
        vec, norm, length = vectorise(_ngrams(tokenize(candidate), n))
        total = [0.0] * n
        for ref in refs:
            vec_ref, norm_ref, length_ref = vectorise(ref)
            penalty = math.exp(-((length - length_ref) ** 2) / (2 * sigma**2))
            for k in range(n):
                value = sum(
                    min(w, vec_ref[k].get(g, 0.0)) * vec_ref[k].get(g, 0.0)
                    for g, w in vec[k].items()
                )
                if norm[k] != 0 and norm_ref[k] != 0:
                    value /= norm[k] * norm_ref[k]
                total[k] += value * penalty
        scores.append(sum(total) / n / len(refs) * 10.0)
    return scores


def cider_d(
    candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0
) -> float:
    scores = cider_d_scores(candidates, references, n, sigma)
    return sum(scores) / len(scores) if scores else 0.0


# ---------------------------------------------------------------------------------------------
# METEOR and SPICE (Java, through pycocoevalcap)


def _pycocoevalcap_dir() -> Path | None:
    spec = importlib.util.find_spec("pycocoevalcap")  # a namespace package: no __init__.py
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]) if locations else Path(spec.origin).parent


def meteor_unavailable_reason() -> str | None:
    """None when METEOR can run here, otherwise why not."""
    package = _pycocoevalcap_dir()
    if package is None:
        return "needs the PyPI package pycocoevalcap (METEOR 1.5 jar and paraphrase table)"
    if shutil.which("java") is None:
        return "needs a Java runtime (`java` on PATH) to run pycocoevalcap's METEOR 1.5 jar"
    if not (package / "meteor" / "meteor-1.5.jar").exists():
        return "pycocoevalcap is installed without meteor/meteor-1.5.jar"
    return None


def spice_unavailable_reason() -> str | None:
    """None when SPICE can run here, otherwise why not."""
    package = _pycocoevalcap_dir()
    if package is None:
        return "needs the PyPI package pycocoevalcap plus Stanford CoreNLP 3.6.0 jars"
    if shutil.which("java") is None:
        return "needs a Java runtime (`java` on PATH)"
    lib = package / "spice" / "lib"
    if (
        not (lib / "stanford-corenlp-3.6.0.jar").exists()
        or not (lib / "stanford-corenlp-3.6.0-models.jar").exists()
    ):
        return (
            "needs Stanford CoreNLP 3.6.0 jars in pycocoevalcap/spice/lib, which pycocoevalcap "
            "downloads from the internet on first use; no PyPI package ships them"
        )
    return None


def _coco_inputs(candidates, references):
    _check(candidates, references)
    res = {i: [" ".join(tokenize(c))] for i, c in enumerate(candidates)}
    gts = {i: [" ".join(tokenize(r)) for r in refs] for i, refs in enumerate(references)}
    return gts, res


def meteor(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus METEOR 1.5 (coco-caption's wrapper of the reference jar); raises
    `MetricUnavailable` when pycocoevalcap or Java is missing."""
    reason = meteor_unavailable_reason()
    if reason:
        raise MetricUnavailable(reason)
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    try:
        score, _ = scorer.compute_score(*_coco_inputs(candidates, references))
    finally:
        scorer.meteor_p.stdin.close()
        scorer.meteor_p.kill()
        scorer.meteor_p.wait()
    return float(score)


def spice(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus SPICE (coco-caption's wrapper); raises `MetricUnavailable` without its jars."""
    reason = spice_unavailable_reason()
    if reason:
        raise MetricUnavailable(reason)
    from pycocoevalcap.spice.spice import Spice  # pragma: no cover - needs jars not on PyPI

    score, _ = Spice().compute_score(*_coco_inputs(candidates, references))  # pragma: no cover
    return float(score)  # pragma: no cover


def caption_metrics(
    candidates: Sequence[str], references: Sequence[Sequence[str]], *, java_metrics: bool = True
) -> dict:
    """All captioning metrics: BLEU-1..4, ROUGE-L, CIDEr-D, and METEOR, SPICE, SPIDEr where they
    can run (`java_metrics=False` skips them). Metrics that cannot run are absent from the
    scores and listed as {"unavailable": {name: reason}}."""
    result: dict = dict(bleu(candidates, references))
    result["ROUGE-L"] = rouge_l(candidates, references)
    result["CIDEr-D"] = cider_d(candidates, references)
    unavailable = {}
    for name, function in (("METEOR", meteor), ("SPICE", spice)):
        if not java_metrics:
            unavailable[name] = "skipped (java_metrics=False)"
            continue
        try:
            result[name] = function(candidates, references)
        except (
            MetricUnavailable,
            OSError,
            ValueError,
        ) as error:  # a failed Java run is reported, not faked
            unavailable[name] = str(error) or type(error).__name__
    if "SPICE" in result:
        result["SPIDEr"] = (result["CIDEr-D"] + result["SPICE"]) / 2  # pragma: no cover
    else:
        unavailable["SPIDEr"] = "needs SPICE"
    result["unavailable"] = unavailable
    return result
