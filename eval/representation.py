"""Representation diagnostics (SPEC §6): the modality gap and a linear probe.

- `modality_gap`: Euclidean distance between the centroids of the L2-normalised audio and
  text embeddings (Liang et al., 2022, "Mind the Gap"; used by Siamese SLAP). 0 means the two
  modalities occupy the same region of the sphere; at most 2.
- `linear_probe`: multinomial logistic regression on frozen embeddings, trained full-batch with
  L-BFGS from zero weights (like scikit-learn's `LogisticRegression(solver="lbfgs")`), so it has
  no randomness: the same inputs give the same accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def _normalised(x) -> torch.Tensor:
    x = (
        torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        .detach()
        .to(torch.float64)
        .cpu()
    )
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"expected a non-empty (items, dim) array, got shape {tuple(x.shape)}")
    return torch.nn.functional.normalize(x, dim=1)


def modality_gap(audio_embeds, text_embeds) -> float:
    """||mean(normalise(audio)) - mean(normalise(text))||_2 (inputs are re-normalised)."""
    audio, text = _normalised(audio_embeds), _normalised(text_embeds)
    if audio.shape[1] != text.shape[1]:
        raise ValueError("audio and text embeddings differ in dimension")
    return float(torch.linalg.vector_norm(audio.mean(0) - text.mean(0)))


def linear_probe(
    train_embeds,
    train_labels: Sequence,
    test_embeds,
    test_labels: Sequence,
    *,
    weight_decay: float = 1e-3,
    max_iter: int = 500,
    normalize: bool = True,
) -> dict[str, float]:
    """Fit logistic regression on (train_embeds, train_labels), report accuracy on the test set.

    Labels may be strings or integers; classes are the sorted distinct training labels (a test
    label never seen in training counts as an error). Loss: mean cross-entropy plus
    `weight_decay / 2 * ||W||^2` (the bias is not decayed). Returns `accuracy`,
    `train_accuracy` and `num_classes`."""
    train_x = (
        _normalised(train_embeds)
        if normalize
        else torch.as_tensor(np.asarray(train_embeds), dtype=torch.float64)
    )
    test_x = (
        _normalised(test_embeds)
        if normalize
        else torch.as_tensor(np.asarray(test_embeds), dtype=torch.float64)
    )
    train_labels, test_labels = [_plain(y) for y in train_labels], [_plain(y) for y in test_labels]
    if len(train_labels) != len(train_x) or len(test_labels) != len(test_x):
        raise ValueError("one label per embedding is needed")
    classes = sorted(set(train_labels))
    index = {c: i for i, c in enumerate(classes)}
    train_y = torch.tensor([index[y] for y in train_labels])
    test_y = torch.tensor([index.get(y, -1) for y in test_labels])

    weight = torch.zeros(train_x.shape[1], len(classes), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(train_x @ weight + bias, train_y)
        loss = loss + 0.5 * weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    if len(classes) > 1:
        optimizer.step(closure)
    with torch.no_grad():
        train_pred = (train_x @ weight + bias).argmax(1)
        test_pred = (test_x @ weight + bias).argmax(1)
    return {
        "accuracy": float((test_pred == test_y).double().mean()) if len(test_y) else float("nan"),
        "train_accuracy": float((train_pred == train_y).double().mean()),
        "num_classes": len(classes),
    }


def _plain(label):
    """numpy/torch scalars -> Python scalars so that 3, np.int64(3) and tensor(3) are one class."""
    return label.item() if hasattr(label, "item") else label
