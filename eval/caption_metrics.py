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

Tokenisation, chosen once per call of `caption_metrics` (`tokenizer=`) and recorded in its result:
- `"ptb"`: coco-caption's own, the Stanford PTBTokenizer (CoreNLP 3.4.1 jar shipped in
  `pycocoevalcap`, run with `java -preserveLines -lowerCase`), then coco-caption's punctuation
  tokens removed. This is what published captioning tables use; it needs Java and
  `pycocoevalcap` (`ptb_tokenize`). Like coco-caption, it keeps brackets as `-lrb-` / `-rrb-`.
- `"simple"` (`tokenize`): lowercase, then runs of letters and digits; everything else
  (punctuation, hyphens, apostrophes) separates tokens. Dependency-free; close to, but not
  always equal to, PTB ("dog's" is `dog s` here, `dog 's` there).
- `"auto"` (default): PTB where it can run, otherwise simple.
The metric functions take a `tokenizer` callable (default `tokenize`); `caption_metrics` tokenises
the whole corpus once and passes `str.split`.

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
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

_TOKEN = re.compile(r"[a-z0-9]+")
PTB, SIMPLE, AUTO = "ptb", "simple", "auto"  # the `tokenizer` choices of `caption_metrics`
PTB_JAR = Path("tokenizer") / "stanford-corenlp-3.4.1.jar"  # inside pycocoevalcap
Tokenizer = Callable[[str], list[str]]


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
    candidates: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 4,
    tokenizer: Tokenizer = tokenize,
) -> dict[str, float]:
    """Corpus BLEU-1..max_n as in coco-caption (`BleuScorer.compute_score(option="closest")`)."""
    _check(candidates, references)
    tiny, small = 1e-15, 1e-9
    guess, correct = [0] * max_n, [0] * max_n
    test_length = ref_length = 0
    for candidate, refs in zip(candidates, references, strict=True):
        tokens = tokenizer(candidate)
        ref_tokens = [tokenizer(r) for r in refs]
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
    candidates: Sequence[str], references: Sequence[Sequence[str]], beta: float = 1.2,
    tokenizer: Tokenizer = tokenize,
) -> list[float]:
    """Per-candidate ROUGE-L F-measure as in coco-caption's `Rouge.calc_score`."""
    _check(candidates, references)
    scores = []
    for candidate, refs in zip(candidates, references, strict=True):
        tokens = tokenizer(candidate)
        if not tokens:
            scores.append(0.0)
            continue
        precision = recall = 0.0
        for ref in refs:
            ref_tokens = tokenizer(ref)
            common = _lcs(ref_tokens, tokens)
            precision = max(precision, common / len(tokens))
            recall = max(recall, common / len(ref_tokens) if ref_tokens else 0.0)
        if precision > 0 and recall > 0:
            scores.append((1 + beta**2) * precision * recall / (recall + beta**2 * precision))
        else:
            scores.append(0.0)
    return scores


def rouge_l(
    candidates: Sequence[str], references: Sequence[Sequence[str]], beta: float = 1.2,
    tokenizer: Tokenizer = tokenize,
) -> float:
    scores = rouge_l_scores(candidates, references, beta, tokenizer)
    return sum(scores) / len(scores) if scores else 0.0


# ---------------------------------------------------------------------------------------------
# CIDEr-D


def cider_d_scores(
    candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0,
    tokenizer: Tokenizer = tokenize,
) -> list[float]:
    """Per-candidate CIDEr-D as in coco-caption's `CiderScorer.compute_score`."""
    _check(candidates, references)
    ref_counts = [[_ngrams(tokenizer(r), n) for r in refs] for refs in references]
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
        vec, norm, length = vectorise(_ngrams(tokenizer(candidate), n))
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
    candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0,
    tokenizer: Tokenizer = tokenize,
) -> float:
    scores = cider_d_scores(candidates, references, n, sigma, tokenizer)
    return sum(scores) / len(scores) if scores else 0.0


