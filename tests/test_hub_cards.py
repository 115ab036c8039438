"""Model cards: the tolerant metrics reader, rendering, `model-index` round trips, validation."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import model_index_to_eval_results

from slap_audio.hub_cards import (
    CardValidationError,
    read_metrics,
    render_adapter_card,
    render_model_card,
    validate_card,
)
from slap_audio.hub_cards.card import ADAPTER_CARD_KEYS, hub_validation_errors
from slap_audio.modeling_slap import SlapConfig

from hubserver import HubServer

METRICS = {
    "model": "slap-micro-run3",
    "dataset": {"name": "slap-builtin", "split": "test"},
    "metrics": {
        "retrieval": {
            "text_to_audio": {"R@1": 0.3125, "R@5": 0.625, "R@10": 0.8, "mAP@10": 0.4321},
            "audio_to_text": {"R@1": 0.29, "R@5": 0.55, "R@10": 0.71, "mAP@10": 0.39},
        },
        "zero_shot": {"top1": 0.62, "top5": 0.93},
        "captioning": {"BLEU-4": 0.101, "ROUGE-L": 0.333, "CIDEr-D": 0.456},
        "modality_gap": 0.41,
    },
    "versions": {"transformers": "5.23.0", "torch": "2.13.0"},
}
# (task type, metric name in the card) -> the value in METRICS
EXPECTED = {
    ("text-to-audio-retrieval", "R@1"): 0.3125, ("text-to-audio-retrieval", "R@5"): 0.625,
    ("text-to-audio-retrieval", "R@10"): 0.8, ("text-to-audio-retrieval", "mAP@10"): 0.4321,
    ("audio-to-text-retrieval", "R@1"): 0.29, ("audio-to-text-retrieval", "R@5"): 0.55,
    ("audio-to-text-retrieval", "R@10"): 0.71, ("audio-to-text-retrieval", "mAP@10"): 0.39,
    ("zero-shot-audio-classification", "top-1 accuracy"): 0.62,
    ("zero-shot-audio-classification", "top-5 accuracy"): 0.93,
    ("audio-captioning", "BLEU-4"): 0.101, ("audio-captioning", "ROUGE-L"): 0.333,
    ("audio-captioning", "CIDEr-D"): 0.456, ("feature-extraction", "modality gap"): 0.41,
}  # fmt: skip
TRAINING = {"size": "micro", "learning_rate": 3e-4, "max_tokens": 4096, "loss_weights": {"contrastive": 1.0}}


@pytest.fixture(scope="module")
def card(tmp_path_factory) -> ModelCard:
    path = tmp_path_factory.mktemp("metrics") / "results.json"
    path.write_text(json.dumps(METRICS))
    return render_model_card(
        "alice/slap-micro", config=SlapConfig.from_size("micro"), metrics=path,
        training_config=TRAINING, plots=["plots/similarity_matrix.png"], datasets=["alice/sounds"],
        base_model="alice/slap-base", tags=["demo"], num_parameters=812_345,
    )  # fmt: skip


def _front_matter(card: ModelCard | str) -> dict:
    return yaml.safe_load(re.match(r"^---\n(.*?)\n---\n", str(card), re.DOTALL).group(1))


def test_read_metrics_is_tolerant(tmp_path):
    report = read_metrics({
        "dataset": "alice/sounds",
        "metrics": {
            "retrieval": {"t2a": {"r1": "0.25", "Recall@5": 0.5, "num_queries": 40},
                          "audio_to_text/R@10": {"mean": 0.75, "std": 0.01}},
            "zero-shot": {"Top-1": 1, "top_5_acc": 0.9, "per_class": [0.1, 0.2]},
            "captioning": {"bleu_4": 0.1, "METEOR": float("nan"), "SPICE": None},
            "modality_gap": {"gap": 0.4, "audio_norm": 0.9},
            "linear_probe": {"accuracy": 0.8},
        },
    })  # fmt: skip
    assert report.results == {
        "text_to_audio": {"R@1": 0.25, "R@5": 0.5},
        "audio_to_text": {"R@10": 0.75},
        "zero_shot": {"top-1 accuracy": 1.0, "top-5 accuracy": 0.9},
        "captioning": {"BLEU-4": 0.1},
        "representation": {"modality gap": 0.4, "modality gap/audio_norm": 0.9},
        "linear_probe": {"top-1 accuracy": 0.8},
    }
    assert report.details == {"retrieval/t2a/num_queries": 40.0}
    assert sorted(s.split(":")[0] for s in report.skipped) == [
        "captioning/METEOR", "captioning/SPICE", "zero-shot/per_class",
    ]  # fmt: skip
    assert report.dataset == {"name": "alice/sounds"}
    assert {r.dataset_type for r in report.eval_results()} == {"alice/sounds"}  # a Hub id stays as is
    # no `metrics` wrapper, nothing at all, and non-objects
    assert read_metrics({"model": "m", "zero_shot": {"top1": 0.5}}).results == {"zero_shot": {"top-1 accuracy": 0.5}}
    assert read_metrics({}).results == {}
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must be an object"):
        read_metrics(tmp_path / "list.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_metrics(tmp_path / "bad.json")


def test_metadata_parses_back_with_model_index_equal_to_json(card, tmp_path):
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    data = loaded.data
    assert isinstance(data, ModelCardData)
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "zero-shot-audio-classification"
    assert data.license == "apache-2.0"
    assert data.datasets == ["alice/sounds"] and data.base_model == "alice/slap-base"
    assert {"slap", "clap", "audio", "zero-shot-audio-classification", "demo"} <= set(data.tags)
    assert data.model_name == "slap-micro"
    got = {(r.task_type, r.metric_name): r.metric_value for r in data.eval_results}
    assert got == EXPECTED
    assert {(r.dataset_name, r.dataset_split) for r in data.eval_results} == {("slap-builtin", "test")}
    # the raw YAML: every result has task/dataset/metrics with name/type/value, and round-trips
    raw = _front_matter(card)["model-index"]
    name, results = model_index_to_eval_results(raw)
    assert name == "slap-micro" and len(results) == len(EXPECTED)
    for result in raw[0]["results"]:
        assert result["task"]["type"] and result["task"]["name"]
        assert result["dataset"]["type"] and result["dataset"]["name"] == "slap-builtin"
        for metric in result["metrics"]:
            assert set(metric) == {"type", "name", "value"}
    assert validate_card(card).data.eval_results == data.eval_results


def test_card_body(card):
    text = card.text
    for snippet in (
        'pipeline("zero-shot-audio-classification", model="alice/slap-micro", trust_remote_code=True)',
        'AutoModel.from_pretrained("alice/slap-micro", trust_remote_code=True)',
        "PeftModel.from_pretrained(base,",
        "![Similarity matrix](plots/similarity_matrix.png)",
        "## Intended use and limitations",
        "2 local blocks (±4 time columns (±0.64 s)) and 1 global block",
        "Text-to-audio retrieval | 0.3125 | 0.625 | 0.8 | 0.4321 |",
        "| top-5 accuracy | 0.93 |",
        "| CIDEr-D | 0.456 |",
        "| modality gap | 0.41 |",
        "Evaluated on **slap-builtin (test split)** (as `slap-micro-run3`)",
        "transformers 5.23.0",
        "**Parameters**: 0.8 M.",
        "contrastive (symmetric InfoNCE), masked self-distillation",
    ):
        assert snippet in text, snippet
    training = re.search(r"```yaml\n(.*?)```", text, re.DOTALL).group(1)
    assert yaml.safe_load(training) == TRAINING
    assert "{{" not in text and "{%" not in text


def test_card_without_results_or_config():
    card = render_model_card("bob/bare")
    assert "model-index" not in _front_matter(card) and "model_name" not in _front_matter(card)
    assert "No evaluation results were published" in card.text
    assert "No training configuration was published" in card.text
    validate_card(card)


def test_classifier_card_has_its_pipeline_tag():
    config = SlapConfig.from_size("micro").to_dict() | {"architectures": ["SlapForAudioClassification"]}
    card = render_model_card("bob/classifier", config=config)
    assert card.data.pipeline_tag == "audio-classification"
    assert "This repository holds `SlapForAudioClassification`" in card.text


def test_adapter_card():
    adapter = {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": "(?:(.*\\.)?audio_model\\.layers)"}
    card = validate_card(
        render_adapter_card("alice/slap-lora", "alice/slap-micro", adapter_config=adapter, metrics=METRICS),
        required=ADAPTER_CARD_KEYS,
    )
    assert card.data.library_name == "peft" and card.data.base_model == "alice/slap-micro"
    assert "Rank 8, alpha 16 on the attention and MLP projections of the audio tower." in card.text
    assert 'PeftModel.from_pretrained(base, "alice/slap-lora")' in card.text
    assert {(r.task_type, r.metric_name): r.metric_value for r in card.data.eval_results} == EXPECTED


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# no metadata\n", "no YAML front matter"),
        ("---\nlicense: [apache\n---\n# x\n", "does not parse"),
        ("---\nlicense: mit\n---\n# x\n", "`library_name` is missing"),
        ("---\nlibrary_name: transformers\npipeline_tag: x\nlicense: mit\ntags: [1, {a: b}]\n---\n", "`tags` must be"),
        ("---\nlibrary_name: transformers\npipeline_tag: x\nlicense: mit\nmodel-index:\n- name: m\n  results:\n"
         "  - task: {type: t}\n    dataset: {type: d, name: D}\n    metrics: [{type: acc, name: Acc}]\n---\n",
         "needs string `type` and `name` and a `value`"),
        ("---\nlibrary_name: transformers\npipeline_tag: x\nlicense: mit\nmodel-index:\n- name: m\n  results:\n"
         "  - task: {type: t}\n    metrics: [{type: acc, name: Acc, value: 1}]\n---\n", "dataset needs `type` and `name`"),
    ],
)  # fmt: skip
def test_validate_card_rejects(text, message):
    with pytest.raises(CardValidationError, match=re.escape(message)):
        validate_card(text)


def test_validate_against_the_hub_api(card):
    with HubServer(tokens={}) as hub, hub.client():
        assert validate_card(card, endpoint=hub.endpoint).data.library_name == "transformers"
        assert hub_validation_errors(card, hub.endpoint) == []
        errors = hub_validation_errors("---\nlicense: [apache\n---\n", hub.endpoint)
        assert len(errors) == 1 and "/api/validate-yaml rejected the card" in errors[0]
        assert "Invalid YAML" in errors[0]
        assert "POST /api/validate-yaml 400" in hub.log_text
