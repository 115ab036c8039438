"""The evaluation report of `slap-eval`: the results JSON, the PNG plots and the printed table.

The JSON (one file per run, `results.json`) is what `hub_cards/` turns into the model card's
`model-index`; its key names are fixed::

    {"model": "runs/micro/slap",
     "dataset": {"name": "slap-builtin", "split": "test", "num_clips": 250,
                 "skipped": {"total": 0, "counts": {}, "examples": {}}},
     "metrics": {"retrieval": {"text_to_audio": {"R@1", "R@5", "R@10", "mAP@10"},
                               "audio_to_text": {...}},
                 "zero_shot": {"top1", "top5", "pipeline_agreement", "num_classes"},
                 "zero_shot_tasks": {"category": {"top1", "top5", "chance", "num_clips", "num_classes",
                                                  "templates"}, ...,
                                     "category_by_label": {..., "num_members"}},
                 "captioning": {"BLEU-4", "ROUGE-L", "CIDEr-D", "METEOR", "unavailable": {...}},
                 "modality_gap": 0.41,
                 "linear_probe": {"accuracy": 0.7}},
     "examples": {"captions": [{"clip_id", "generated", "references"}, ...]},   # first 10
     "versions": {"python", "torch", "transformers", "slap_audio"},
     "elapsed_seconds": 12.3}

Sections that cannot be computed are left out (captioning without `--captioner`, zero-shot and
the linear probe without labels, zero-shot tasks when none applies); a value that cannot be computed (top-5 with 5 classes or fewer,
the pipeline check when it is switched off) is `null`. Not-a-number is never written.
"""

from __future__ import annotations

import json
import math
import os
import platform
import textwrap
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slap_audio.eval.embed import EmbeddedSet
from slap_audio.eval.plots import (
    plot_embedding_projection,
    plot_metrics,
    plot_retrieval_examples,
    plot_similarity_matrix,
)
from slap_audio.eval.retrieval import top_k

RESULTS_FILE = "results.json"
RETRIEVAL_KEYS = ("R@1", "R@5", "R@10", "mAP@10")  # the reported subset of `retrieval_metrics`
CAPTION_KEYS = ("BLEU-4", "ROUGE-L", "CIDEr-D", "METEOR", "SPICE", "SPIDEr")  # reported when computed
NUM_CAPTION_EXAMPLES = 10
SIMILARITY_CLIPS = 32  # clips (and their first captions) in the similarity matrix
RETRIEVAL_QUERIES = 5  # caption queries shown in the retrieval-examples plot, top 5 each


def versions() -> dict[str, str]:
    """Versions of Python and of the packages behind the numbers."""
    import transformers

    try:
        slap = metadata.version("slap-audio")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        slap = "unknown"
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "slap_audio": slap}


