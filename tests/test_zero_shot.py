"""Zero-shot classification: metrics on hand-made scores, prompt ensembling, and the fast batched
path against the real `transformers` pipeline on a micro model.

    pytest tests/test_zero_shot.py
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slap_audio.data.builtin_data import LABELS, prompt_templates
from slap_audio.data.sources import load_audio_text_dataset
from slap_audio.eval.embed import embed_texts
from slap_audio.eval.zero_shot import (
    DEFAULT_TEMPLATE,
    agreement_rate,
    class_embeddings,
    format_prompts,
    pipeline_agreement,
    pipeline_predictions,
    zero_shot_classify,
    zero_shot_metrics,
)

CLASSES = ["bell", "drum", "hum", "rain", "siren", "wind", "buzz", "trill"]


def test_perfect_embeddings_score_one():
    classes = torch.eye(len(CLASSES))
    truth = [0, 3, 3, 5, 7, 1]
    audio = classes[truth] + 0.01  # each clip closest to its own class
    result = zero_shot_metrics(audio @ classes.T, [CLASSES[i] for i in truth], CLASSES)
    assert result.top1 == 1.0 and result.top5 == 1.0
    assert result.per_class_accuracy == {CLASSES[i]: 1.0 for i in set(truth)}
    assert np.array_equal(result.confusion, np.diag(np.bincount(truth, minlength=len(CLASSES))))
    assert result.predictions.tolist() == truth


def test_ranks_and_pessimistic_ties():
    scores = torch.tensor([
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2],  # true class 2: third -> top-5 hit only
        [0.5, 0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],  # true class 1 tied with class 0 at the top: a miss
        [0.3] * 8,  # constant: position 7, no free hit at all
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],  # true class 7: a clean hit
    ])
    labels = [CLASSES[2], CLASSES[1], CLASSES[4], CLASSES[7]]
    result = zero_shot_metrics(scores, labels, CLASSES)
    assert result.top1 == pytest.approx(1 / 4)
    assert result.top5 == pytest.approx(3 / 4)
    # a tie is predicted as the wrong class, so top-1 accuracy is the confusion matrix's trace
    assert result.predictions.tolist() == [0, 0, 0, 7]
    assert result.confusion.trace() / result.confusion.sum() == result.top1
    assert result.per_class_accuracy == {CLASSES[1]: 0.0, CLASSES[2]: 0.0, CLASSES[4]: 0.0, CLASSES[7]: 1.0}


def test_unknown_label_is_an_error_and_topk_needs_more_classes():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0]])
    result = zero_shot_metrics(scores, ["bell", "not a class"], ["bell", "drum", "hum"])
    assert result.top1 == 0.5
    assert result.top5 is None  # 3 classes: every clip would be a top-5 hit
    assert result.confusion.sum() == 1
    with pytest.raises(ValueError, match="num_clips, num_classes"):
        zero_shot_metrics(scores, ["bell"], ["bell", "drum", "hum"])


def test_agreement_rate_counts_rounding_level_ties_only():
    scores = torch.tensor([[0.5, 0.5 - 1e-7, 0.1], [0.5, 0.4, 0.1], [0.2, 0.3, 0.1]])
    classes = ["a", "b", "c"]
    assert agreement_rate(scores, ["b", "a", "b"], classes) == 1.0  # b is within 1e-7 of the best
    assert agreement_rate(scores, ["a", "b", "a"], classes) == pytest.approx(1 / 3)
    assert agreement_rate(scores, ["a", "a", "z"], classes) == pytest.approx(2 / 3)  # z: not a class


def test_templates_are_averaged_then_renormalised(micro_model, processor):
    classes = LABELS[:6]
    single = class_embeddings(micro_model, processor.tokenizer, classes, [DEFAULT_TEMPLATE])
    averaged = class_embeddings(micro_model, processor.tokenizer, classes, prompt_templates)
    assert averaged.shape == single.shape == (6, micro_model.config.projection_dim)
    torch.testing.assert_close(averaged.norm(dim=1), torch.ones(6))
    # one template: exactly that prompt's embedding
    prompts = embed_texts(micro_model, processor.tokenizer, [DEFAULT_TEMPLATE.format(c) for c in classes])
    torch.testing.assert_close(single, prompts)
    # several: the normalised mean of the per-template embeddings, which differs from one template
    per_template = torch.stack([class_embeddings(micro_model, processor.tokenizer, classes, [t])
                                for t in prompt_templates])
    torch.testing.assert_close(averaged, torch.nn.functional.normalize(per_template.mean(0), dim=1),
                               rtol=0, atol=1e-6)
    assert (averaged - single).abs().max() > 1e-3
    assert format_prompts(["hum"], ["A {}.", "{} here."]) == ["A hum.", "hum here."]
    with pytest.raises(ValueError, match="has no"):
        format_prompts(["hum"], ["no placeholder"])


@pytest.fixture(scope="module")
def builtin_clips():
    dataset = load_audio_text_dataset("builtin:test", num_clips=5, max_duration=6.0)
    return [dataset[i] for i in range(len(dataset))]


def test_fast_path_matches_pipeline_top1(micro_model, processor, builtin_clips):
    waveforms = [e["audio"]["array"] for e in builtin_clips]
    rates = [e["audio"]["sampling_rate"] for e in builtin_clips]
    # one clip as a 32 kHz stereo file would give it: the pipeline input is resampled and
    # downmixed exactly as the feature extractor does it on the fast path
    t = np.arange(32000 * 3) / 32000
    waveforms.append(np.stack([np.sin(2 * np.pi * 300 * t), 0.3 * np.sign(np.sin(2 * np.pi * 3 * t))], 1)
                     .astype(np.float32))
    rates.append(32000)
    labels = [e["label"] for e in builtin_clips] + [LABELS[0]]
    fast = zero_shot_classify(micro_model, processor, waveforms, rates, labels, LABELS, [DEFAULT_TEMPLATE])
    piped = pipeline_predictions(micro_model, waveforms, rates, LABELS, DEFAULT_TEMPLATE,
                                 tokenizer=processor.tokenizer, feature_extractor=processor.feature_extractor)
    assert piped == [LABELS[i] for i in fast.scores.argmax(1).tolist()]
    assert pipeline_agreement(micro_model, processor, waveforms, rates, LABELS, DEFAULT_TEMPLATE) == 1.0
    # the fast path is metrics over the same scores the pipeline ranks
    assert fast.top1 == zero_shot_metrics(fast.scores, labels, LABELS).top1
