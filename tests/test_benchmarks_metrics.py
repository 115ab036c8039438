"""The `evaluate` modules of eval/metrics, loaded offline with `evaluate.load(path)` in a fresh process.

    pytest tests/test_benchmarks_metrics.py
"""

from __future__ import annotations

import json

import pytest

from slap_audio.eval.caption_metrics import caption_metrics
from slap_audio.eval.metrics import METRICS, metric_path

from fresh_process import run_python

# Two clips, five captions each (captions 0-4 describe clip 0, 5-9 clip 1); SIMILARITY[j] = caption j's
# scores against [clip 0, clip 1].
CLIP_0 = [0.95, 0.85, 0.75, 0.70, 0.50, 0.90, 0.80, 0.65, 0.60, 0.55]
CLIP_1 = [0.90, 0.20, 0.30, 0.10, 0.05, 0.80, 0.70, 0.15, 0.60, 0.40]
SIMILARITY = [[a, b] for a, b in zip(CLIP_0, CLIP_1, strict=True)]
CAPTION_TO_CLIP = [0] * 5 + [1] * 5
# By hand. text→audio: captions 0-4 rank their clip first; 5-9 second (caption 8 ties 0.60 = 0.60, a tie
# counts against the query). audio→text, 0-based positions of the clip's own captions in its column:
#   clip 0: 0.95 (c0), 0.90, 0.85 (c1), 0.80, 0.75 (c2), 0.70 (c3), 0.65, 0.60, 0.55, 0.50 (c4) -> 0, 2, 4, 5, 9
#   clip 1: 0.90, 0.80 (c5), 0.70 (c6), 0.60 (c8), 0.40 (c9), 0.30, 0.20, 0.15 (c7), ... -> 1, 2, 3, 4, 7
AP_0 = (1 / 1 + 2 / 3 + 3 / 5 + 4 / 6 + 5 / 10) / 5
AP_1 = (1 / 2 + 2 / 3 + 3 / 4 + 4 / 5 + 5 / 8) / 5
EXPECTED = {
    "text_to_audio/R@1": 0.5, "text_to_audio/R@5": 1.0, "text_to_audio/R@10": 1.0,
    "text_to_audio/mAP@10": (5 * 1 + 5 * 0.5) / 10, "text_to_audio/MRR@10": 0.75, "text_to_audio/median_rank": 1.5,
    "audio_to_text/R@1": 0.5, "audio_to_text/R@5": 1.0, "audio_to_text/R@10": 1.0,
    "audio_to_text/mAP@10": (AP_0 + AP_1) / 2, "audio_to_text/MRR@10": (1 + 1 / 2) / 2,
    "audio_to_text/median_rank": 1.5,
}
CANDIDATES = ["A dog's bark (twice), then rain.", "cars pass by"]
REFERENCES = [["A dog barks twice; rain follows.", "a dog is barking then it rains"],
              ["A car's horn honks as cars pass by.", "traffic, cars passing"]]

SCRIPT = """
import json, sys
import evaluate
from slap_audio.eval.metrics import metric_path

retrieval = evaluate.load(metric_path("slap_retrieval"))
retrieval.add_batch(predictions=json.loads(sys.argv[1])[:4], references=json.loads(sys.argv[2])[:4])
retrieval.add_batch(predictions=json.loads(sys.argv[1])[4:], references=json.loads(sys.argv[2])[4:])
captioning = evaluate.load(metric_path("slap_captioning"))
print(json.dumps({"retrieval": retrieval.compute(),
                  "captioning": captioning.compute(predictions=json.loads(sys.argv[3]),
                                                   references=json.loads(sys.argv[4]), java_metrics=False)}))
"""


def test_metric_paths():
    assert [metric_path(name).rsplit("/", 1)[-1] for name in METRICS] == ["slap_retrieval.py", "slap_captioning.py"]
    with pytest.raises(ValueError, match="unknown metric"):
        metric_path("bleu")


def test_evaluate_modules_load_offline_in_a_fresh_process(tmp_path):
    run = run_python(SCRIPT, json.dumps(SIMILARITY), json.dumps(CAPTION_TO_CLIP), json.dumps(CANDIDATES),
                     json.dumps(REFERENCES), cwd=tmp_path)  # HF_HUB_OFFLINE=1
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["retrieval"] == pytest.approx(EXPECTED, abs=1e-12)
    # the same numbers and tokenizer as caption_metrics called directly
    assert result["captioning"] == caption_metrics(CANDIDATES, REFERENCES, java_metrics=False)
    assert result["captioning"]["tokenizer"] in ("ptb", "simple")