def retrieval_section(flat: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """`retrieval_metrics` output (`"text_to_audio/R@1"`, ...) → the JSON's nested section."""
    return {direction: {key: flat[f"{direction}/{key}"] for key in RETRIEVAL_KEYS}
            for direction in ("text_to_audio", "audio_to_text")}


def captioning_section(scores: Mapping[str, Any]) -> dict[str, Any]:
    """`caption_metrics` output → the JSON's section: the headline metrics that ran, plus
    `unavailable` ({name: reason}) for those that could not."""
    section = {key: scores[key] for key in CAPTION_KEYS if key in scores}
    section["unavailable"] = dict(scores.get("unavailable", {}))
    return section


def json_safe(value: Any) -> Any:
    """Plain JSON values: numpy/torch scalars to Python numbers, NaN/Inf to None."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.generic, torch.Tensor)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_results(results: Mapping[str, Any], output_dir: str | os.PathLike) -> Path:
    """Write the results JSON into `output_dir` and return its path."""
    path = Path(output_dir) / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(results), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def flat_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of the metrics section as `"retrieval/text_to_audio/R@1": value`."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_metrics(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            if not key.startswith("num_"):
                out[name] = float(value)
    return out


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def tasks_table(tasks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Lines of the zero-shot tasks table: top-1 and top-5 beside chance, clips and classes."""
    head = "zero-shot task"
    width = max(len(head), *(len(name) for name in tasks))
    lines = [f"{head:<{width}}  {'top1':>8}  {'top5':>8}  {'chance':>8}  {'clips':>6}  {'classes':>7}"]
    for name, task in tasks.items():
        lines.append(f"{name:<{width}}  {_score(task['top1']):>8}  {_score(task['top5']):>8}  "
                     f"{_score(task['chance']):>8}  {task['num_clips']:>6}  {task['num_classes']:>7}")
    return lines


def results_table(results: Mapping[str, Any]) -> str:
    """A short plain-text table of the metrics, for the end of a run (zero-shot tasks in a table
    of their own)."""
    metrics = dict(results.get("metrics", {}))
    tasks = metrics.pop("zero_shot_tasks", {})
    rows = [(name, f"{value:.4f}") for name, value in flat_metrics(metrics).items()]
    dataset = results.get("dataset", {})
    head = (f"{results.get('model')} on {dataset.get('name')}:{dataset.get('split')} "
            f"({dataset.get('num_clips')} clips, {dataset.get('skipped', {}).get('total', 0)} skipped)")
    width = max((len(name) for name, _ in rows), default=10)
    lines = [head, "-" * (width + 10)] + [f"{name:<{width}}  {value:>8}" for name, value in rows]
    if tasks:
        lines += ["", *tasks_table(tasks)]
    return "\n".join(lines)


def plot_confusion_matrix(confusion: np.ndarray, classes: Sequence[str], path: str | os.PathLike,
                          title: str = "zero-shot confusion matrix") -> Path:
    """Heatmap of a confusion matrix (rows: true class with its recall, columns: prediction)."""
    from matplotlib.figure import Figure

    confusion = np.asarray(confusion)
    size = min(3 + 0.3 * len(classes), 16)
    figure = Figure(figsize=(size + 1, size), dpi=100, layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(confusion, cmap="Blues", aspect="auto", interpolation="nearest")
    figure.colorbar(image, ax=ax)
    totals = confusion.sum(1)
    recall = [f"{c} ({confusion[i, i] / totals[i]:.2f})" if totals[i] else f"{c} (-)" for i, c in enumerate(classes)]
    ax.set_yticks(range(len(classes)), recall, fontsize=6)
    ax.set_xticks(range(len(classes)), list(classes), fontsize=6, rotation=90)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (accuracy)")
    ax.set_title(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def write_plots(output_dir: str | os.PathLike, embedded: EmbeddedSet, clip_ids: Sequence[str],
                metrics: Mapping[str, Any], zero_shot=None) -> list[Path]:
    """The run's PNGs: similarity matrix, retrieval examples, embedding projection, metric bars and
    (with a `ZeroShotResult`) the zero-shot confusion matrix."""
    output_dir = Path(output_dir)
    first_caption = np.searchsorted(embedded.caption_to_audio, np.arange(len(clip_ids)))  # (num_clips,)
    shown = first_caption[:SIMILARITY_CLIPS]
    short = [textwrap.shorten(embedded.captions[j], 40) for j in first_caption]
    paths = [plot_similarity_matrix(
        embedded.audio[: len(shown)] @ embedded.text[shown].T, output_dir / "similarity_matrix.png",
        row_labels=[str(c) for c in clip_ids[: len(shown)]], col_labels=short[: len(shown)],
        title="audio × first caption (cosine)")]

    queries = first_caption[:RETRIEVAL_QUERIES]
    scores, ranked = top_k(embedded.text[queries], embedded.audio, 5)
    results = [[f"{clip_ids[i]}: {short[i]}" for i in row.tolist()] for row in ranked]
    hits = [[i == embedded.caption_to_audio[q] for i in row.tolist()] for q, row in zip(queries, ranked, strict=True)]
    paths.append(plot_retrieval_examples([embedded.captions[q] for q in queries], results,
                                         output_dir / "retrieval_examples.png", hits=hits, scores=scores,
                                         title="text → audio retrieval, top 5"))

    labels = [str(label) if label is not None else "(no label)" for label in embedded.labels]
    text_labels = [labels[i] for i in embedded.caption_to_audio]
    paths.append(plot_embedding_projection(
        torch.cat([embedded.audio, embedded.text]), labels + text_labels, output_dir / "embedding_projection.png",
        markers=["audio"] * len(labels) + ["text"] * len(text_labels),
        title="audio (●) and caption (▲) embeddings, PCA, coloured by label"))
    paths.append(plot_metrics(flat_metrics(metrics), output_dir / "metrics.png", title="evaluation metrics"))
    if zero_shot is not None and zero_shot.num_classes:
        paths.append(plot_confusion_matrix(zero_shot.confusion, zero_shot.classes,
                                           output_dir / "confusion_matrix.png"))
    return paths
