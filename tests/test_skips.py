"""Broken training data never stops a run: per-clip skips in the collator, counted by reason across
DataLoader workers and ranks; empty batches skipped; code bugs still raise.
Run: `pytest tests/test_skips.py` (the last test starts two gloo processes with torchrun).

The folder's broken files only break when decoded (`probe=False`, durations from the metadata), so
that every skip happens in the DataLoader workers, during training."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from transformers import TrainingArguments

from slap_audio.data import examples as examples_module
from slap_audio.data.sources import load_audio_text_dataset
from slap_audio.modeling_slap import (
    SlapConfig,
    SlapFeatureExtractor,
    SlapForPreTraining,
    SlapProcessor,
)
from slap_audio.training.batching import DEFAULT_GEOMETRY, TokenBudgetBatchSampler
from slap_audio.training.collator import SlapCollator
from slap_audio.training.trainer import SlapTrainer

ODD_RATE = 22254  # a real rate of old sound libraries; resampled once band-limited resampling of any ratio lands


def odd_rate_is_refused() -> bool:
    """Whether the feature extractor still refuses `ODD_RATE` (then that clip is `unsupported_audio`)."""
    try:
        SlapFeatureExtractor()(np.zeros(ODD_RATE // 10, np.float32), sampling_rate=ODD_RATE)
    except ValueError:
        return True
    return False


def tone(seconds: float, rate: int = 16000, channels: int = 1, seed: int = 0) -> np.ndarray:
    samples = int(round(seconds * rate))
    t = np.arange(samples) / rate
    wave = 0.3 * np.sin(2 * np.pi * (200 + 100 * seed) * t) + 0.01 * np.random.default_rng(seed).standard_normal(samples)
    wave = wave.astype(np.float32)
    return wave if channels == 1 else np.stack([wave * (c + 1) / channels for c in range(channels)], axis=1)


def write_wav(path: Path, array: np.ndarray, rate: int = 16000) -> None:
    soundfile.write(path, array, rate, subtype="FLOAT")


# Clips in batch order (`max_clips=2`, no shuffle): (file, how it is written, caption). `None`: the
# metadata names a file that does not exist.
FOLDER = [
    ("good0.wav", "good", "a low hum"),
    ("cut_data.wav", "cut_data", "a hum cut short"),  # data cut mid-way: libsndfile reads what is there
    ("cut_header.wav", "cut_header", "a header cut short"),  # batch 1: every clip broken
    ("empty.wav", "empty", "an empty file"),
    ("text.wav", "text", "a text file"),  # batch 2: every clip broken
    ("nan.wav", "nan", "all NaN"),
    ("inf.wav", "inf", "all Inf"),  # batch 3: every clip broken
    ("missing.wav", None, "not there"),
    ("good1.wav", "good", "a high whistle"),
    ("twelve.wav", "twelve", "twelve channels"),  # down-mixed: trains
    ("good2.wav", "good", "a rapid click"),
    ("odd.wav", "odd_rate", "an odd rate"),
]
EXPECTED_SKIPS = {"undecodable": 3, "non_finite_audio": 2, "missing_file": 1}


def expected_skips() -> dict[str, int]:
    return {**EXPECTED_SKIPS, **({"unsupported_audio": 1} if odd_rate_is_refused() else {})}


def write_broken_folder(folder: Path, layout=FOLDER) -> None:
    """An audio folder with good and broken files, durations in the metadata (0.5 s each)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, (name, kind, caption) in enumerate(layout):
        path = folder / name
        if kind == "good":
            write_wav(path, tone(0.5, seed=index))
        elif kind == "cut_data":
            write_wav(path, tone(0.5, seed=index))
            path.write_bytes(path.read_bytes()[: 44 + 4000 * 4])  # 4000 of 8000 float samples
        elif kind == "cut_header":
            write_wav(path, tone(0.5, seed=index))
            path.write_bytes(path.read_bytes()[:30])
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "text":
            path.write_text("this is not audio\n" * 50)
        elif kind in ("nan", "inf"):
            write_wav(path, np.full(8000, np.nan if kind == "nan" else np.inf, np.float32))
        elif kind == "twelve":
            write_wav(path, tone(0.5, channels=12, seed=index))
        elif kind == "odd_rate":
            write_wav(path, tone(0.5, rate=ODD_RATE, seed=index), ODD_RATE)
        rows.append({"file_name": name, "caption": caption, "duration": 0.5})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def build_trainer(folder: Path, output_dir: Path, processor: SlapProcessor, *, num_workers: int,
                  gradient_accumulation_steps: int = 1, num_replicas: int = 1, rank: int = 0) -> SlapTrainer:
    """`SlapTrainer` on the folder, one epoch, batches of two clips in folder order."""
    dataset = load_audio_text_dataset(folder, probe=False)
    lengths = [DEFAULT_GEOMETRY.tokens_for_duration(d) for d in dataset.durations]
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=10_000, max_clips=2, shuffle=False, open_batches=1,
                                      num_replicas=num_replicas, rank=rank)
    args = TrainingArguments(
        output_dir=str(output_dir), num_train_epochs=1, gradient_accumulation_steps=gradient_accumulation_steps,
        learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
        per_device_eval_batch_size=2,
        dataloader_num_workers=num_workers, remove_unused_columns=False, use_cpu=True, seed=0,
    )
    torch.manual_seed(0)
    model = SlapForPreTraining(SlapConfig.from_size("micro"))
    return SlapTrainer(model=model, args=args, train_dataset=dataset, data_collator=SlapCollator(processor, seed=0),
                       train_batch_sampler=sampler, processing_class=processor)


