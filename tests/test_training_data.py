"""Tests of the training data pipeline: loaders, skip counting, keyword captions, token-budget
batching and the collator. Run: `pytest tests/test_training_data.py`.

The `processor` fixture (conftest.py) is `SlapProcessor(SlapFeatureExtractor(), build_test_tokenizer())`."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile
import torch

from slap_audio.data import sources as data
from slap_audio.data.sources import (
    CAPTION_TEMPLATES,
    AudioTextDataset,
    SkipStats,
    keyword_to_captions,
    load_audio_text_dataset,
)
from slap_audio.modeling_slap import SlapFeatureExtractor
from slap_audio.modeling_slap.packed_attention import length_groups
from slap_audio.training.batching import (
    DEFAULT_GEOMETRY,
    PatchGeometry,
    TokenBudgetBatchSampler,
    TokenBudgetStream,
    batching_stats,
    fixed_size_batches,
    pack_by_token_budget,
)
from slap_audio.training.collator import SlapCollator


def wave(seconds: float, rate: int = 16000, channels: int = 1, seed: int = 0) -> np.ndarray:
    samples = int(round(seconds * rate))
    shape = (samples,) if channels == 1 else (samples, channels)
    return (0.1 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def write_corpus(folder: Path) -> list[dict]:
    """Good clips plus every kind of bad item; returns the metadata rows (also written as JSONL)."""
    folder.mkdir(parents=True, exist_ok=True)
    soundfile.write(folder / "a.wav", wave(1.0, seed=1), 16000, subtype="FLOAT")
    soundfile.write(folder / "b.wav", wave(0.5, 44100, channels=2, seed=2), 44100, subtype="FLOAT")
    soundfile.write(folder / "c.flac", (wave(2.3, 22050, seed=3) * 8).clip(-1, 1), 22050)
    soundfile.write(folder / "dog.wav", wave(0.7, seed=4), 16000, subtype="FLOAT")
    nan = wave(0.4, seed=5)
    nan[100] = np.nan
    soundfile.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    soundfile.write(folder / "zero.wav", np.zeros(0, np.float32), 16000)  # valid header, 0 samples
    (folder / "empty.wav").write_bytes(b"")  # 0-byte file
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x01garbage" * 10)
    rows = [
        {"file_name": "a.wav", "captions": ["a low hum", "a quiet hum"], "label": "hum"},
        {"file_name": "b.wav", "caption": "two beeps|a pair of beeps"},
        {"file_name": "c.flac", "caption": "rain"},
        {"file_name": "dog.wav", "label": "dog"},  # label only → templates
        {"file_name": "nan.wav", "caption": "a NaN clip"},  # found when decoded
        {"file_name": "zero.wav", "caption": "no samples"},
        {"file_name": "empty.wav", "caption": "an empty file"},
        {"file_name": "corrupt.wav", "caption": "garbage"},
        {"file_name": "missing.wav", "caption": "not there"},
        {"file_name": "a.wav", "clip_id": "a-no-text"},  # no caption, no label
    ]
    with open(folder / "metadata.jsonl", "w") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    return rows


GOOD_IDS = ["a.wav", "b.wav", "c.flac", "dog.wav"]
LOAD_SKIPS = {"empty_audio": 1, "undecodable": 2, "missing_file": 1, "no_text": 1}


def good(examples) -> list[dict]:
    return [e for e in examples if e["skip_reason"] is None]


def assert_same_examples(left: list[dict], right: list[dict]) -> None:
    assert [e["clip_id"] for e in left] == [e["clip_id"] for e in right]
    for a, b in zip(left, right, strict=True):
        assert a["captions"] == b["captions"] and a["label"] == b["label"]
        assert a["audio"]["sampling_rate"] == b["audio"]["sampling_rate"]
        np.testing.assert_array_equal(a["audio"]["array"], b["audio"]["array"])
        assert a["duration"] == pytest.approx(b["duration"])


# ---------------------------------------------------------------------------------------------
# loaders


def test_audio_folder_skips_and_counts_bad_items(tmp_path, processor):
    write_corpus(tmp_path)
    dataset = load_audio_text_dataset(tmp_path)
    assert isinstance(dataset, AudioTextDataset)
    assert dict(dataset.skip_stats.counts) == LOAD_SKIPS
    assert dataset.skip_stats.examples["missing_file"] == ["missing.wav"]
    assert dataset.clip_ids == [*GOOD_IDS, "nan.wav"]
    assert dataset.durations == pytest.approx([1.0, 0.5, 2.3, 0.7, 0.4], abs=1e-4)

    examples = [dataset[i] for i in range(len(dataset))]
    a, b, c, dog, nan = examples
    assert a["captions"] == ["a low hum", "a quiet hum"] and a["label"] == "hum"
    assert b["captions"] == ["two beeps", "a pair of beeps"] and b["label"] is None
    assert b["audio"]["array"].shape == (22050, 2) and b["audio"]["sampling_rate"] == 44100
    assert c["audio"]["array"].dtype == np.float32 and c["audio"]["sampling_rate"] == 22050
    assert dog["captions"] == keyword_to_captions("dog") and dog["captions"][0] == "The sound of dog."
    assert nan["audio"] is None and nan["skip_reason"] == "non_finite_audio"
    for example, expected in zip(examples, dataset.durations, strict=True):
        assert set(example) == set(data.EXAMPLE_COLUMNS)
        assert example["duration"] == pytest.approx(expected)

    collator = SlapCollator(processor, return_metadata=True)
    batch = collator([*examples, None])
    assert batch["clip_ids"] == GOOD_IDS
    assert batch["skipped"].counts == {"non_finite_audio": 1, "none_example": 1}
    assert collator.skip_stats.examples["non_finite_audio"] == ["nan.wav"]
    assert batch["audio_lengths"].shape == (4,) and batch["input_ids"].shape[0] == 4
    total = SkipStats(max_examples=1)
    total.update(dataset.skip_stats)
    total.update(collator.skip_stats)
    total.update({"undecodable": 2})
    assert total.total == 9 and total.counts["undecodable"] == 4 and total.examples["undecodable"] == ["empty.wav"]
    assert total.summary().startswith("skipped 9 items: empty_audio=1 (zero.wav); missing_file=1 (missing.wav)")


def test_file_broken_after_loading_is_skipped_at_training_time(tmp_path, processor):
    write_corpus(tmp_path)
    dataset = load_audio_text_dataset(tmp_path / "metadata.jsonl")  # a manifest: same rows
    assert dataset.clip_ids == [*GOOD_IDS, "nan.wav"]
    (tmp_path / "a.wav").write_bytes(b"not audio any more")
    (tmp_path / "c.flac").unlink()
    reasons = [dataset[i]["skip_reason"] for i in range(3)]
    assert reasons == ["undecodable", None, "missing_file"]
    collator = SlapCollator(processor)
    batch = collator([dataset[i] for i in range(len(dataset))])
    assert batch["audio_lengths"].shape == (2,)
    assert dict(collator.skip_stats.counts) == {"undecodable": 1, "missing_file": 1, "non_finite_audio": 1}
    empty = collator([dataset[0]])  # nothing usable: an empty batch, no exception
    assert empty["audio_lengths"].shape == (0,) and empty["input_features"].shape == (0, 64)


def test_csv_metadata_manifest_paths_and_column_mapping(tmp_path):
    write_corpus(tmp_path / "clips")
    csv_folder = tmp_path / "csv"
    csv_folder.mkdir()
    (csv_folder / "metadata.csv").write_text(
        "file_name,text,category\n"
        "../clips/a.wav,hum one|hum two,\n"
        '../clips/b.wav,"[""first"", ""second""]",beep\n'
        "../clips/dog.wav,,dog\n"
        "../clips/missing.wav,gone,\n"
    )
    dataset = load_audio_text_dataset(csv_folder, caption_column="text", label_column="category")
    assert [dataset[i]["captions"] for i in range(2)] == [["hum one", "hum two"], ["first", "second"]]
    assert dataset[1]["label"] == "beep"
    assert dataset[2]["captions"] == keyword_to_captions("dog")
    assert dict(dataset.skip_stats.counts) == {"missing_file": 1}

    manifest = tmp_path / "lists" / "train.jsonl"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps({"path": "../clips/c.flac", "captions": "x|y", "clip_id": "c"}) + "\n"
                        + json.dumps({"audio": "../clips/a.wav", "caption": "hum", "duration": 99.0}) + "\n"
                        + "{not json\n")
    dataset = load_audio_text_dataset(manifest)
    assert dataset.clip_ids == ["c", "../clips/a.wav"] and dataset[0]["captions"] == ["x", "y"]
    assert dataset.durations == pytest.approx([2.3, 1.0], abs=1e-4)  # probed, not the metadata's 99
    assert dict(dataset.skip_stats.counts) == {"bad_metadata": 1}
    trusted = load_audio_text_dataset(manifest, probe=False, duration_column="duration")
    assert trusted.durations[1] == 99.0


def test_keyword_to_caption_templates_chosen_per_seed_and_epoch(processor):
    assert keyword_to_captions(["dog", "rain", "wind"])[1] == "Dog, rain and wind can be heard."
    assert len(keyword_to_captions("siren")) == len(CAPTION_TEMPLATES)
    examples = [{"audio": {"array": wave(0.3), "sampling_rate": 16000}, "captions": keyword_to_captions(label),
                 "label": label, "duration": 0.3, "clip_id": f"clip-{i}", "skip_reason": None}
                for i, label in enumerate(["dog", "cat", "bell", "rain", "wind", "siren"])]

    def chosen(seed: int, epoch: int) -> list[str]:
        collator = SlapCollator(processor, seed=seed)
        collator.set_epoch(epoch)
        return [collator.choose_caption(e) for e in examples]

    first = chosen(0, 0)
    assert first == chosen(0, 0)  # reproducible
    assert first != chosen(0, 1) and first != chosen(1, 0)  # varies with epoch and seed
    assert all(c in keyword_to_captions(e["label"]) for c, e in zip(first, examples, strict=True))
    assert SlapCollator(processor, train=False).choose_caption(examples[0]) == "The sound of dog."


def test_saved_dataset_as_hub_id_with_column_mapping_and_class_labels(tmp_path):
    def wav_bytes(seconds: float, seed: int) -> bytes:
        path = tmp_path / f"tmp{seed}.wav"
        soundfile.write(path, wave(seconds, seed=seed), 16000)
        return path.read_bytes()

    # encoding through `Audio` needs torchcodec: store the struct, then declare it `Audio`
    features = datasets.Features({"sound": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                                  "text": datasets.Value("string"), "cls": datasets.ClassLabel(names=["dog", "bell"])})
    table = {"sound": [{"bytes": wav_bytes(0.5, 0), "path": "x.wav"}, {"bytes": b"garbage", "path": "y.wav"},
                       {"bytes": wav_bytes(0.25, 1), "path": "z.wav"}],
             "text": ["a dog barks", "broken", None], "cls": [0, 1, 1]}
    saved = datasets.Dataset.from_dict(table, features=features).cast_column("sound", datasets.Audio())
    assert isinstance(saved.features["sound"], datasets.Audio)
    datasets.DatasetDict({"train": saved}).save_to_disk(tmp_path / "saved")

    options = {"audio_column": "sound", "caption_column": "text", "label_column": "cls"}
    dataset = load_audio_text_dataset(tmp_path / "saved", split="train", **options)
    assert dataset.clip_ids == ["0", "2"] and dict(dataset.skip_stats.counts) == {"undecodable": 1}
    first, third = dataset[0], dataset[1]
    assert first["captions"] == ["a dog barks"] and first["label"] == "dog"
    assert third["captions"] == keyword_to_captions("bell") and third["label"] == "bell"
    assert third["audio"]["array"].shape == (4000,) and dataset.durations == [0.5, 0.25]

    stream = load_audio_text_dataset(tmp_path / "saved", split="train", streaming=True, **options)
    streamed = list(stream)
    assert [e["skip_reason"] for e in streamed] == [None, "undecodable", None]
    assert_same_examples(good(streamed), [first, third])


def test_local_parquet_folder_through_load_dataset(tmp_path):
    folder = tmp_path / "hubby"
    folder.mkdir()
    arrays = {"audio": [{"array": wave(0.2, seed=8).tolist(), "sampling_rate": 16000}, {"array": [], "sampling_rate": 16000}],
              "captions": [["stored array"], ["nothing"]], "clip_id": ["s0", "s1"]}
    datasets.Dataset.from_dict(arrays).to_parquet(str(folder / "data.parquet"))
    dataset = load_audio_text_dataset(str(folder), cache_dir=str(tmp_path / "cache"))
    assert dataset.clip_ids == ["s0"] and dict(dataset.skip_stats.counts) == {"empty_audio": 1}
    assert dataset[0]["audio"]["array"] == pytest.approx(wave(0.2, seed=8)) and dataset.durations == [0.2]


def test_streaming_shards_match_map_style(tmp_path):
    write_corpus(tmp_path)
    manifest = tmp_path / "metadata.jsonl"
    mapped = load_audio_text_dataset(manifest)
    streamed = list(load_audio_text_dataset(manifest, streaming=True))
    assert len(streamed) == 10 and isinstance(load_audio_text_dataset(manifest, streaming=True), datasets.IterableDataset)
    assert_same_examples(good(streamed), good(mapped[i] for i in range(len(mapped))))
    skipped = SkipStats()
    for example in streamed:
        if example["skip_reason"]:
            skipped.add(example["skip_reason"], example["clip_id"])
    assert dict(skipped.counts) == {**LOAD_SKIPS, "non_finite_audio": 1}

    shards = tmp_path / "shards"
    shards.mkdir()
    lines = manifest.read_text().splitlines()
    for k in range(2):
        (shards / f"part-{k}.jsonl").write_text("\n".join(lines[k::2]) + "\n")
    shard_stream = load_audio_text_dataset("json", data_files=str(shards / "*.jsonl"), streaming=True,
                                           base_dir=tmp_path)
    assert shard_stream.n_shards == 2
    assert sorted(e["clip_id"] for e in good(shard_stream)) == sorted([*GOOD_IDS])


def test_builtin_map_style_and_streaming_agree():
    from slap_audio.data.builtin_data import generate_clip

    mapped = load_audio_text_dataset("builtin:validation", num_clips=3, seed=5)
    streamed = list(load_audio_text_dataset("builtin", split="validation", num_clips=3, seed=5, streaming=True))
    examples = [mapped[i] for i in range(3)]
    assert_same_examples(examples, streamed)
    reference = generate_clip(5, "validation", 1)
    np.testing.assert_array_equal(examples[1]["audio"]["array"], reference["audio"])
    assert examples[1]["captions"] == reference["captions"] and examples[1]["label"] == reference["label"]
    assert mapped.durations == pytest.approx([e["duration"] for e in examples])


def test_builtin_audiofolder_split_subfolder(tmp_path):
    from slap_audio.data.builtin_data import write_audiofolder

    write_audiofolder(tmp_path, {"validation": 2}, seed=3, num_workers=1)
    dataset = load_audio_text_dataset(tmp_path, split="validation")
    builtin = load_audio_text_dataset("builtin:validation", num_clips=2, seed=3)
    assert_same_examples([dataset[i] for i in range(2)], [builtin[i] for i in range(2)])


# ---------------------------------------------------------------------------------------------
# token budget


def test_token_count_matches_feature_extractor():
    extractor, geometry = SlapFeatureExtractor(), DEFAULT_GEOMETRY
    assert PatchGeometry.of(extractor) == geometry and geometry.tokens_per_second == 25.0
    for samples in [1, 159, 160, 2560, 2561, 16000, 480000, 123457]:
        assert geometry.tokens_for_samples(samples) == extractor.num_frames(samples) // 16 * 4
        assert geometry.tokens_for_duration(samples / 16000) == geometry.tokens_for_samples(samples)
    assert geometry.tokens_for_duration(10.0) == 252 and geometry.tokens_for_duration(40.0, crop_seconds=30.0) == 752
    assert geometry.seconds_for_tokens(752) == pytest.approx(30.08)
    assert geometry.tokens_for_duration(geometry.seconds_for_tokens(750)) <= 750


def test_other_features_are_counted_as_the_encoder_counts_them(processor):
    """A 20 ms hop and 128 mel bins (12.5 tokens/s × 2): the budget follows the features and the
    patches of the model, checked against the tokens the audio encoder really produces."""
    from slap_audio.modeling_slap import SlapAudioModel, SlapConfig, SlapProcessor

    extractor = SlapFeatureExtractor(feature_size=128, hop_length=320)
    config = SlapConfig.from_size("micro").audio_config
    config.num_mel_bins = 128
    geometry = PatchGeometry.of(extractor, config)
    assert (geometry.frequency_patches, geometry.tokens_per_second) == (8, 25.0)
    model = SlapAudioModel(config).eval()
    durations = [0.3, 2.0, 5.17]
    waves = [np.zeros(int(seconds * 16000), dtype=np.float32) for seconds in durations]
    with torch.no_grad():
        tokens = model(**extractor(waves, sampling_rate=16000)).last_hidden_state.shape[-2]
    assert tokens == sum(geometry.tokens_for_duration(seconds) for seconds in durations)
    collator = SlapCollator(SlapProcessor(extractor, processor.tokenizer), max_tokens=80, crop_seconds=None, geometry=geometry)
    assert collator.crop_seconds == pytest.approx(3.2)  # 10 patch columns of 8 tokens, 0.32 s each
    config.patch_frames = 8
    with pytest.raises(ValueError, match="patch_frames=8"):
        PatchGeometry.of(extractor, config)


def realistic_durations(count: int, seed: int = 0) -> list[float]:
    return np.random.default_rng(seed).uniform(1.0, 30.0, count).round(3).tolist()


def test_token_budget_batches_cover_each_clip_once_within_budget():
    durations = [*realistic_durations(300), 90.0, 120.0]  # two clips longer than the budget
    sampler = TokenBudgetBatchSampler.from_durations(durations, max_tokens=2000, max_clips=12, seed=3)
    lengths = sampler.lengths
    batches = list(sampler)
    assert len(sampler) == len(batches)
    assert sorted(i for batch in batches for i in batch) == list(range(len(durations)))
    for batch in batches:
        assert len(batch) <= 12
        assert sum(lengths[i] for i in batch) <= 2000 or len(batch) == 1
    assert sorted(b for b in batches if sum(lengths[i] for i in b) > 2000) == [[300], [301]]

    sampler.set_epoch(1)
    epoch_one = list(sampler)
    assert epoch_one != batches
    again = TokenBudgetBatchSampler.from_durations(durations, max_tokens=2000, max_clips=12, seed=3)
    again.set_epoch(1)
    assert list(again) == epoch_one and len(again) == len(epoch_one)

    in_order = TokenBudgetBatchSampler([4] * 10, max_tokens=12, shuffle=False, open_batches=1)
    assert list(in_order) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


@pytest.mark.parametrize("drop_last", [True, False])
def test_token_budget_replicas_get_equal_lengths_and_disjoint_clips(drop_last):
    lengths = [DEFAULT_GEOMETRY.tokens_for_duration(d) for d in realistic_durations(157, seed=1)]
    ranks = [TokenBudgetBatchSampler(lengths, 1500, drop_last=drop_last, num_replicas=2, rank=r, seed=9)
             for r in range(2)]
    for sampler in ranks:
        sampler.set_epoch(4)
    per_rank = [list(sampler) for sampler in ranks]
    total = len(ranks[0].all_batches())
    assert total % 2 == 1  # the case that needs padding or dropping
    assert len(per_rank[0]) == len(per_rank[1]) == len(ranks[0]) == len(ranks[1])
    clips = [[i for batch in batches for i in batch] for batches in per_rank]
    if drop_last:
        assert not set(clips[0]) & set(clips[1]) and len(per_rank[0]) == total // 2
    else:
        assert set(clips[0]) | set(clips[1]) == set(range(len(lengths)))
        padded = ranks[0].all_batches()[0]  # the repeated batch goes to rank 1
        assert set(clips[0]) & set(clips[1]) == set(padded)


def test_packing_statistics_fill_and_waste():
    durations = realistic_durations(1000, seed=2)
    sampler = TokenBudgetBatchSampler.from_durations(durations, max_tokens=16384, crop_seconds=30.0)
    stats = sampler.stats()
    assert stats.num_clips == 1000 and stats.max_batch_tokens <= 16384
    assert stats.fill_ratio > 0.97 and stats.padding_waste < 0.01
    clips_per_batch = round(1000 / stats.num_batches)
    padded = batching_stats(fixed_size_batches(1000, clips_per_batch), sampler.lengths, durations=durations)
    assert padded.pad_to_longest_waste > 0.3 > stats.padding_waste
    assert pack_by_token_budget([("x", 4)] * 3, max_tokens=8, open_batches=1).__next__() == ["x", "x"]


def test_token_budget_stream_batches_examples(tmp_path):
    write_corpus(tmp_path)
    stream = load_audio_text_dataset(tmp_path, streaming=True)
    batches = list(TokenBudgetStream(stream, max_tokens=60, crop_seconds=1.0))
    examples = [e for batch in batches for e in batch]
    assert sorted(e["clip_id"] for e in examples) == sorted(e["clip_id"] for e in stream)  # each once
    for batch in batches:
        assert any(e["skip_reason"] is None for e in batch)  # broken items ride along, never alone
        lengths = [DEFAULT_GEOMETRY.tokens_for_duration(e["duration"], 1.0) for e in good(batch)]
        assert sum(lengths) <= 60 or len(lengths) == 1
    assert len(batches) > 1


# ---------------------------------------------------------------------------------------------
# collator


def clip_example(clip_id: str, seconds: float, rate: int = 16000, channels: int = 1, seed: int = 0) -> dict:
    return {"audio": {"array": wave(seconds, rate, channels, seed), "sampling_rate": rate},
            "captions": [f"{clip_id} first", f"{clip_id} second", f"{clip_id} third"], "label": None,
            "duration": seconds, "clip_id": clip_id, "skip_reason": None}


def test_collator_crops_in_training_only_and_deterministically(processor):
    examples = [clip_example("long", 3.7, seed=1), clip_example("short", 0.8, seed=2),
                clip_example("stereo", 2.5, rate=44100, channels=2, seed=3)]
    train = SlapCollator(processor, crop_seconds=1.5, seed=11)
    batch = train(examples)
    repeat = SlapCollator(processor, crop_seconds=1.5, seed=11)(examples)  # a fresh collator, same seed
    assert all(torch.equal(batch[key], repeat[key]) if torch.is_tensor(batch[key]) else batch[key] == repeat[key]
               for key in batch)
    windows = [train.crop_window(e) for e in examples]
    assert windows[1] == (0, 12800) and windows[0][1] == 24000 and windows[2][1] == 66150
    assert windows[0][0] > 0 or windows[2][0] > 0

    extractor = processor.feature_extractor
    expected = [extractor(train.crop(e), sampling_rate=e["audio"]["sampling_rate"]) for e in examples]
    assert batch["audio_lengths"].tolist() == [int(x["audio_lengths"][0]) for x in expected] == [160, 80, 160]
    torch.testing.assert_close(batch["input_features"], torch.cat([x["input_features"] for x in expected]),
                               rtol=0, atol=0)
    assert batch["audio_lengths"].sum() // 16 * 4 <= sum(DEFAULT_GEOMETRY.tokens_for_duration(e["duration"], 1.5) for e in examples)
    assert train.crop(examples[2]).shape == (66150, 2)

    train.set_epoch(1)
    assert [train.crop_window(e) for e in examples] != windows  # new windows each epoch
    reordered = train(examples[::-1])
    assert torch.equal(reordered["audio_lengths"], train(examples)["audio_lengths"].flip(0))

    evaluation = SlapCollator(processor, crop_seconds=1.5, train=False)(examples)
    assert evaluation["audio_lengths"].tolist() == [384, 80, 256]  # whole clips
    whole = extractor(examples[0]["audio"]["array"], sampling_rate=16000)["input_features"]
    torch.testing.assert_close(evaluation["input_features"][:384], whole, rtol=0, atol=0)
    first = processor.tokenizer([e["captions"][0] for e in examples], padding=True, return_tensors="pt")
    assert torch.equal(evaluation["input_ids"], first["input_ids"])


def test_collator_text_outputs_and_token_cap(processor):
    examples = [clip_example("a", 40.0, seed=1), clip_example("b", 0.3, seed=2)]
    examples[0]["captions"] = ["a hum"]  # 4 tokens with [CLS] and [SEP]: padded
    examples[1]["captions"] = ["one two three four five six seven eight nine ten eleven twelve thirteen"]
    collator = SlapCollator(processor, max_tokens=400, crop_seconds=30.0, caption_max_length=8)
    batch = collator(examples)
    tensors = {"input_features", "audio_lengths", "input_ids", "attention_mask", "caption_labels"}
    assert set(batch) == tensors | {"max_audio_length", "audio_length_groups"}
    assert all(isinstance(batch[k], torch.Tensor) for k in tensors)
    # the pack's layout as host ints (the encoder then reads nothing on the host)
    assert batch["max_audio_length"] == int(batch["audio_lengths"].max())
    assert batch["audio_length_groups"] == length_groups(batch["audio_lengths"].tolist())
    assert batch["audio_lengths"][0] // 16 * 4 <= 400  # the 40 s clip cut to the token budget
    assert batch["input_ids"].shape[1] == 8
    labels, mask = batch["caption_labels"], batch["attention_mask"]
    assert torch.equal(labels[mask == 1], batch["input_ids"][mask == 1]) and (labels[mask == 0] == -100).all()
    assert (mask == 0).any()


def test_dataloader_with_sampler_and_collator_is_reproducible(processor):
    dataset = load_audio_text_dataset("builtin:test", num_clips=5, seed=2)
    sampler = TokenBudgetBatchSampler.from_durations(dataset.durations, max_tokens=500, crop_seconds=8.0, seed=1)
    collator = SlapCollator(processor, crop_seconds=8.0, seed=1)

    def epoch_batches(epoch: int, num_workers: int = 0) -> list[dict]:
        sampler.set_epoch(epoch)
        collator.set_epoch(epoch)
        return list(torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collator,
                                                num_workers=num_workers))

    first = epoch_batches(0)
    for batch in first:
        assert batch["audio_lengths"].sum() // 16 * 4 <= 500 or len(batch["audio_lengths"]) == 1
    for left, right in zip(first, epoch_batches(0, num_workers=2), strict=True):  # workers change nothing
        for key in left:
            assert torch.equal(left[key], right[key]) if torch.is_tensor(left[key]) else left[key] == right[key]
    assert sum(len(b["audio_lengths"]) for b in first) == 5
    assert any(not torch.equal(a["input_features"], b["input_features"])
               for a, b in zip(first, epoch_batches(1), strict=False))
