"""The ablation script: variants on top of a config's overrides, per-variant results, the summary."""

from __future__ import annotations

import json

import pytest
import yaml

from slap_audio.modeling_slap import SlapConfig
from slap_audio.training import ablation


@pytest.fixture(scope="module")
def ablation_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    config = out / "config.yaml"
    config.write_text(yaml.safe_dump({
        "size": "micro", "text_weights": "none", "text_vocab_size": 512, "train_source": "builtin:train",
        "train_size": 12, "eval_source": "builtin:validation", "max_tokens": 800, "max_clips": 6,
        "crop_seconds": 5.0, "learning_rate": 0.002, "report_to": "none", "disable_tqdm": True,
        # like configs/demo.yaml, the config drops an objective: the variants must set every weight
        "config_overrides": {"mask_type": "time_block", "self_supervised_weight": 0.0},
    }))
    argv = ["--config", str(config), "--max-steps", "2", "--eval-steps", "1", "--eval-clips", "4",
            "--test-clips", "4", "--output-dir", str(out / "results")]
    ablation.main(argv + ["--variants", "full_unmasked_pass"])  # variants may run in separate processes
    results = ablation.main(argv + ["--variants", "contrastive_only"])
    return out / "results", results


def test_each_variant_trains_with_its_overrides_on_the_configs(ablation_run):
    out, results = ablation_run
    assert set(results["variants"]) == {"full_unmasked_pass", "contrastive_only"}
    unmasked = SlapConfig.from_pretrained(out / "full_unmasked_pass" / "slap")
    assert unmasked.unmasked_student_pass and unmasked.mask_type == "time_block"
    assert unmasked.self_supervised_weight == 1.0 and unmasked.captioning_weight == 0.5
    contrastive = SlapConfig.from_pretrained(out / "contrastive_only" / "slap")
    assert contrastive.self_supervised_weight == 0 and contrastive.captioning_weight == 0
    assert contrastive.mask_type == "time_block"


def test_results_hold_curves_and_test_metrics(ablation_run):
    out, results = ablation_run
    assert results["chance_R@1"] == 0.25
    for name, variant in results["variants"].items():
        assert [p["step"] for p in variant["validation_curve"]] == [1, 2], name
        assert 0 <= variant["test"]["text_to_audio/R@1"] <= 1
        assert variant["train_seconds"] > 0
    summary = json.loads((out / "ablation.json").read_text())
    assert summary["variants"].keys() == results["variants"].keys()
    assert (out / "ablation_curves.png").stat().st_size > 0
    assert ablation.main(["--output-dir", str(out), "--summarize-only"])["variants"].keys() == results["variants"].keys()


def test_summary_of_an_empty_folder_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no variant results"):
        ablation.summarize(tmp_path)