def training_logs(trainer: SlapTrainer) -> list[dict]:
    return [entry for entry in trainer.state.log_history if "learning_rate" in entry]


def test_broken_folder_trains_through_with_exact_skip_counts(tmp_path, processor):
    folder = tmp_path / "clips"
    write_broken_folder(folder)
    assert load_audio_text_dataset(folder).skip_stats.counts == {"undecodable": 3, "missing_file": 1}  # probed
    trainer = build_trainer(folder, tmp_path / "run", processor, num_workers=2, gradient_accumulation_steps=2)
    output = trainer.train()

    expected = expected_skips()
    assert trainer.skip_stats.counts == expected  # counted in two worker processes, summed here
    assert trainer.skip_stats.examples["undecodable"] == ["cut_header.wav", "empty.wav", "text.wav"]
    assert {k: v for k, v in output.metrics.items() if k.startswith("skipped/")} == {
        f"skipped/{reason}": count for reason, count in expected.items()}
    # 6 batches, 3 optimizer steps: (good, empty) → the empty one skipped, the step on the good one;
    # (empty, empty) → a step without data; (good, good)
    logs = training_logs(trainer)
    assert [entry["step"] for entry in logs] == [1, 2, 3] and trainer.state.global_step == 3
    assert [entry.get("skipped_micro_batches") for entry in logs] == [1, 3, 3]
    assert "loss" not in logs[1] and "contrastive_loss" not in logs[1]
    for entry in (logs[0], logs[2]):
        assert math.isfinite(entry["loss"])
        total = entry["contrastive_loss"] + entry["self_supervised_loss"] + 0.5 * entry["captioning_loss"]
        assert entry["loss"] == pytest.approx(total, rel=1e-4)  # the mean over real micro-batches only
    cumulative = [entry.get("skipped/undecodable", 0) for entry in logs]
    assert cumulative == sorted(cumulative) and cumulative[-1] == expected["undecodable"]

    # evaluation on the same files (the odd rate aside): empty batches score nothing, retrieval
    # embeds the five decodable clips, the twelve-channel one down-mixed
    evaluation = load_audio_text_dataset(folder / "metadata.jsonl", probe=False)
    evaluation = evaluation.select([i for i, clip in enumerate(evaluation.clip_ids) if clip != "odd.wav"])
    metrics = trainer.evaluate(evaluation)
    assert math.isfinite(metrics["eval_loss"]) and 0.0 <= metrics["eval_text_to_audio_R@1"] <= 1.0
    assert [e["clip_id"] for e in trainer.retrieval_examples(evaluation)] == [
        "good0.wav", "cut_data.wav", "good1.wav", "twelve.wav", "good2.wav"]


