"""Evaluation plots (SPEC §6) written as PNG files with matplotlib.

Figures are built with `matplotlib.figure.Figure` and saved through the Agg canvas, so nothing
touches pyplot's global state or the user's backend. Each function takes plain arrays / lists,
writes one file and returns its path:

- `plot_similarity_matrix`: audio × text similarity heatmap (the diagonal is the matched pair).
- `plot_retrieval_examples`: a text table of queries and their top-k results, hits marked.
- `plot_embedding_projection`: 2-D PCA of embeddings, coloured by class.
- `plot_metrics`: bar chart of a metrics dict (e.g. `retrieval_metrics` output).
- `plot_training_curves`: curves from a list of log dicts (the Trainer's `state.log_history`).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def plot_similarity_matrix(
    similarity,
    path: str | os.PathLike,
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str = "audio–text similarity",
) -> Path:
    """Heatmap of a (rows, cols) similarity matrix, e.g. audio embeddings @ text embeddings.T."""
    sim = _numpy(similarity)
    figure = _figure(min(2 + 0.3 * sim.shape[1], 16), min(2 + 0.3 * sim.shape[0], 16))
    ax = figure.subplots()
    image = ax.imshow(sim, cmap="viridis", aspect="auto", interpolation="nearest")
    figure.colorbar(image, ax=ax)
    for labels, setter, ticks in (
        (row_labels, ax.set_yticks, sim.shape[0]),
        (col_labels, ax.set_xticks, sim.shape[1]),
    ):
        if labels is not None:
            setter(range(ticks), [textwrap.shorten(str(s), 40) for s in labels], fontsize=6)
    if col_labels is not None:
        ax.tick_params(axis="x", labelrotation=90)
    ax.set_xlabel("text")
    ax.set_ylabel("audio")
    ax.set_title(title)
    return _save(figure, path)


def plot_retrieval_examples(
    queries: Sequence[str],
    results: Sequence[Sequence[str]],
    path: str | os.PathLike,
    *,
    hits: Sequence[Sequence[bool]] | None = None,
    scores=None,
    title: str = "retrieval examples",
) -> Path:
    """One block per query: the query, then its ranked results (✓ marks a relevant result)."""
    lines: list[tuple[str, str]] = []
    for q, (query, ranked) in enumerate(zip(queries, results, strict=True)):
        lines.append((f"Q{q + 1}: {textwrap.shorten(query, 110)}", "black"))
        for r, result in enumerate(ranked):
            hit = hits is not None and hits[q][r]
            score = f" ({float(_numpy(scores)[q, r]):.3f})" if scores is not None else ""
            mark = "✓" if hit else " "
            lines.append(
                (
                    f"   {mark} {r + 1}. {textwrap.shorten(str(result), 100)}{score}",
                    "green" if hit else "dimgray",
                )
            )
        lines.append(("", "black"))
    figure = _figure(11, 0.6 + 0.22 * len(lines))
    ax = figure.subplots()
    ax.axis("off")
    ax.set_title(title, loc="left")
    for i, (text, colour) in enumerate(lines):
        ax.text(
            0.0,
            1.0 - (i + 0.5) / max(1, len(lines)),
            text,
            color=colour,
            family="monospace",
            fontsize=8,
            va="center",
            transform=ax.transAxes,
        )
    return _save(figure, path)


def pca_2d(embeddings) -> np.ndarray:
    """Project (N, D) embeddings onto their two leading principal components (deterministic
    signs: each component's largest-magnitude loading is positive)."""
    x = _numpy(embeddings)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"expected a non-empty (items, dim) array, got shape {x.shape}")
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    components = vt[:2]
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(1)])
    projection = x @ (components * signs[:, None]).T
    return np.pad(projection, ((0, 0), (0, 2 - projection.shape[1])))


