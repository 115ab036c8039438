"""SlapTrainer end to end on built-in data: logged components, the EMA teacher, exact resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from slap_audio.modeling_slap import SlapConfig, SlapForPreTraining, SlapModel
from slap_audio.training.cli import main, parse_arguments

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "micro.yaml"
SMALL_RUN = [
    str(CONFIG), "--train_size", "16", "--max_tokens", "800", "--max_clips", "8", "--crop_seconds", "5",
    "--eval_strategy", "steps", "--eval_steps", "3", "--eval_size", "6", "--logging_steps", "1", "--learning_rate", "0.002", "--report_to", "none",
    "--disable_tqdm", "true",
]


def _history(checkpoint) -> list[dict]:
    return json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    paths = main(SMALL_RUN + ["--output_dir", str(out), "--max_steps", "6", "--save_steps", "3"])
    return out, paths


def test_logs_every_component(full_run):
    out, _ = full_run
    logs = [entry for entry in _history(out / "checkpoint-6") if "loss" in entry]
    assert len(logs) == 6
    for entry in logs:
        for key in ("contrastive_loss", "self_supervised_loss", "captioning_loss", "temperature",
                    "teacher_momentum", "tokens_per_second"):
            assert key in entry, key
        total = entry["contrastive_loss"] + entry["self_supervised_loss"] + 0.5 * entry["captioning_loss"]
        assert entry["loss"] == pytest.approx(total, rel=1e-4)
    momenta = [entry["teacher_momentum"] for entry in logs]
    assert momenta == sorted(momenta) and momenta[0] >= 0.994 and momenta[-1] == pytest.approx(1.0)


def test_evaluation_reports_retrieval(full_run):
    out, _ = full_run
    evals = [entry for entry in _history(out / "checkpoint-6") if "eval_text_to_audio_R@1" in entry]
    assert [entry["step"] for entry in evals] == [3, 6]
    for entry in evals:
        for key in ("eval_text_to_audio_R@1", "eval_audio_to_text_R@10", "eval_text_to_audio_mAP@10"):
            assert 0.0 <= entry[key] <= 1.0
    assert any("eval_loss" in entry for entry in _history(out / "checkpoint-6"))


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = SlapForPreTraining(SlapConfig.from_size("micro")).eval()  # eval: no dropout
    features, lengths = torch.randn(128, 64), torch.tensor([64, 64])
    ids = torch.randint(5, 500, (2, 7))
    results = []
    for checkpointing in (True, False):
        if checkpointing:
            model.activation_checkpointing_enable()
        else:
            model.activation_checkpointing_disable()
        model.zero_grad()
        model.audio_model.train()  # checkpointing acts in training mode only
        torch.manual_seed(1)
        loss = model(input_features=features, audio_lengths=lengths, input_ids=ids, caption_labels=ids).loss
        loss.backward()
        results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    assert results[0][0] == results[1][0]
    for name, grad in results[1][1].items():
        torch.testing.assert_close(results[0][1][name], grad, msg=name)


def test_release_models_load(full_run):
    _, paths = full_run
    model = SlapModel.from_pretrained(paths["slap"])
    assert model.config.audio_config.hidden_size == 32


def test_teacher_is_an_ema_of_the_student(full_run):
    out, _ = full_run
    model = SlapForPreTraining.from_pretrained(out / "checkpoint-6")
    teacher = dict(model.teacher_audio_model.named_parameters())
    student = dict(model.audio_model.named_parameters())
    assert all(not p.requires_grad for p in teacher.values())
    # trained for a few steps: the teacher lags the student but follows it
    gap = max((teacher[n] - student[n]).abs().max().item() for n in teacher)
    assert gap > 0
    fresh = SlapForPreTraining(SlapConfig.from_size("micro"))
    assert not torch.allclose(teacher["patch_embed.weight"], fresh.teacher_audio_model.patch_embed.weight)


def test_teacher_receives_no_gradient():
    torch.manual_seed(0)
    model = SlapForPreTraining(SlapConfig.from_size("micro"))
    features = torch.randn(64, 64)
    ids = torch.randint(5, 500, (2, 7))
    out = model(input_features=features, audio_lengths=torch.tensor([32, 32]), input_ids=ids, caption_labels=ids)
    out.loss.backward()
    for name, param in model.named_parameters():
        if name.startswith("teacher_"):
            assert param.grad is None, name
    assert model.audio_model.mask_token.grad is not None
    before = [p.clone() for p in model.teacher_audio_model.parameters()]
    model.update_teacher(0.5)
    after = list(model.teacher_audio_model.parameters())
    assert all(torch.equal(b, a) for b, a in zip(before, after, strict=True))  # teacher == student at init
    with torch.no_grad():
        model.audio_model.patch_embed.weight.add_(1.0)
    model.update_teacher(0.75)
    torch.testing.assert_close(
        model.teacher_audio_model.patch_embed.weight, before[0] + 0.25  # patch_embed is the first parameter
    )


def test_resume_is_exact(full_run, tmp_path):
    """Killing a run after step 3 and resuming gives the same losses as the uninterrupted run."""
    out, _ = full_run
    resumed = tmp_path / "resumed"
    shutil.copytree(out / "checkpoint-3", resumed / "checkpoint-3")
    main(SMALL_RUN + ["--output_dir", str(resumed), "--max_steps", "6", "--save_steps", "3",
                      "--resume_from_checkpoint", str(resumed / "checkpoint-3")])
    expected = {e["step"]: e for e in _history(out / "checkpoint-6") if "loss" in e}
    got = {e["step"]: e for e in _history(resumed / "checkpoint-6") if "loss" in e}
    for step in (4, 5, 6):
        for key in ("loss", "contrastive_loss", "self_supervised_loss", "captioning_loss"):
            assert got[step][key] == pytest.approx(expected[step][key], abs=1e-6), (step, key)


def test_text_encoder_learning_rate_scale(tmp_path):
    from transformers import TrainingArguments

    from slap_audio.training.trainer import SlapTrainer

    model = SlapForPreTraining(SlapConfig.from_size("micro"))
    args = TrainingArguments(str(tmp_path), learning_rate=1e-3, report_to="none")
    optimizer = SlapTrainer(model=model, args=args, text_learning_rate_scale=0.1).create_optimizer()
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert set(lr_of) == {id(p) for p in trainable.values()}  # every trainable parameter, once
    for name, param in trainable.items():
        expected = 1e-4 if name.startswith("text_model.encoder.") else 1e-3
        assert lr_of[id(param)] == pytest.approx(expected), name


def test_a_zero_text_learning_rate_scale_freezes_the_text_encoder(tmp_path):
    """Scale 0: the text encoder computes no gradients and is left out of the optimizer; the text
    pooling/projection and the audio tower still train."""
    from transformers import TrainingArguments

    from slap_audio.training.trainer import SlapTrainer

    model = SlapForPreTraining(SlapConfig.from_size("micro", self_supervised_weight=0.0, captioning_weight=0.0))
    args = TrainingArguments(str(tmp_path), learning_rate=1e-3, report_to="none")
    optimizer = SlapTrainer(model=model, args=args, text_learning_rate_scale=0.0).create_optimizer()
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    for name, param in model.named_parameters():
        frozen = name.startswith("text_model.encoder.")
        assert param.requires_grad is not frozen, name
        assert (id(param) in optimized) is (not frozen and param.requires_grad), name
    torch.manual_seed(0)
    features = torch.randn(64, model.config.audio_config.num_mel_bins)
    ids = torch.randint(5, 100, (2, 7))
    output = model(input_features=features, audio_lengths=torch.tensor([32, 32]), input_ids=ids,
                   attention_mask=torch.ones_like(ids), caption_labels=ids)
    output.loss.backward()
    grads = {name: param.grad for name, param in model.named_parameters()}
    assert all(grads[n] is None for n in grads if n.startswith("text_model.encoder."))
    assert grads["audio_model.patch_embed.weight"] is not None


def test_built_in_training_clips_can_be_kept_short():
    from slap_audio.data.sources import load_audio_text_dataset
    from slap_audio.training.cli import _source_options

    data_args = parse_arguments([str(CONFIG), "--train_max_duration", "4"])[1]
    options = _source_options("builtin:train", 12, 0, data_args.train_max_duration)
    durations = load_audio_text_dataset("builtin:train", **options).durations
    assert len(durations) == 12 and max(durations) <= 4.0
    assert _source_options("path/to/folder", 12, 0, 4.0) == {}


def test_gradient_accumulation_bf16_and_tensorboard(tmp_path, monkeypatch):
    """TrainingArguments features: two micro-batches per optimizer step, bf16 autocast on the CPU,
    TensorBoard event files; the teacher's momentum follows optimizer steps."""
    out = tmp_path / "accumulated"
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(out / "tb"))  # transformers 5: no --logging_dir
    main(SMALL_RUN + [
        "--output_dir", str(out), "--max_steps", "2", "--save_steps", "2", "--eval_strategy", "no",
        "--gradient_accumulation_steps", "2", "--bf16", "true", "--use_cpu", "true",
        "--report_to", "tensorboard",
    ])
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    logs = [entry for entry in state["log_history"] if "loss" in entry]
    assert [entry["step"] for entry in logs] == [1, 2]
    for entry in logs:
        assert all(torch.isfinite(torch.tensor(entry[k])) for k in ("loss", "contrastive_loss", "captioning_loss"))
    model = SlapForPreTraining.from_pretrained(out / "checkpoint-2")
    momenta = [entry["teacher_momentum"] for entry in logs]  # scheduled by optimizer steps, not micro-batches
    assert momenta == [pytest.approx(model.teacher_momentum_at(1, 2), abs=1e-6), 1.0]
    assert list((out / "tb").rglob("events.out.tfevents.*")), "no TensorBoard event file"


