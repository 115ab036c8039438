"""Modality gap and linear probe (eval/representation.py)."""

import math

import numpy as np
import pytest
import torch

from slap_audio.eval.representation import linear_probe, modality_gap


def test_modality_gap_hand_worked():
    # all audio at e1, all text at e2: centroids e1 and e2, distance sqrt(2)
    audio, text = np.tile([1.0, 0.0], (5, 1)), np.tile([0.0, 1.0], (7, 1))
    assert modality_gap(audio, text) == pytest.approx(math.sqrt(2))
    # inputs are normalised first: scaling changes nothing; identical sets have no gap
    assert modality_gap(3 * audio, 0.5 * text) == pytest.approx(math.sqrt(2))
    x = torch.randn(20, 8, generator=torch.Generator().manual_seed(0))
    assert modality_gap(x, x) == pytest.approx(0.0, abs=1e-12)
    # audio at e1 and -e1 (centroid 0), text at e1: gap 1
    assert modality_gap([[1.0, 0.0], [-1.0, 0.0]], [[1.0, 0.0]]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        modality_gap(np.ones((2, 3)), np.ones((2, 4)))


def _clusters(n_per_class, seed, noise=0.3):
    g = np.random.default_rng(seed)
    centres = np.eye(4, 16) * 3
    x = np.concatenate([c + noise * g.standard_normal((n_per_class, 16)) for c in centres])
    y = [name for name in ("hum", "beep", "rain", "wind") for _ in range(n_per_class)]
    return x, y


def test_linear_probe_separable_and_deterministic():
    train_x, train_y = _clusters(20, 0)
    test_x, test_y = _clusters(10, 1)
    first = linear_probe(train_x, train_y, test_x, test_y)
    assert first["accuracy"] == 1.0 and first["train_accuracy"] == 1.0 and first["num_classes"] == 4
    assert linear_probe(train_x, train_y, test_x, test_y) == first  # no randomness


def test_linear_probe_chance_on_noise_and_unseen_labels():
    g = np.random.default_rng(2)
    x, y = g.standard_normal((200, 32)), list(g.integers(0, 4, 200))
    result = linear_probe(x[:100], y[:100], x[100:], y[100:])
    assert result["accuracy"] < 0.45  # chance is 0.25
    # a test label never seen in training counts as an error
    train_x, train_y = _clusters(10, 3)
    result = linear_probe(train_x, train_y, train_x[:2], ["hum", "not-a-class"])
    assert result["accuracy"] == 0.5