def test_slap_train_reports_skips_from_its_workers(tmp_path):
    """The command, in a fresh process: load-time skips at the start, the workers' at the end."""
    folder = tmp_path / "clips"
    write_broken_folder(folder)
    config = Path(__file__).resolve().parent.parent / "configs" / "micro.yaml"
    command = [str(Path(sys.executable).with_name("slap-train")), str(config), "--train_source", str(folder),
               "--eval_source", "none", "--eval_strategy", "no", "--max_steps", "1", "--save_steps", "100", "--logging_steps", "1",
               "--dataloader_num_workers", "2", "--output_dir", str(tmp_path / "run"), "--disable_tqdm", "true"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("training data: skipped 4 items: missing_file=1 (missing.wav); "
            "undecodable=3 (cut_header.wav, empty.wav, text.wav)") in result.stderr
    late = "non_finite_audio=2 (nan.wav, inf.wav)" + ("; unsupported_audio=1 (odd.wav)" if odd_rate_is_refused() else "")
    assert f"skipped while training: skipped {2 + late.count(';')} items: {late}" in result.stderr
    history = json.loads((tmp_path / "run" / "trainer_state.json").read_text())["log_history"]
    assert history[-1]["skipped/non_finite_audio"] == 2 and "train_loss" in history[-1]


def test_collator_drops_each_refused_clip_and_keeps_the_rest(processor, monkeypatch):
    extractor = processor.feature_extractor
    good = [{"audio": {"array": tone(0.4, seed=i), "sampling_rate": 16000}, "captions": [f"clip {i}"],
             "clip_id": f"good{i}"} for i in range(2)]
    twelve = {"audio": {"array": tone(0.4, channels=12, seed=5), "sampling_rate": 16000}, "captions": ["twelve"],
              "clip_id": "twelve"}
    nan = {"audio": {"array": np.full(800, np.nan, np.float32), "sampling_rate": 16000}, "captions": ["nan"],
           "clip_id": "nan"}  # not from a decoder: the feature extractor refuses it
    collator = SlapCollator(processor, train=False, return_metadata=True)
    batch = collator([good[0], nan, twelve, good[1]])
    assert batch["clip_ids"] == ["good0", "twelve", "good1"]
    assert batch["skipped"].counts == {"unsupported_audio": 1} and batch["skipped"].examples["unsupported_audio"] == ["nan"]
    reference = collator([good[0], good[1]])  # the batched call, no refused clip
    lengths = batch["audio_lengths"].tolist()
    features = batch["input_features"].split(lengths)
    torch.testing.assert_close(torch.cat([features[0], features[2]]), reference["input_features"], rtol=0, atol=0)
    downmixed = extractor(twelve["audio"]["array"].mean(axis=1), sampling_rate=16000)["input_features"]
    torch.testing.assert_close(features[1], downmixed)
    with pytest.raises(ValueError, match="channel layout"):  # what the collator's down-mix avoids
        extractor(twelve["audio"]["array"], sampling_rate=16000)

    empty = collator([nan, None])  # nothing usable: an empty batch, both counted
    assert empty["audio_lengths"].shape == (0,) and empty["skipped"].counts == {"unsupported_audio": 1, "none_example": 1}
    assert collator.skip_stats.counts == {"unsupported_audio": 2, "none_example": 1}


def test_code_bugs_raise_instead_of_counting_as_skips(tmp_path, processor, monkeypatch):
    folder = tmp_path / "clips"
    write_broken_folder(folder, FOLDER[:2])
    dataset = load_audio_text_dataset(folder)
    collator = SlapCollator(processor)
    example = dataset[0]
    assert collator([example])["audio_lengths"].shape == (1,)

    def broken_method(*args, **kwargs):
        raise TypeError("a bug")

    with monkeypatch.context() as patch:  # a bug in the feature extractor
        patch.setattr(SlapFeatureExtractor, "_packed_log_mel", broken_method)
        with pytest.raises(TypeError, match="a bug"):
            collator([example])
    with monkeypatch.context() as patch:  # a bug in the collator
        patch.setattr(SlapCollator, "choose_caption", broken_method)
        with pytest.raises(TypeError, match="a bug"):
            collator([example])
    with monkeypatch.context() as patch:  # a bug while decoding is not an undecodable file
        patch.setattr(examples_module.soundfile.SoundFile, "read", lambda *a, **k: (_ for _ in ()).throw(AttributeError("a bug")))
        with pytest.raises(AttributeError, match="a bug"):
            dataset[0]
    assert collator.skip_stats.total == 0

    trainer = build_trainer(folder, tmp_path / "run", processor, num_workers=2)
    with monkeypatch.context() as patch:  # raised in a DataLoader worker, re-raised by the run
        patch.setattr(SlapCollator, "choose_caption", broken_method)
        with pytest.raises(TypeError, match="a bug"):
            trainer.train()


# ---------------------------------------------------------------------------------------------
# two processes: `torchrun --nproc_per_node 2 tests/test_skips.py OUT_DIR`

# Batches in order, dealt to ranks 0, 1, 0, 1...: rank 1's first batch is only broken files, rank
# 0's second batch holds one broken file.
DISTRIBUTED_FOLDER = [
    ("good0.wav", "good", "a low hum"), ("good1.wav", "good", "a high whistle"),
    ("text.wav", "text", "a text file"), ("nan.wav", "nan", "all NaN"),
    ("good2.wav", "good", "a rapid click"), ("empty.wav", "empty", "an empty file"),
    ("good3.wav", "good", "a siren"), ("good4.wav", "good", "a bell"),
    ("good5.wav", "good", "rain"), ("good6.wav", "good", "wind"),
    ("good7.wav", "good", "a dog"), ("good8.wav", "good", "a cat"),
]


def distributed_main(out_dir: Path) -> None:
    from conftest import build_test_tokenizer

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    processor = SlapProcessor(SlapFeatureExtractor(), build_test_tokenizer())
    if rank == 0:
        write_broken_folder(out_dir / "clips", DISTRIBUTED_FOLDER)
    torch.distributed.init_process_group("gloo")
    torch.distributed.barrier()
    trainer = build_trainer(out_dir / "clips", out_dir / "run", processor, num_workers=1, num_replicas=world, rank=rank)
    trainer.train()
    torch.save({"state": trainer.model.state_dict(), "skips": dict(trainer.skip_stats.counts),
                "local": dict(trainer.local_skip_stats.counts), "logs": training_logs(trainer)},
               out_dir / f"rank{rank}.pt")
    os._exit(0)  # no process-group teardown at exit (a rank once hung there)


def test_two_ranks_skip_the_same_steps_and_sum_their_counts(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", __file__,
               str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert ranks[0]["local"] == {"undecodable": 1} and ranks[1]["local"] == {"undecodable": 1, "non_finite_audio": 1}
    for rank in ranks:
        assert rank["skips"] == {"undecodable": 2, "non_finite_audio": 1}  # summed over ranks, on each
        assert [entry["step"] for entry in rank["logs"]] == [1, 2, 3]
        assert "loss" not in rank["logs"][0] and rank["logs"][0]["skipped_micro_batches"] == 1
        assert all(math.isfinite(entry["loss"]) for entry in rank["logs"][1:])
    for name, value in ranks[0]["state"].items():  # the ranks took the same steps
        torch.testing.assert_close(ranks[1]["state"][name], value, rtol=0, atol=0, msg=name)
    trained = ranks[0]["state"]["audio_model.patch_embed.weight"]
    torch.manual_seed(0)
    initial = SlapForPreTraining(SlapConfig.from_size("micro")).state_dict()["audio_model.patch_embed.weight"]
    assert not torch.equal(trained, initial)


if __name__ == "__main__":
    distributed_main(Path(sys.argv[1]))
