"""`evaluate` module: cross-modal retrieval metrics of `slap_audio.eval.retrieval` (SPEC §6).

    retrieval = evaluate.load(slap_audio.eval.metrics.metric_path("slap_retrieval"))
    retrieval.compute(predictions=scores, references=caption_to_audio)

Each example is one caption: `predictions` its similarity to every clip (a row of the
caption × clip matrix, the same clips in the same order for every caption), `references` the
index of the clip it describes. Clips may have several captions (AudioCaps and Clotho: 5).
Returns `text_to_audio/R@1`, ..., `audio_to_text/mAP@10`, `.../MRR@10`, `.../median_rank`, as
`retrieval_metrics` computes them from the same matrix (ties counted against the query).
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np
import torch

from slap_audio.eval.retrieval import retrieval_metrics

_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    predictions: per caption, its similarity to each of the N clips (N floats).
    references: per caption, the index (0..N-1) of its clip.
    map_k: cut-off of mAP and MRR (default 10).
Returns:
    {"text_to_audio/R@1": ..., "text_to_audio/R@5", "text_to_audio/R@10", "text_to_audio/mAP@10",
     "text_to_audio/MRR@10", "text_to_audio/median_rank", and the same for "audio_to_text/"}.
"""
_CITATION = """@inproceedings{laionclap2023, title={Large-scale Contrastive Language-Audio Pretraining with
Feature Fusion and Keyword-to-Caption Augmentation}, author={Wu, Yusong and Chen, Ke and Zhang, Tianyu and
Hui, Yuchen and Berg-Kirkpatrick, Taylor and Dubnov, Shlomo}, booktitle={ICASSP}, year={2023}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SlapRetrieval(evaluate.Metric):
    """Text→audio and audio→text R@k, mAP@10 and MRR@10 from a caption × clip similarity matrix."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation=_CITATION, inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("float64")),
                                        "references": datasets.Value("int64")}))

    def _compute(self, predictions, references, map_k: int = 10) -> dict[str, float]:
        scores = torch.as_tensor(np.asarray(predictions, dtype=np.float64))  # (num_captions, num_clips)
        if scores.ndim != 2:
            raise ValueError("every prediction must hold one score per clip, the same clips for every caption")
        # audio embeddings = the identity: text @ audio.T is the matrix itself, audio @ text.T its transpose
        identity = torch.eye(scores.shape[1], dtype=scores.dtype)
        return retrieval_metrics(identity, scores, np.asarray(references), map_k=map_k)
