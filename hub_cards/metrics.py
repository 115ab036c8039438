"""Read the eval suite's results JSON tolerantly and turn it into Hub `model-index` entries.

The eval suite writes (every section optional)::

    {"model": "slap-tiny",
     "dataset": {"name": "slap-builtin", "split": "test"},
     "metrics": {"retrieval": {"text_to_audio": {"R@1": 0.31, "R@5": ..., "R@10": ..., "mAP@10": ...},
                               "audio_to_text": {...}},
                 "zero_shot": {"top1": 0.62, "top5": 0.93},
                 "captioning": {"BLEU-4": ..., "ROUGE-L": ..., "CIDEr-D": ...},
                 "modality_gap": 0.41},
     "versions": {"transformers": "5.23.0", ...}}

`read_metrics` also accepts flat keys (`"text_to_audio/R@1"`), spelling variants (`r1`,
`Recall@1`, `top-1`, `bleu_4`, `t2a`), numeric strings, `{"mean": x, "std": y}` leaves, and a file
without the `metrics` wrapper. Unknown sections are kept under their own name; counts
(`num_*`, `n_*`) go to `details`; values that are not finite numbers are skipped and listed in
`skipped`. Values are never rescaled: what the JSON says is what the card reports.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult

__all__ = ["SECTIONS", "EvalReport", "canonical_metric", "read_metrics"]

# section key -> (model-index task type, task name shown on the Hub and in the card)
SECTIONS: dict[str, tuple[str, str]] = {
    "text_to_audio": ("text-to-audio-retrieval", "Text-to-audio retrieval"),
    "audio_to_text": ("audio-to-text-retrieval", "Audio-to-text retrieval"),
    "zero_shot": ("zero-shot-audio-classification", "Zero-shot audio classification"),
    "captioning": ("audio-captioning", "Audio captioning"),
    "representation": ("feature-extraction", "Audio-text representation"),
}
_SECTION_ALIASES = {
    "text_to_audio": "text_to_audio", "t2a": "text_to_audio", "text2audio": "text_to_audio",
    "audio_to_text": "audio_to_text", "a2t": "audio_to_text", "audio2text": "audio_to_text",
    "zero_shot": "zero_shot", "zeroshot": "zero_shot", "zero_shot_classification": "zero_shot",
    "captioning": "captioning", "caption": "captioning", "captions": "captioning",
    "representation": "representation",
}  # fmt: skip
_META_KEYS = {"model", "dataset", "split", "versions", "config", "revision", "date", "seed"}
_HUB_ID = re.compile(r"[\w.\-]+(/[\w.\-]+)?")  # a dataset id as the Hub writes it
_COUNT = re.compile(r"^(num|n)_|_count$|^count$")
_LEAF_KEYS = ("value", "mean")  # {"mean": x, "std": y} reports x

# (pattern on the normalised name, display name, model-index metric type); `{k}` = group 1
_METRIC_PATTERNS = [
    (r"(?:r|recall)(?:_?at)?_?(\d+)", "R@{k}", "recall_at_{k}"),
    (r"(?:map|mean_average_precision)(?:_?at)?_?(\d+)", "mAP@{k}", "map_at_{k}"),
    (r"mrr(?:_?at)?_?(\d+)", "MRR@{k}", "mrr_at_{k}"),
    (r"(?:top|acc|accuracy)(?:_?at)?_?(\d+)(?:_?acc(?:uracy)?)?", "top-{k} accuracy", "top_{k}_accuracy"),
    (r"bleu_?(\d)", "BLEU-{k}", "bleu_{k}"),
    (r"bleu", "BLEU-4", "bleu_4"),
    (r"rouge_?l", "ROUGE-L", "rouge_l"),
    (r"cider_?d", "CIDEr-D", "cider_d"),
    (r"cider", "CIDEr", "cider"),
    (r"meteor", "METEOR", "meteor"),
    (r"spice", "SPICE", "spice"),
    (r"spider", "SPIDEr", "spider"),
    (r"acc|accuracy", "top-1 accuracy", "top_1_accuracy"),
    (r"modality_gap|gap", "modality gap", "modality_gap"),
]


def _norm(name: str) -> str:
    """`"Recall@1"` -> `"recall_1"`-like key: lower case, separators folded to `_`, `@` dropped."""
    name = name.strip().lower().replace("@", "_")
    return re.sub(r"[^a-z0-9]+", "_", name).strip("_")


def _slug(name: str) -> str:
    return _norm(name) or "metric"


def canonical_metric(name: str) -> tuple[str, str]:
    """(display name, model-index metric type) of a metric name, e.g. `"r1"` -> `("R@1", "recall_at_1")`.

    Unknown names keep their spelling for display and get a slug as type.
    """
    key = _norm(name)
    for pattern, display, metric_type in _METRIC_PATTERNS:
        match = re.fullmatch(pattern, key)
        if match:
            k = match.group(1) if match.groups() else ""
            return display.format(k=k), metric_type.format(k=k)
    return name, _slug(name)


def _number(value: Any) -> float | None:
    """A finite float from a JSON value, or None (bools, NaN, lists, text are not numbers)."""
    if isinstance(value, Mapping):
        for key in _LEAF_KEYS:
            if key in value:
                return _number(value[key])
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().rstrip("%"))
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    try:  # numpy / torch scalars
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass
class EvalReport:
    """Eval results as the card needs them.

    Attributes:
        model: the evaluated model's name (the `model-index` entry name), if the JSON gives one.
        dataset: `name`, `type`, `split`, `config`, `revision` of the evaluation set (strings; `type`
            defaults to a slug of `name`).
        results: section -> {display metric name: value}, in the order the JSON lists them.
            Sections: the keys of `SECTIONS`, or the JSON's own name for unknown ones.
        details: counts and other non-metric numbers (`num_clips`, ...), by `section/key`.
        versions: package versions the eval suite recorded.
        skipped: `path: reason` for each entry that was not read.
    """

    model: str | None = None
    dataset: dict[str, str] = field(default_factory=dict)
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    details: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def eval_results(self) -> list[EvalResult]:
        """One `EvalResult` per metric: task from the section, dataset from `dataset`."""
        name = self.dataset.get("name") or "evaluation set"
        dataset_type = self.dataset.get("type") or (name if _HUB_ID.fullmatch(name) else _slug(name))
        results = []
        for section, metrics in self.results.items():
            task_type, task_name = SECTIONS.get(section, (_slug(section), section.replace("_", " ")))
            for metric_name, value in metrics.items():
                results.append(
                    EvalResult(
                        task_type=task_type, task_name=task_name, dataset_type=dataset_type,
                        dataset_name=name, dataset_split=self.dataset.get("split"),
                        dataset_config=self.dataset.get("config"),
                        dataset_revision=self.dataset.get("revision"),
                        metric_type=canonical_metric(metric_name)[1], metric_name=metric_name,
                        metric_value=value,
                    )
                )  # fmt: skip
        return results


def _dataset(raw: Any) -> dict[str, str]:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping):
        return {}
    dataset = {k: str(raw[k]) for k in ("name", "type", "split", "config", "revision") if raw.get(k) is not None}
    if "name" not in dataset and "type" in dataset:
        dataset["name"] = dataset["type"]
    return dataset


def _leaves(tree: Mapping, prefix: tuple[str, ...] = ()):
    """(path parts, value) of every leaf; keys with `/` count as several levels."""
    for key, value in tree.items():
        path = prefix + tuple(p for p in str(key).split("/") if p)
        if isinstance(value, Mapping) and not any(k in value for k in _LEAF_KEYS):
            yield from _leaves(value, path)
        else:
            yield path, value


def _place(path: tuple[str, ...]) -> tuple[str, str]:
    """(section, metric name) of a leaf path like `("retrieval", "t2a", "R@1")`."""
    head = _norm(path[0])
    rest = path[1:]
    if head == "retrieval" and len(rest) >= 2 and _SECTION_ALIASES.get(_norm(rest[0])) in SECTIONS:
        head, rest = _norm(rest[0]), rest[1:]
    section = _SECTION_ALIASES.get(head)
    if head in ("modality_gap", "gap"):
        # {"modality_gap": x} or {"modality_gap": {"gap": x, "audio_norm": ...}}
        if not rest or _norm(rest[0]) in ("gap", "value", "distance", "modality_gap"):
            return "representation", canonical_metric("modality_gap")[0]
        return "representation", "modality gap/" + "/".join(rest)
    if section is None:
        section = path[0] if rest else "other"
    rest = rest or path
    name = "/".join(rest)
    display = canonical_metric(name)[0] if len(rest) == 1 else name
    return section, display


def read_metrics(source: str | Path | Mapping[str, Any]) -> EvalReport:
    """An `EvalReport` from the eval suite's JSON (a path or the parsed mapping); see the module doc.

    Raises `ValueError` when the file is not JSON or not a JSON object.
    """
    if isinstance(source, Mapping):
        data: Any = source
    else:
        path = Path(source)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(data, Mapping):
        raise ValueError(f"metrics JSON must be an object, got {type(data).__name__}")
    metrics = data.get("metrics")
    if not isinstance(metrics, Mapping):  # no wrapper: everything but the metadata is a metric
        metrics = {k: v for k, v in data.items() if k not in _META_KEYS}
    dataset = _dataset(data.get("dataset"))
    if "split" not in dataset and isinstance(data.get("split"), str):
        dataset["split"] = data["split"]
    versions = data.get("versions") if isinstance(data.get("versions"), Mapping) else {}
    model = data.get("model")
    report = EvalReport(
        model=str(model) if isinstance(model, (str, int, float)) else None,
        dataset=dataset,
        versions={str(k): str(v) for k, v in versions.items()},
    )
    for path, value in _leaves(metrics):
        where = "/".join(path)
        if _COUNT.search(_norm(path[-1])):
            if (number := _number(value)) is not None:
                report.details[where] = number
            continue
        number = _number(value)
        if number is None:
            report.skipped.append(f"{where}: not a finite number ({value!r:.40})")
            continue
        section, name = _place(path)
        report.results.setdefault(section, {})[name] = number
    return report