def test_evaluation_without_an_evaluation_set_is_refused_clearly():
    with pytest.raises(ValueError, match="eval_source is none: pass --eval_strategy no"):
        parse_arguments(["configs/tiny.yaml", "--eval_source", "none"])
    _, data_args, training_args = parse_arguments(["configs/tiny.yaml", "--eval_source", "none", "--eval_strategy", "no"])
    assert data_args.eval_source == "none" and training_args.eval_strategy == "no"


def test_a_new_model_takes_its_features_from_the_arguments_and_its_config():
    """`--hop_length 320` and a config with 128 mel bins: the processor makes those features and the
    token budget counts them (12.5 patch columns of 8 tokens per second)."""
    from slap_audio.training.batching import PatchGeometry
    from slap_audio.training.cli import ModelArguments, build_model

    arguments = ModelArguments(size="micro", text_weights="none", text_vocab_size=64, hop_length=320,
                               config_overrides=json.dumps({"audio_config": {"num_mel_bins": 128}}))
    model, processor = build_model(arguments, ["a dog barking", "rain on a roof"] * 20)
    features = processor.feature_extractor
    assert (features.hop_length, features.feature_size) == (320, 128)
    assert PatchGeometry.of(features, model.config.audio_config).tokens_per_second == 25.0
    waves = [torch.zeros(16000).numpy()]
    assert model.audio_model(**features(waves, sampling_rate=16000)).last_hidden_state.shape[-2] == 8 * 4  # 50 frames → 4 columns


def test_a_byol_checkpoint_from_before_the_intra_modal_terms_resumes_with_its_own_loss(tmp_path):
    from slap_audio.training.cli import checkpoint_config

    SlapConfig.from_size("micro", byol_weight=1.0).save_pretrained(tmp_path)
    assert checkpoint_config(str(tmp_path)).byol_intra_weight == 1.0
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["byol_intra_weight"]  # as written before December 2026
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert checkpoint_config(str(tmp_path)).byol_intra_weight == 0.0
    with pytest.raises(ValueError, match="byol_intra_weight must be >= 0"):
        SlapConfig.from_size("micro", byol_intra_weight=-1.0)
