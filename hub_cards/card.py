"""Model cards for SLAP checkpoints and adapters: Hub metadata, `model-index` from eval results,
and a body rendered from the Jinja templates in `templates/`.

    card = render_model_card("alice/slap-tiny", config=model.config, metrics="results.json",
                             training_config=cfg, plots=["plots/similarity_matrix.png"])
    validate_card(card)                                  # local checks, no network
    validate_card(card, endpoint="https://huggingface.co")  # + the Hub's /api/validate-yaml
    card.save("README.md")

`ModelCard.validate()` always talks to the configured Hub; `validate_card` checks locally what can
be checked (the metadata parses back into `ModelCardData`, required keys, every `model-index`
result has task/dataset/metrics with name/type/value, and the eval results round-trip through
`huggingface_hub.repocard_data`), and asks `endpoint` only when given one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results
from huggingface_hub.utils import get_session, hf_raise_for_status

from .metrics import SECTIONS, EvalReport, read_metrics

__all__ = [
    "DEFAULT_TAGS",
    "CardValidationError",
    "hub_validation_errors",
    "render_adapter_card",
    "render_model_card",
    "validate_card",
]

DEFAULT_TAGS = (
    "slap", "clap", "audio", "audio-text", "zero-shot-audio-classification",
    "audio-retrieval", "contrastive-learning", "custom_code",
)  # fmt: skip
PIPELINE_TAGS = {"SlapForAudioClassification": "audio-classification"}
MODEL_CARD_KEYS = ("library_name", "pipeline_tag", "license")
ADAPTER_CARD_KEYS = ("library_name", "license", "base_model")
_FRONT_MATTER = re.compile(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", re.DOTALL)
_FRAME_SECONDS = 0.01  # 10 ms hop of the log-mel front end


class CardValidationError(ValueError):
    """The card would not validate; the message lists every problem found."""


# ----------------------------------------------------------------------------- rendering


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: (resources.files(__package__) / "templates" / name).read_text(encoding="utf-8")
        ),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined, autoescape=False,
    )  # fmt: skip


def _as_dict(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if hasattr(config, "to_dict"):
        return config.to_dict()
    return dict(config)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _results_sections(report: EvalReport | None) -> list[dict[str, str]]:
    """Markdown tables: one retrieval table (a row per direction), then one per other section."""
    if report is None:
        return []
    sections = []
    directions = [s for s in ("text_to_audio", "audio_to_text") if s in report.results]
    if directions:
        columns = list(dict.fromkeys(m for s in directions for m in report.results[s]))
        rows = [
            [SECTIONS[s][1]] + [_fmt(report.results[s][m]) if m in report.results[s] else "–" for m in columns]
            for s in directions
        ]
        sections.append({"title": "Retrieval", "table": _table(["Direction", *columns], rows)})
    for section, metrics in report.results.items():
        if section in directions:
            continue
        title = SECTIONS[section][1] if section in SECTIONS else section.replace("_", " ").capitalize()
        rows = [[name, _fmt(value)] for name, value in metrics.items()]
        sections.append({"title": title, "table": _table(["Metric", "Value"], rows)})
    return sections


def _architecture(config: Mapping[str, Any], num_parameters: int | None) -> list[str]:
    """Bullet lines describing the model, with the numbers of `config` (a `SlapConfig` dict)."""
    audio = config.get("audio_config") or {}
    text = config.get("text_config") or {}
    decoder = config.get("decoder_config") or {}
    architectures = config.get("architectures") or []
    lines = []
    if audio:
        layers, every = audio.get("num_hidden_layers", 0), max(int(audio.get("global_every", 3)), 1)
        num_global = layers // every
        window = audio.get("local_window")
        seconds = window * audio.get("patch_frames", 16) * _FRAME_SECONDS if window else None
        local = f"±{window} time columns (±{seconds:.2f} s)" if window else "a local window"
        lines.append(
            "**Audio encoder** (packed variable-duration transformer): 16 kHz log-mel (64 bins, 10 ms "
            "hop) cut into 16 × 16 patches, 25 tokens per second. Clips are never cropped or padded: "
            "a batch is packed into one sequence and attention never crosses clip boundaries. "
            f"{layers} pre-norm blocks (d = {audio.get('hidden_size')}, "
            f"{audio.get('num_attention_heads')} heads, SwiGLU MLP {audio.get('intermediate_size')}, "
            f"RMSNorm, 2-D rotary positions): {_count(layers - num_global, 'local block')} "
            f"({local}) and {_count(num_global, 'global block')} (the whole clip), in a repeating "
            "[local, local, global] pattern; "
            "attention pooling with one learned query."
        )
    if text:
        source = text.get("_name_or_path")
        lines.append(
            f"**Text encoder**: {str(text.get('model_type', 'transformer')).upper()} "
            f"({text.get('num_hidden_layers')} layers, d = {text.get('hidden_size')})"
            + (f", initialised from `{source}`" if source else "")
            + f", {config.get('text_pooling', 'attention')} pooling."
        )
    if config.get("projection_dim"):
        lines.append(
            f"**Joint space**: linear projections of both towers to {config['projection_dim']} "
            "dimensions, L2-normalised; a learned temperature scales the cosine similarities."
        )
    weights = [config.get(k) for k in ("contrastive_weight", "self_supervised_weight", "captioning_weight")]
    weight_text = f" (weights {' / '.join(str(w) for w in weights)})" if None not in weights else ""
    lines.append(
        "**Objectives**, trained in one stage"
        + weight_text
        + ": contrastive (symmetric InfoNCE), masked self-distillation (an EMA teacher sees all "
        "patches, the student a masked view; iBOT-style prototype targets on masked positions), "
        "and captioning (a transformer decoder"
        + (f", {decoder['num_hidden_layers']} layers," if decoder.get("num_hidden_layers") else "")
        + " cross-attending to the audio tokens)."
        + (f" This repository holds `{architectures[0]}`." if architectures else "")
    )
    if num_parameters:
        lines.append(f"**Parameters**: {num_parameters / 1e6:.1f} M.")
    return lines


def _plots(plots: Iterable[str]) -> list[dict[str, str]]:
    return [
        {"alt": Path(p).stem.replace("_", " ").replace("-", " ").capitalize(), "path": Path(p).as_posix()}
        for p in plots
    ]


def _yaml_block(training_config: Mapping[str, Any] | None) -> str:
    if not training_config:
        return ""
    plain = json.loads(json.dumps(dict(training_config), default=str))  # paths, dtypes -> text
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)


def _report(metrics: EvalReport | Mapping | str | Path | None) -> EvalReport | None:
    if metrics is None or isinstance(metrics, EvalReport):
        return metrics
    return read_metrics(metrics)


def _model_index(report: EvalReport | None, name: str) -> dict[str, Any]:
    """`ModelCardData` arguments that become `model-index` (none without results)."""
    if report is None or not report.results:
        return {}
    return {"model_name": name, "eval_results": report.eval_results()}


def _card(card_data: ModelCardData, template: str, **values: Any) -> ModelCard:
    body = _environment().get_template(template).render(**values)
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}")


def _eval_values(report: EvalReport | None, name: str) -> dict[str, Any]:
    if report is None:
        return {"results": [], "eval_dataset": "", "eval_model": "", "versions": ""}
    dataset = report.dataset.get("name", "an evaluation set")
    if report.dataset.get("split"):
        dataset += f" ({report.dataset['split']} split)"
    return {
        "results": _results_sections(report),
        "eval_dataset": dataset,
        "eval_model": report.model if report.model and report.model != name else "",
        "versions": ", ".join(f"{k} {v}" for k, v in report.versions.items()),
    }


def render_model_card(
    repo_id: str,
    *,
    config: Any = None,
    metrics: EvalReport | Mapping | str | Path | None = None,
    training_config: Mapping[str, Any] | None = None,
    plots: Iterable[str] = (),
    license: str = "apache-2.0",
    datasets: str | Sequence[str] | None = None,
    base_model: str | Sequence[str] | None = None,
    tags: Iterable[str] = (),
    language: str | Sequence[str] | None = None,
    num_parameters: int | None = None,
    pipeline_tag: str | None = None,
) -> ModelCard:
    """The model card (README.md) of a SLAP checkpoint.

    Args:
        repo_id: where the model lives (used in the usage snippets; its last part is the title).
        config: the model's `SlapConfig` (or `config.json` as a dict) for the architecture section.
        metrics: eval results (`read_metrics` input or an `EvalReport`) -> tables and `model-index`.
        training_config: rendered as a YAML block.
        plots: PNG paths relative to the repository root, embedded as images.
        license, datasets, base_model, tags, language: card metadata (`DEFAULT_TAGS` are added).
        num_parameters: shown in the architecture section.
        pipeline_tag: default from the config's `architectures` (`audio-classification` for
            `SlapForAudioClassification`, `zero-shot-audio-classification` otherwise).
    """
    name = repo_id.rstrip("/").split("/")[-1]
    report = _report(metrics)
    config_dict = _as_dict(config)
    if pipeline_tag is None:
        architectures = config_dict.get("architectures") or [""]
        pipeline_tag = PIPELINE_TAGS.get(architectures[0], "zero-shot-audio-classification")
    card_data = ModelCardData(
        library_name="transformers", pipeline_tag=pipeline_tag, license=license,
        language=language, datasets=_listify(datasets), base_model=base_model,
        tags=list(dict.fromkeys([*DEFAULT_TAGS, *tags])), **_model_index(report, name),
    )  # fmt: skip
    projection_dim = config_dict.get("projection_dim")
    return _card(
        card_data, "model_card.md", title=name, repo_id=repo_id,
        embedding_space=f"{projection_dim}-dimensional embedding space" if projection_dim else "embedding space",
        architecture=_architecture(config_dict, num_parameters), training_config=_yaml_block(training_config),
        plots=_plots(plots), datasets=", ".join(_listify(datasets) or []),
        **_eval_values(report, name),
    )  # fmt: skip


def render_adapter_card(
    repo_id: str,
    base_model: str,
    *,
    adapter_config: Mapping[str, Any] | None = None,
    metrics: EvalReport | Mapping | str | Path | None = None,
    training_config: Mapping[str, Any] | None = None,
    plots: Iterable[str] = (),
    license: str = "apache-2.0",
    datasets: str | Sequence[str] | None = None,
    tags: Iterable[str] = (),
) -> ModelCard:
    """The card of a PEFT adapter for a SLAP model: `library_name: peft` and `base_model`.

    `adapter_config` is the adapter's `adapter_config.json` (type, rank, targets are summarised).
    """
    name = repo_id.rstrip("/").split("/")[-1]
    report = _report(metrics)
    adapter = dict(adapter_config or {})
    peft_type = str(adapter.get("peft_type", "LoRA")).replace("LORA", "LoRA")
    summary = []
    if adapter.get("r"):
        summary.append(f"Rank {adapter['r']}, alpha {adapter.get('lora_alpha')}")
    if adapter.get("target_modules"):
        towers = [t for t in ("audio", "text") if f"{t}_model" in str(adapter["target_modules"])]
        where = " and ".join(towers) + (" towers" if len(towers) > 1 else " tower") if towers else "model"
        summary.append(f"on the attention and MLP projections of the {where}")
    card_data = ModelCardData(
        library_name="peft", pipeline_tag="zero-shot-audio-classification", license=license,
        base_model=base_model, datasets=_listify(datasets), **_model_index(report, name),
        tags=list(dict.fromkeys(["slap", "audio", "peft", "lora", "base_model:adapter:" + base_model, *tags])),
    )  # fmt: skip
    return _card(
        card_data, "adapter_card.md", title=name, repo_id=repo_id, base_model=base_model,
        base_model_url=f"https://huggingface.co/{base_model}", peft_type=peft_type,
        adapter_summary=(" ".join(summary) + ".") if summary else "",
        training_config=_yaml_block(training_config), plots=_plots(plots),
        **_eval_values(report, name),
    )  # fmt: skip


def _listify(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value) or None


# ----------------------------------------------------------------------------- validation


def _model_index_problems(model_index: Any) -> list[str]:
    """Structural problems of a `model-index` value (the Hub's required fields)."""
    if not isinstance(model_index, list) or not model_index:
        return ["model-index must be a non-empty list"]
    problems = []
    for i, entry in enumerate(model_index):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            problems.append(f"model-index[{i}] needs a `name`")
            continue
        results = entry.get("results")
        if not isinstance(results, list) or not results:
            problems.append(f"model-index[{i}] needs a non-empty `results` list")
            continue
        for j, result in enumerate(results):
            where = f"model-index[{i}].results[{j}]"
            task, dataset, metrics = (result.get(k) if isinstance(result, Mapping) else None
                                      for k in ("task", "dataset", "metrics"))  # fmt: skip
            if not isinstance(task, Mapping) or not isinstance(task.get("type"), str):
                problems.append(f"{where}.task needs a `type`")
            if not isinstance(dataset, Mapping) or not all(isinstance(dataset.get(k), str) for k in ("type", "name")):
                problems.append(f"{where}.dataset needs `type` and `name`")
            if not isinstance(metrics, list) or not metrics:
                problems.append(f"{where}.metrics must be a non-empty list")
                continue
            for k, metric in enumerate(metrics):
                ok = isinstance(metric, Mapping) and all(isinstance(metric.get(f), str) for f in ("type", "name"))
                value = metric.get("value") if isinstance(metric, Mapping) else None
                ok = ok and isinstance(value, (int, float, str)) and not isinstance(value, bool)
                if not ok:
                    problems.append(f"{where}.metrics[{k}] needs string `type` and `name` and a `value`")
    return problems


def hub_validation_errors(card: ModelCard | str, endpoint: str, repo_type: str = "model") -> list[str]:
    """What `{endpoint}/api/validate-yaml` (the Hub's own card validation) finds wrong; [] if nothing."""
    text = str(card)
    url = f"{endpoint.rstrip('/')}/api/validate-yaml"
    response = get_session().post(url, json={"repoType": repo_type, "content": text}, headers={"Accept": "text/plain"})
    if response.status_code == 400:
        return [f"{url} rejected the card: {response.text.strip()}"]
    hf_raise_for_status(response)
    return []


def validate_card(
    card: ModelCard | str,
    *,
    required: Sequence[str] = MODEL_CARD_KEYS,
    endpoint: str | None = None,
    repo_type: str = "model",
) -> ModelCard:
    """Check a card; return it parsed back. Raises `CardValidationError` listing every problem.

    Local checks: YAML front matter exists and parses into `ModelCardData`; `required` keys are
    non-empty strings; `tags`/`datasets` are strings; `model-index` has the Hub's required fields
    and round-trips through `model_index_to_eval_results` / `eval_results_to_model_index`.
    With `endpoint`, the card is also sent to `{endpoint}/api/validate-yaml`.
    """
    text = str(card)
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise CardValidationError("the card has no YAML front matter (--- ... --- at the top)")
    try:
        raw = yaml.safe_load(match.group(1))
    except yaml.YAMLError as e:
        raise CardValidationError(f"the card's metadata does not parse: {e}") from e
    if not isinstance(raw, dict):
        raise CardValidationError("the card's metadata must be a YAML mapping")
    problems = [f"metadata `{key}` is missing" for key in required
                if not (isinstance(raw.get(key), str) and raw[key])]  # fmt: skip
    for key in ("tags", "datasets", "base_model", "language"):
        value = raw.get(key)
        if value is not None and not (isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        )):  # fmt: skip
            problems.append(f"metadata `{key}` must be a string or a list of strings")
    if "model-index" in raw:
        index_problems = _model_index_problems(raw["model-index"])
        problems += index_problems
        if not index_problems:
            name, results = model_index_to_eval_results(raw["model-index"])
            if eval_results_to_model_index(name, results) != raw["model-index"]:
                problems.append("model-index does not round-trip through huggingface_hub's EvalResult parsing")
    if not problems:
        try:  # what `ModelCard.load` does with the metadata
            parsed = ModelCard(text, ignore_metadata_errors=False)
        except ValueError as e:
            problems.append(f"the metadata does not load into ModelCardData: {e}")
    if endpoint is not None and not problems:
        problems += hub_validation_errors(text, endpoint, repo_type)
    if problems:
        raise CardValidationError("the model card would not validate:\n- " + "\n- ".join(problems))
    return parsed
