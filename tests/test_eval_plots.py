"""Evaluation plots (eval/plots.py): each writes a non-empty PNG; PCA is deterministic."""

import numpy as np
import pytest

from slap_audio.eval import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_every_plot_writes_a_png(tmp_path):
    g = np.random.default_rng(0)
    audio, text = g.standard_normal((6, 8)), g.standard_normal((6, 8))
    labels = ["hum", "beep", "hum", "rain", "beep", "rain"]
    written = [
        plots.plot_similarity_matrix(
            audio @ text.T, tmp_path / "sim.png", row_labels=labels, col_labels=labels
        ),
        plots.plot_retrieval_examples(
            ["a low hum", "three beeps"],
            [["a low hum", "rain"], ["two beeps", "three beeps"]],
            tmp_path / "examples.png",
            hits=[[True, False], [False, True]],
            scores=np.array([[0.9, 0.2], [0.5, 0.4]]),
        ),
        plots.plot_embedding_projection(
            np.concatenate([audio, text]),
            labels * 2,
            tmp_path / "proj.png",
            markers=["audio"] * 6 + ["text"] * 6,
        ),
        plots.plot_metrics(
            {"text_to_audio/R@1": 0.5, "audio_to_text/R@1": 0.25, "unavailable": {"SPICE": "x"}},
            tmp_path / "metrics.png",
        ),
        plots.plot_training_curves(
            [
                {
                    "step": s,
                    "loss": 1 / (s + 1),
                    "contrastive_loss": 0.5 / (s + 1),
                    "epoch": 0.1 * s,
                }
                for s in range(10)
            ]
            + [{"step": 10, "eval_loss": 0.2}],
            tmp_path / "sub" / "curves.png",
        ),
        plots.plot_compared_curves(
            {"R@1": {"full": [(60, 0.01), (120, 0.03)], "contrastive": [(60, 0.02), (120, 0.04)]},
             "loss": {"full": [(10, 2.5), (20, 2.1)], "contrastive": []}},
            tmp_path / "compared.png", title="ablation",
        ),
    ]
    for path in written:
        assert path.exists() and _is_png(path), path


def test_pca_projection_is_deterministic_and_centred():
    x = np.random.default_rng(1).standard_normal((30, 5)) * [5, 2, 1, 1, 1]
    a, b = plots.pca_2d(x), plots.pca_2d(x.copy())
    assert a.shape == (30, 2) and np.array_equal(a, b)
    assert np.abs(a.mean(0)).max() < 1e-9
    assert a[:, 0].var() >= a[:, 1].var()  # first component explains most
    # the first component follows the high-variance input axis
    assert abs(np.corrcoef(a[:, 0], x[:, 0])[0, 1]) > 0.9
    with pytest.raises(ValueError):
        plots.pca_2d(np.zeros((0, 3)))
