"""Data at scale: the duration cache, partial decoding of crops, tar / parquet shards and
`slap-train --streaming` (rank- and worker-aware, resumable). Run: `pytest tests/test_data_scale.py`.

The `processor` fixture (conftest.py) is `SlapProcessor(SlapFeatureExtractor(), build_test_tokenizer())`."""

from __future__ import annotations

import io
import itertools
import json
import signal
import socket
import subprocess
import tarfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import yaml
from duration_probe_worker import probe_on_rank
from test_reproducibility import ENV, ROOT, SLAP_TRAIN, assert_same_weights, logged_steps, run
from test_training_data import GOOD_IDS, LOAD_SKIPS, wave, write_corpus

from slap_audio.data.durations import CACHE_NAME, probe_durations
from slap_audio.data.examples import SkippedItem
from slap_audio.data.shards import iter_shard, list_shards, write_shards
from slap_audio.data.sources import load_audio_text_dataset
from slap_audio.training.cli import read_config_file
from slap_audio.training.collator import SlapCollator
from slap_audio.training.streaming import ShardStream


@pytest.fixture
def header_reads(monkeypatch) -> list[str]:
    """The files whose header `soundfile.info` reads (wrapped, not replaced)."""
    reads, info = [], soundfile.info

    def counting(file, *args, **kwargs):
        reads.append(str(file))
        return info(file, *args, **kwargs)

    monkeypatch.setattr(soundfile, "info", counting)
    return reads


@pytest.fixture
def frames_read(monkeypatch) -> list[int]:
    """The frames each `SoundFile.read` call returns (wrapped, not replaced)."""
    counts, read = [], soundfile.SoundFile.read

    def counting(self, *args, **kwargs):
        out = read(self, *args, **kwargs)
        counts.append(len(out))
        return out

    monkeypatch.setattr(soundfile.SoundFile, "read", counting)
    return counts


# ---------------------------------------------------------------------------------------------
# durations: probed once, cached next to the data


def test_durations_are_cached_and_stale_entries_reprobed(tmp_path, header_reads):
    write_corpus(tmp_path)
    first = load_audio_text_dataset(tmp_path)
    assert (tmp_path / CACHE_NAME).is_file() and len(header_reads) == 9  # 10 rows, a.wav twice, 1 missing
    header_reads.clear()
    again = load_audio_text_dataset(tmp_path)
    assert header_reads == []  # every header from the cache, broken files included
    assert again.durations == first.durations and dict(again.skip_stats.counts) == LOAD_SKIPS

    soundfile.write(tmp_path / "c.flac", wave(3.5, 22050, seed=9).clip(-1, 1), 22050)  # changed: probed again
    changed = load_audio_text_dataset(tmp_path)
    assert [Path(p).name for p in header_reads] == ["c.flac"]
    assert changed.durations[2] == pytest.approx(3.5, abs=1e-4)

    results = probe_durations(["a.wav", "missing.wav", "corrupt.wav"], base_dir=tmp_path, cache_file=None)
    assert results[0] == pytest.approx(1.0)
    assert [r.reason for r in results[1:] if isinstance(r, SkippedItem)] == ["missing_file", "undecodable"]


def test_rank_zero_probes_and_the_others_read_the_cache(tmp_path):
    write_corpus(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torch.multiprocessing.spawn(probe_on_rank, args=(2, port, str(tmp_path)), nprocs=2)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["reads"] for r in ranks] == [4, 0]  # rank 1 waited for rank 0's cache
    assert ranks[0]["durations"] == ranks[1]["durations"] == pytest.approx([1.0, 0.5, 2.3, 0.7], abs=1e-4)


