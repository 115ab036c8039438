"""SLAP's metrics as Hugging Face `evaluate` modules, loadable offline from their file path.

    import evaluate
    from slap_audio.eval.metrics import metric_path

    retrieval = evaluate.load(metric_path("slap_retrieval"))
    retrieval.compute(predictions=similarity_rows, references=clip_of_each_caption)
    captioning = evaluate.load(metric_path("slap_captioning"))
    captioning.compute(predictions=["a dog barks"], references=[["a dog is barking", "barking"]])

- `slap_retrieval`: text→audio and audio→text R@1/5/10, mAP@10 and MRR@10 (`eval/retrieval.py`)
  from a caption-by-clip similarity matrix, one row per caption.
- `slap_captioning`: BLEU-1..4, ROUGE-L, CIDEr-D, METEOR where Java runs, with coco-caption's PTB
  tokenisation where Java runs (`eval/caption_metrics.py`); the result names the tokenizer.

The modules import `slap_audio`, so it must be installed where they run. `evaluate.load` with a
path never touches the network (the Hub's metric hub needs it; SPEC §6).
"""

from __future__ import annotations

from pathlib import Path

METRICS = ("slap_retrieval", "slap_captioning")


def metric_path(name: str) -> str:
    """The file `evaluate.load` takes for the metric `name` (one of `METRICS`)."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose one of {list(METRICS)}")
    return str(Path(__file__).with_name(f"{name}.py"))