# ---------------------------------------------------------------------------------------------
# Java: the PTB tokenizer, METEOR and SPICE (through pycocoevalcap)


def _pycocoevalcap_dir() -> Path | None:
    spec = importlib.util.find_spec("pycocoevalcap")  # a namespace package: no __init__.py
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]) if locations else Path(spec.origin).parent


def _java_unavailable_reason(jar: Path, what: str) -> str | None:
    """None when `java` and pycocoevalcap's `jar` (a path inside the package) are here."""
    package = _pycocoevalcap_dir()
    if package is None:
        return f"needs the PyPI package pycocoevalcap ({what})"
    if shutil.which("java") is None:
        return f"needs a Java runtime (`java` on PATH) to run pycocoevalcap's {what}"
    if not (package / jar).exists():
        return f"pycocoevalcap is installed without {jar.as_posix()}"
    return None


def ptb_unavailable_reason() -> str | None:
    """None when coco-caption's PTB tokenizer can run here, otherwise why not."""
    return _java_unavailable_reason(PTB_JAR, "Stanford PTBTokenizer jar")


def meteor_unavailable_reason() -> str | None:
    """None when METEOR can run here, otherwise why not."""
    return _java_unavailable_reason(Path("meteor") / "meteor-1.5.jar", "METEOR 1.5 jar and paraphrase table")


def spice_unavailable_reason() -> str | None:
    """None when SPICE can run here, otherwise why not."""
    reason = _java_unavailable_reason(Path("spice") / "spice-1.0.jar", "SPICE 1.0 jar")
    if reason:
        return reason
    lib = _pycocoevalcap_dir() / "spice" / "lib"
    if (
        not (lib / "stanford-corenlp-3.6.0.jar").exists()
        or not (lib / "stanford-corenlp-3.6.0-models.jar").exists()
    ):
        return (
            "needs Stanford CoreNLP 3.6.0 jars in pycocoevalcap/spice/lib, which pycocoevalcap "
            "downloads from the internet on first use; no PyPI package ships them"
        )
    return None


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """coco-caption's tokenisation of each text, tokens joined by spaces: one run of the Stanford
    PTBTokenizer over all texts (`-preserveLines -lowerCase`, one text per line), then the
    punctuation tokens coco-caption drops (`pycocoevalcap.tokenizer.ptbtokenizer.PUNCTUATIONS`).

    Unlike pycocoevalcap's wrapper, the texts go to a temporary folder, not into the installed
    package. Raises `MetricUnavailable` without Java or pycocoevalcap, `RuntimeError` when the
    tokenizer fails.
    """
    reason = ptb_unavailable_reason()
    if reason:
        raise MetricUnavailable(reason)
    from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS

    if not texts:
        return []
    jar = _pycocoevalcap_dir() / PTB_JAR
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "captions.txt"
        # one line per text: every line break the tokenizer knows (\u2028, form feed...) becomes a space
        source.write_text("\n".join(" ".join(t.splitlines()) for t in texts), encoding="utf-8")
        run = subprocess.run(
            ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-encoding", "utf-8",
             "-preserveLines", "-lowerCase", str(source)],
            capture_output=True, check=False, timeout=600)
    lines = run.stdout.decode("utf-8").split("\n")
    if run.returncode != 0 or len(lines) < len(texts):
        raise RuntimeError(f"the PTB tokenizer failed (exit {run.returncode}, {len(lines)} lines for "
                           f"{len(texts)} texts): {run.stderr.decode('utf-8', 'replace')[-500:]}")
    return [" ".join(w for w in line.rstrip().split(" ") if w and w not in PUNCTUATIONS)
            for line in lines[: len(texts)]]


