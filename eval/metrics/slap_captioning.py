"""`evaluate` module: captioning metrics of `slap_audio.eval.caption_metrics` (SPEC §6).

    captioning = evaluate.load(slap_audio.eval.metrics.metric_path("slap_captioning"))
    captioning.compute(predictions=["a dog barks"], references=[["a dog is barking", "a dog barks twice"]])

Corpus BLEU-1..4, ROUGE-L, CIDEr-D as coco-caption computes them, METEOR 1.5 where Java and
pycocoevalcap are installed (SPICE where its CoreNLP jars are), on coco-caption's PTB tokenisation
where Java runs (`tokenizer="auto"`; `"ptb"` or `"simple"` to choose). The result names the
tokenizer used (`"tokenizer"`) and why any metric did not run (`"unavailable"`).
"""

from __future__ import annotations

import datasets
import evaluate

from slap_audio.eval.caption_metrics import AUTO, caption_metrics

_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    predictions: one generated caption per clip.
    references: per clip, its reference captions (at least one).
    tokenizer: "auto" (default: PTB where Java runs), "ptb" or "simple".
    java_metrics: METEOR / SPICE where they can run (default True).
Returns:
    {"BLEU-1".."BLEU-4", "ROUGE-L", "CIDEr-D", ["METEOR", "SPICE", "SPIDEr"], "tokenizer",
     "unavailable": {metric: reason}}.
"""
_CITATION = """@article{chen2015microsoft, title={Microsoft COCO Captions: Data Collection and Evaluation
Server}, author={Chen, Xinlei and Fang, Hao and Lin, Tsung-Yi and Vedantam, Ramakrishna and Gupta,
Saurabh and Doll{\\'a}r, Piotr and Zitnick, C. Lawrence}, journal={arXiv:1504.00325}, year={2015}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SlapCaptioning(evaluate.Metric):
    """coco-caption's captioning metrics, computed offline, with the tokenizer used named."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation=_CITATION, inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Sequence(datasets.Value("string"))}))

    def _compute(self, predictions, references, tokenizer: str = AUTO, java_metrics: bool = True) -> dict:
        return caption_metrics(list(predictions), [list(r) for r in references], java_metrics=java_metrics,
                               tokenizer=tokenizer)