def plot_embedding_projection(
    embeddings,
    labels: Sequence,
    path: str | os.PathLike,
    *,
    title: str = "embeddings (PCA)",
    markers: Sequence[str] | None = None,
) -> Path:
    """Scatter of the 2-D PCA projection coloured by label; `markers` (e.g. "audio"/"text" per
    point) chooses the marker shape, to show the modality gap."""
    points = pca_2d(embeddings)
    labels = [str(label) for label in labels]
    classes = sorted(set(labels))
    from matplotlib import colormaps

    colours = colormaps["tab20"](np.linspace(0, 1, max(len(classes), 1)))
    figure = _figure(8, 6)
    ax = figure.subplots()
    shapes = dict(zip(sorted(set(markers or [])), "o^sDv", strict=False))  # up to five groups
    for colour, name in zip(colours[: len(classes)], classes, strict=True):
        for group in sorted(set(markers or [""])):
            keep = [
                i
                for i, label in enumerate(labels)
                if label == name and (markers is None or markers[i] == group)
            ]
            if keep:
                ax.scatter(
                    points[keep, 0],
                    points[keep, 1],
                    s=14,
                    color=colour,
                    marker=shapes.get(group, "o"),
                    label=name if group == sorted(set(markers or [""]))[0] else None,
                    alpha=0.8,
                )
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title)
    if classes:
        ax.legend(fontsize=6, ncols=2, loc="best", markerscale=1.2)
    return _save(figure, path)


def plot_metrics(
    metrics: Mapping[str, float],
    path: str | os.PathLike,
    *,
    title: str = "metrics",
    keys: Sequence[str] | None = None,
) -> Path:
    """Horizontal bar chart of numeric metrics (non-numeric entries are skipped)."""
    keys = [
        k
        for k in (keys or metrics)
        if isinstance(metrics.get(k), (int, float)) and not isinstance(metrics.get(k), bool)
    ]
    values = [float(metrics[k]) for k in keys]
    figure = _figure(8, 0.8 + 0.3 * max(1, len(keys)))
    ax = figure.subplots()
    ax.barh(range(len(keys)), values, color="tab:blue")
    ax.set_yticks(range(len(keys)), keys, fontsize=8)
    ax.invert_yaxis()
    for i, value in enumerate(values):
        ax.text(value, i, f" {value:.3f}", va="center", fontsize=7)
    ax.set_title(title)
    return _save(figure, path)


def plot_training_curves(
    log_history: Sequence[Mapping],
    path: str | os.PathLike,
    *,
    keys: Sequence[str] | None = None,
    x_key: str = "step",
    title: str = "training",
) -> Path:
    """One panel per logged quantity (e.g. loss, contrastive_loss, eval_loss, learning_rate)
    against `x_key`, from dicts such as `Trainer.state.log_history`."""
    skip = {x_key, "epoch", "step", "total_flos", "train_runtime"}
    if keys is None:
        keys = sorted(
            {
                k
                for entry in log_history
                for k, v in entry.items()
                if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)
            }
        )
    columns = min(3, max(1, len(keys)))
    rows = max(1, -(-len(keys) // columns))
    figure = _figure(4 * columns, 3 * rows)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for ax, key in zip(axes, keys, strict=False):  # spare axes are hidden below
        points = [
            (entry[x_key], entry[key]) for entry in log_history if key in entry and x_key in entry
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="." if len(points) < 50 else None)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel(x_key, fontsize=8)
    for ax in axes[len(keys) :]:
        ax.axis("off")
    figure.suptitle(title)
    return _save(figure, path)


def plot_compared_curves(
    panels: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]],
    path: str | os.PathLike,
    *,
    x_label: str = "step",
    title: str = "",
) -> Path:
    """One panel per quantity, one line per run: `panels[quantity][run] = [(x, y), ...]`
    (e.g. the validation R@1 of each ablation variant on shared axes)."""
    figure = _figure(5 * len(panels), 3.5)
    axes = np.atleast_1d(figure.subplots(1, len(panels), squeeze=False)).ravel()
    for ax, (quantity, runs) in zip(axes, panels.items(), strict=True):
        for run, points in runs.items():
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="." if len(points) < 50 else None, label=run)
        ax.set_title(quantity, fontsize=9)
        ax.set_xlabel(x_label, fontsize=8)
        ax.legend(fontsize=7)
    if title:
        figure.suptitle(title)
    return _save(figure, path)