def tokenize_corpus(
    candidates: Sequence[str], references: Sequence[Sequence[str]], tokenizer: str = AUTO
) -> tuple[str, list[str], list[list[str]]]:
    """(tokenizer used, candidates, references) with every text tokenised by `tokenizer` (`"ptb"`,
    `"simple"` or `"auto"`) and its tokens joined by spaces, ready for `str.split`.

    Raises `MetricUnavailable` for `"ptb"` where it cannot run, `ValueError` for another name."""
    _check(candidates, references)
    if tokenizer not in (PTB, SIMPLE, AUTO):
        raise ValueError(f"tokenizer must be one of {PTB!r}, {SIMPLE!r}, {AUTO!r}, got {tokenizer!r}")
    if tokenizer == AUTO:
        tokenizer = PTB if ptb_unavailable_reason() is None else SIMPLE
    texts = list(candidates) + [r for refs in references for r in refs]
    tokens = ptb_tokenize(texts) if tokenizer == PTB else [" ".join(tokenize(t)) for t in texts]
    out_candidates, rest = tokens[: len(candidates)], iter(tokens[len(candidates) :])
    out_references = [[next(rest) for _ in refs] for refs in references]
    return tokenizer, out_candidates, out_references


def _coco_inputs(candidates, references, tokenizer: Tokenizer):
    _check(candidates, references)
    res = {i: [" ".join(tokenizer(c))] for i, c in enumerate(candidates)}
    gts = {i: [" ".join(tokenizer(r)) for r in refs] for i, refs in enumerate(references)}
    return gts, res


def meteor(
    candidates: Sequence[str], references: Sequence[Sequence[str]], tokenizer: Tokenizer = tokenize
) -> float:
    """Corpus METEOR 1.5 (coco-caption's wrapper of the reference jar); raises
    `MetricUnavailable` when pycocoevalcap or Java is missing."""
    reason = meteor_unavailable_reason()
    if reason:
        raise MetricUnavailable(reason)
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    try:
        score, _ = scorer.compute_score(*_coco_inputs(candidates, references, tokenizer))
    finally:
        scorer.meteor_p.stdin.close()
        scorer.meteor_p.kill()
        scorer.meteor_p.wait()
    return float(score)


def spice(
    candidates: Sequence[str], references: Sequence[Sequence[str]], tokenizer: Tokenizer = tokenize
) -> float:
    """Corpus SPICE (coco-caption's wrapper); raises `MetricUnavailable` without its jars."""
    reason = spice_unavailable_reason()
    if reason:
        raise MetricUnavailable(reason)
    from pycocoevalcap.spice.spice import Spice  # pragma: no cover - needs jars not on PyPI

    score, _ = Spice().compute_score(*_coco_inputs(candidates, references, tokenizer))  # pragma: no cover
    return float(score)  # pragma: no cover


def caption_metrics(
    candidates: Sequence[str], references: Sequence[Sequence[str]], *, java_metrics: bool = True,
    tokenizer: str = AUTO,
) -> dict:
    """All captioning metrics: BLEU-1..4, ROUGE-L, CIDEr-D, and METEOR, SPICE, SPIDEr where they
    can run (`java_metrics=False` skips them), on the corpus tokenised once by `tokenizer`
    (`tokenize_corpus`). The result names the tokenizer used (`"tokenizer": "ptb"` or
    `"simple"`); metrics that cannot run are absent from the scores and listed as
    {"unavailable": {name: reason}}."""
    used, candidates, references = tokenize_corpus(candidates, references, tokenizer)
    result: dict = dict(bleu(candidates, references, tokenizer=str.split))
    result["ROUGE-L"] = rouge_l(candidates, references, tokenizer=str.split)
    result["CIDEr-D"] = cider_d(candidates, references, tokenizer=str.split)
    unavailable = {}
    for name, function in (("METEOR", meteor), ("SPICE", spice)):
        if not java_metrics:
            unavailable[name] = "skipped (java_metrics=False)"
            continue
        try:
            result[name] = function(candidates, references, tokenizer=str.split)
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
    result["tokenizer"] = used
    result["unavailable"] = unavailable
    return result