def test_a_failure_on_rank_zero_while_probing_stops_every_rank(tmp_path):
    write_corpus(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torch.multiprocessing.spawn(probe_on_rank, args=(2, port, str(tmp_path), True), nprocs=2)  # returns: no hang
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["error"] == "MemoryError: out of memory reading a header"
    assert ranks[1] == {"reads": 0, "error": "RuntimeError: rank 0 failed while probing the clip durations: "
                                             "MemoryError: out of memory reading a header"}


def test_duration_cache_in_a_read_only_folder_still_probes(tmp_path):
    write_corpus(tmp_path)
    unwritable = tmp_path / "no-such-folder" / CACHE_NAME
    results = probe_durations(["a.wav", "dog.wav"], base_dir=tmp_path, cache_file=unwritable)
    assert results == pytest.approx([1.0, 0.7], abs=1e-4) and not unwritable.exists()


# ---------------------------------------------------------------------------------------------
# crops decoded partially


@pytest.mark.parametrize("suffix", ["flac", "wav"])
def test_a_crop_of_a_long_file_reads_only_its_frames(tmp_path, processor, frames_read, suffix):
    long = wave(120.0, seed=4)  # 1.92 M samples: a whole decode would show
    soundfile.write(tmp_path / f"long.{suffix}", long, 16000, subtype="PCM_24" if suffix == "flac" else "FLOAT")
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": f"long.{suffix}", "caption": "noise"}) + "\n")
    dataset = load_audio_text_dataset(tmp_path)
    collator = SlapCollator(processor, crop_seconds=2.0, seed=7)
    collator.set_epoch(3)
    whole = dataset[0]  # decode everything, then the collator crops
    assert frames_read == [len(long)]
    frames_read.clear()
    dataset.set_crops(collator)
    cropped = dataset[0]
    assert frames_read == [32000]  # 2 s at 16 kHz, nothing else
    start, length = collator.crop_window(whole)
    assert start > 0 and length == 32000
    np.testing.assert_array_equal(cropped["audio"]["array"], whole["audio"]["array"][start : start + length])
    a, b = collator([whole]), collator([cropped])
    assert all(torch.equal(a[key], b[key]) if torch.is_tensor(a[key]) else a[key] == b[key]
               for key in a)  # the model sees the same batch
    collator.set_epoch(4)  # a new epoch, a new window, still read partially
    assert not np.array_equal(dataset[0]["audio"]["array"], cropped["audio"]["array"])


# ---------------------------------------------------------------------------------------------
# shards


@pytest.mark.parametrize("format", ["tar", "parquet"])
def test_shards_written_from_a_folder_read_back_equal(tmp_path, processor, format):
    write_corpus(tmp_path / "clips")
    report = write_shards(tmp_path / "clips", tmp_path / "shards", format=format, clips_per_shard=2)
    assert report.clips == 5 and len(report.shards) == 3 and dict(report.skip_stats.counts) == LOAD_SKIPS
    assert list_shards(tmp_path / "shards") == report.shards
    rows = [row for shard in report.shards for row in iter_shard(shard)]
    assert [row["clip_id"] for row in rows] == [*GOOD_IDS, "nan.wav"]

    mapped = load_audio_text_dataset(tmp_path / "clips")
    collator = SlapCollator(processor, crop_seconds=1.0, seed=2)
    stream = ShardStream(tmp_path / "shards", collator, max_tokens=200, seed=2, shuffle_buffer=1)
    first_pass = [e for batch in stream.epoch_batches(0) for e in batch]
    endless = [e["clip_id"] for batch in itertools.islice(iter(stream), 4) for e in batch]
    assert endless[: len(first_pass)] == [e["clip_id"] for e in first_pass]  # then the next pass
    assert sorted(e["clip_id"] for e in first_pass) == sorted([*GOOD_IDS, "nan.wav"])
    assert next(e for e in first_pass if e["clip_id"] == "nan.wav")["skip_reason"] == "non_finite_audio"
    mapped.set_crops(collator)
    for index, clip_id in enumerate(GOOD_IDS):  # the stream's crops are the map-style crops of epoch 0
        got, expected = next(e for e in first_pass if e["clip_id"] == clip_id), mapped[index]
        assert got["captions"] == expected["captions"] and got["label"] == expected["label"]
        np.testing.assert_array_equal(got["audio"]["array"], expected["audio"]["array"])
    with pytest.raises(FileExistsError):
        write_shards(tmp_path / "clips", tmp_path / "shards", format=format)


@pytest.mark.parametrize("format", ["tar", "parquet"])
def test_an_error_while_writing_leaves_only_whole_shards(tmp_path, monkeypatch, format):
    write_corpus(tmp_path / "clips")
    from slap_audio.data import shards

    calls = []

    def failing(value):  # the fourth clip's audio cannot be read: an unexpected error, not a skip
        calls.append(value)
        if len(calls) == 4:  # the second shard is half written
            raise RuntimeError("disk vanished")
        return real(value)

    real = shards._audio_bytes
    monkeypatch.setattr(shards, "_audio_bytes", failing)
    with pytest.raises(RuntimeError, match="disk vanished"):
        write_shards(tmp_path / "clips", tmp_path / "shards", format=format, clips_per_shard=2)
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == [f"shard-00000.{format}"]
    assert [row["clip_id"] for row in iter_shard(tmp_path / "shards" / f"shard-00000.{format}")] == GOOD_IDS[:2]


def test_broken_tar_samples_are_skipped_and_counted(tmp_path, processor):
    write_corpus(tmp_path / "clips")
    (shard,) = write_shards(tmp_path / "clips", tmp_path / "shards", clips_per_shard=10).shards
    with tarfile.open(shard, "a") as archive:  # audio without metadata, metadata that does not parse
        for name, data in (("x1.wav", (tmp_path / "clips" / "a.wav").read_bytes()), ("x2.json", b"{oops"),
                           ("x2.wav", b"RIFF")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    truncated = tmp_path / "shards" / "shard-00001.tar"
    truncated.write_bytes(Path(shard).read_bytes()[:30000])
    collator = SlapCollator(processor, crop_seconds=1.0, return_metadata=True)
    loader = torch.utils.data.DataLoader(ShardStream(tmp_path / "shards", collator, 300, shuffle_buffer=1),
                                         batch_size=None, collate_fn=collator)
    skipped, clips = Counter(), set()
    for batch in itertools.islice(loader, 6):
        skipped.update(batch["skipped"].counts)
        clips.update(batch["clip_ids"])
    assert clips == set(GOOD_IDS)
    assert skipped["no_text"] >= 1 and skipped["bad_metadata"] >= 1 and skipped["undecodable"] >= 1
    assert skipped["non_finite_audio"] >= 1


def test_each_shard_is_read_by_one_worker_of_one_rank_per_pass(tmp_path, processor):
    write_corpus(tmp_path / "clips")
    write_shards(tmp_path / "clips", tmp_path / "shards", clips_per_shard=1)  # 5 shards
    collator = SlapCollator(processor)
    streams = [ShardStream(tmp_path / "shards", collator, 500, rank=r, world_size=2, seed=1) for r in range(2)]
    for epoch in range(3):
        readers = [s.reader_shards(epoch, w, 2) for s in streams for w in range(2)]
        read = [shard for shards in readers for shard in shards]
        assert sorted(read) == streams[0].shards and all(readers)  # each shard once, no reader idle
    assert streams[0].reader_shards(0, 0, 2) != streams[0].reader_shards(1, 0, 2)  # a new deal each pass
    with pytest.raises(ValueError, match="5 shards for 2 rank"):
        streams[0].reader_shards(0, 0, 3)


def test_a_resumed_stream_continues_where_the_workers_stopped(tmp_path, processor):
    write_corpus(tmp_path / "clips")
    write_shards(tmp_path / "clips", tmp_path / "shards", clips_per_shard=2)
    collator = SlapCollator(processor, crop_seconds=0.6, return_metadata=True)

    def batches(start: int, count: int) -> list[list[str]]:
        stream = ShardStream(tmp_path / "shards", collator, 40, seed=5, start_batch=start, shuffle_buffer=4)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, collate_fn=collator, num_workers=2)
        return [batch["clip_ids"] + sorted(batch["skipped"].examples) for batch in itertools.islice(loader, count)]

    whole = batches(0, 12)
    assert batches(7, 5) == whole[7:]  # 4 batches skipped by one worker, 3 by the other, from headers


# ---------------------------------------------------------------------------------------------
# slap-train --streaming, killed and resumed, in new processes

MAX_STEPS = 4
OVERRIDES = {
    "seed": 3, "max_steps": MAX_STEPS, "save_steps": 2, "logging_steps": 1, "max_tokens": 600, "max_clips": 8,
    "crop_seconds": 4.0, "eval_strategy": "no", "use_cpu": True, "disable_tqdm": True, "streaming": True,
    "dataloader_num_workers": 2,
}


def test_streaming_training_is_killed_and_resumes_exactly(tmp_path):
    from slap_audio.data.builtin_data import write_audiofolder

    folders = write_audiofolder(tmp_path / "data", {"train": 16}, seed=3, num_workers=1, max_duration=6.0)
    write_shards(folders["train"], tmp_path / "shards", format="parquet", clips_per_shard=4)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**read_config_file(str(ROOT / "configs" / "micro.yaml")), **OVERRIDES,
                                      "train_source": str(tmp_path / "shards")}))
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    reference.mkdir()
    run([SLAP_TRAIN, str(config), "--output_dir", str(reference)], cwd=reference)

    resumed.mkdir()
    with (resumed / "killed.log").open("w") as handle:
        process = subprocess.Popen([SLAP_TRAIN, str(config), "--output_dir", str(resumed)], cwd=resumed, env=ENV,
                                   stdout=handle, stderr=subprocess.STDOUT)
    first = resumed / "checkpoint-2" / "trainer_state.json"  # the Trainer writes it last
    deadline = time.monotonic() + 300
    while not first.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert first.is_file() and not (resumed / "slap").exists(), (resumed / "killed.log").read_text()[-3000:]
    run([SLAP_TRAIN, str(config), "--output_dir", str(resumed), "--resume_from_checkpoint",
         str(resumed / "checkpoint-2")], cwd=resumed)
    expected, got = logged_steps(reference), logged_steps(resumed)
    assert sorted(expected) == list(range(1, MAX_STEPS + 1))
    for step in range(3, MAX_STEPS + 1):  # steps 3 and 4 see the batches the uninterrupted run saw
        assert got[step] == expected[step], step
    assert_same_weights(resumed / "slap" / "model.safetensors", reference / "slap" / "model.safetensors")
