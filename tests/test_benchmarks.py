"""Standard benchmarks (eval/benchmarks.py): the public layouts of ESC-50, UrbanSound8K, Clotho and
AudioCaps, rebuilt here in miniature (tone clips), read and scored by their protocols, and `slap-eval
--benchmark` in a fresh process.

    pytest tests/test_benchmarks.py
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from slap_audio.eval.benchmarks import (
    BenchmarkLayoutError,
    audiocaps_stems,
    read_audiocaps,
    read_benchmark,
    read_clotho,
    read_esc50,
    read_us8k,
    run_benchmark,
)
from slap_audio.eval.cli import main
from slap_audio.eval.embed import embed_audio, embed_texts
from slap_audio.eval.retrieval import retrieval_metrics

from conftest import tone

ESC50_HEADER = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
US8K_HEADER = ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]
ESC50_CLASSES = {0: "dog", 14: "chirping_birds", 30: "door_wood_knock"}  # target -> category, as in esc50.csv
US8K_CLASSES = {0: "air_conditioner", 3: "dog_bark", 8: "siren"}


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _write_tone(path: Path, index: int, rate: int = 44100, seconds: float = 0.5) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, tone(seconds, 200.0 + 97.0 * index, rate, seed=index), rate, subtype="PCM_16")


def make_esc50(root: Path) -> Path:
    """ESC-50-master in miniature: 5 folds × 3 classes, one 0.5 s clip each, names like 1-100032-A-0.wav."""
    rows = []
    for fold in range(1, 6):
        for target, category in ESC50_CLASSES.items():
            name = f"{fold}-{1000 + 10 * fold + target}-A-{target}.wav"
            rows.append([name, fold, target, category, "False", 1000 + 10 * fold + target, "A"])
            _write_tone(root / "audio" / name, len(rows))
    _write_csv(root / "meta" / "esc50.csv", ESC50_HEADER, rows)
    return root


def make_us8k(root: Path) -> Path:
    """UrbanSound8K in miniature: 3 folds × 3 classes in audio/fold<k>/, a missing file and a bad row."""
    rows = []
    for fold in range(1, 4):
        for class_id, name in US8K_CLASSES.items():
            file_name = f"{100 + fold}-{class_id}-0-{fold}.wav"
            rows.append([file_name, 100 + fold, 0.0, 0.5, 1, fold, class_id, name])
            _write_tone(root / "audio" / f"fold{fold}" / file_name, len(rows), rate=22050)
    rows.append(["999-3-0-0.wav", 999, 0.0, 0.5, 1, 2, 3, "dog_bark"])  # listed, not on disk
    rows.append(["998-3-0-0.wav", 998, 0.0, 0.5, 1, "two", 3, "dog_bark"])  # fold is not a number
    _write_csv(root / "metadata" / "UrbanSound8K.csv", US8K_HEADER, rows)
    return root


def _captions(index: int) -> list[str]:
    words = ["low hum", "high whistle", "three clicks", "a siren", "rain and wind"][index % 5]
    return [f"{words} {variant}" for variant in ("then silence", "is heard", "over noise", "quiet", "loud")]


def make_clotho(root: Path, split: str = "evaluation") -> Path:
    """Clotho v2: clotho_captions_<split>.csv (file_name, caption_1..5) + <split>/ audio; one clip missing."""
    rows = []
    for index in range(4):
        name = f"clip {index} recording.wav"  # Clotho's file names contain spaces
        rows.append([name, *_captions(index)])
        _write_tone(root / split / name, index, seconds=0.5 + 0.25 * index)
    rows.append(["not downloaded.wav", *_captions(4)])
    _write_csv(root / f"clotho_captions_{split}.csv", ["file_name"] + [f"caption_{i}" for i in range(1, 6)], rows)
    return root


AUDIOCAPS_CLIPS = [("abcdefghijk", "30"), ("-0w1YA1Hm4", "0"), ("Zz_9-8y7x6w", "170"), ("missingclip", "20")]


def make_audiocaps(root: Path) -> Path:
    """AudioCaps test split: test.csv (5 rows per clip) + audio under the naming conventions accepted."""
    rows = []
    for index, (youtube_id, start) in enumerate(AUDIOCAPS_CLIPS):
        rows += [[1000 + 5 * index + k, youtube_id, start, caption] for k, caption in enumerate(_captions(index))]
    rows.insert(3, [2000, AUDIOCAPS_CLIPS[1][0], "0", ""])  # an empty caption row is skipped, not a caption
    _write_csv(root / "test.csv", ["audiocap_id", "youtube_id", "start_time", "caption"], rows)
    _write_tone(root / "audio" / "test" / "abcdefghijk_30.wav", 0)  # aac-datasets: <id>_<start>
    _write_tone(root / "Y-0w1YA1Hm4.flac", 1)  # AudioSet style: Y<id>
    _write_tone(root / "test" / "Zz_9-8y7x6w.wav", 2)  # plain <id>
    return root


# ---------------------------------------------------------------------------------------------
# readers


def test_esc50_reader_follows_the_layout(tmp_path):
    benchmark = read_esc50(make_esc50(tmp_path))
    assert benchmark.classes == ["dog", "chirping birds", "door wood knock"]  # by target, underscores as spaces
    assert len(benchmark.clips) == 15 and benchmark.skipped.total == 0
    assert sorted({c.fold for c in benchmark.clips}) == [1, 2, 3, 4, 5]
    first = benchmark.clips[0]
    assert (first.clip_id, first.label, first.fold) == ("1-1010-A-0.wav", "dog", 1)
    assert first.path == tmp_path / "audio" / "1-1010-A-0.wav"


def test_us8k_reader_skips_and_counts_bad_rows(tmp_path):
    benchmark = read_us8k(make_us8k(tmp_path))
    assert benchmark.classes == ["air conditioner", "dog bark", "siren"]
    assert len(benchmark.clips) == 9
    assert benchmark.skipped.as_dict()["counts"] == {"missing_file": 1, "bad_metadata": 1}
    assert benchmark.clips[4].path == tmp_path / "audio" / "fold2" / "102-3-0-2.wav"


def test_clotho_reader_and_its_splits(tmp_path):
    make_clotho(tmp_path)
    benchmark = read_clotho(tmp_path)
    assert benchmark.split == "evaluation" and read_clotho(tmp_path, "test").split == "evaluation"
    assert [c.clip_id for c in benchmark.clips] == [f"clip {i} recording.wav" for i in range(4)]
    assert all(c.captions == _captions(i) for i, c in enumerate(benchmark.clips))
    assert benchmark.skipped.as_dict()["counts"] == {"missing_file": 1}
    with pytest.raises(BenchmarkLayoutError, match="clotho_captions_validation.csv"):
        read_clotho(tmp_path, "validation")
    with pytest.raises(BenchmarkLayoutError, match="not one of"):
        read_clotho(tmp_path, "training")


def test_audiocaps_reader_groups_captions_and_finds_each_naming(tmp_path):
    benchmark = read_audiocaps(make_audiocaps(tmp_path))
    assert [c.clip_id for c in benchmark.clips] == ["abcdefghijk_30", "-0w1YA1Hm4_0", "Zz_9-8y7x6w_170"]
    assert [c.path.relative_to(tmp_path).as_posix() for c in benchmark.clips] == [
        "audio/test/abcdefghijk_30.wav", "Y-0w1YA1Hm4.flac", "test/Zz_9-8y7x6w.wav"]
    assert all(c.captions == _captions(i) for i, c in enumerate(benchmark.clips))  # 5 each, in file order
    assert benchmark.skipped.as_dict()["counts"] == {"no_text": 1, "missing_file": 1}
    assert benchmark.skipped.examples["missing_file"] == ["missingclip_20"]
    assert audiocaps_stems("abc", "30") == ["abc_30", "abc", "Yabc", "Yabc_30.000_40.000"]


@pytest.mark.parametrize(("name", "make", "missing"), [
    ("esc50", make_esc50, "meta/esc50.csv"), ("us8k", make_us8k, "metadata/UrbanSound8K.csv"),
    ("clotho", make_clotho, "clotho_captions_evaluation.csv"), ("audiocaps", make_audiocaps, "test.csv")])
def test_missing_metadata_file_is_named(tmp_path, name, make, missing):
    make(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(BenchmarkLayoutError, match=missing.replace(".", r"\.")):
        read_benchmark(name, tmp_path)


def test_missing_column_or_audio_folder_is_named(tmp_path):
    make_esc50(tmp_path)
    meta = tmp_path / "meta" / "esc50.csv"
    meta.write_text(meta.read_text().replace("category", "label", 1))
    with pytest.raises(BenchmarkLayoutError, match=r"no column\(s\) \['category'\]"):
        read_esc50(tmp_path)
    make_us8k(tmp_path / "us8k")
    (tmp_path / "us8k" / "audio").rename(tmp_path / "us8k" / "wavs")
    with pytest.raises(BenchmarkLayoutError, match="audio folder .*us8k/audio not found"):
        read_us8k(tmp_path / "us8k")
    with pytest.raises(BenchmarkLayoutError, match="data folder"):
        read_benchmark("esc50", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown benchmark"):
        read_benchmark("esc-50", tmp_path)


# ---------------------------------------------------------------------------------------------
# protocols on the micro model


def _decoded(clips):
    pairs = [soundfile.read(c.path, dtype="float32") for c in clips]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def test_zero_shot_accuracy_per_fold_equals_a_direct_computation(tmp_path, micro_model, processor):
    benchmark = read_esc50(make_esc50(tmp_path))
    result = run_benchmark(micro_model, processor, benchmark, batch_seconds=2.0)  # several chunks of files
    section = result.section

    # direct: each clip embedded alone, the published prompt written out, argmax per clip
    with torch.no_grad():
        audio = torch.cat([embed_audio(micro_model, processor.feature_extractor, [w], [r])
                           for w, r in zip(*_decoded(benchmark.clips), strict=True)])
        prompts = ["This is a sound of dog.", "This is a sound of chirping birds.", "This is a sound of door wood knock."]
        text = embed_texts(micro_model, processor.tokenizer, prompts)
    predicted = (audio @ text.T).argmax(1).numpy()
    truth = np.array([benchmark.classes.index(c.label) for c in benchmark.clips])
    folds = np.array([c.fold for c in benchmark.clips])
    expected = {str(f): float((predicted[folds == f] == truth[folds == f]).mean()) for f in range(1, 6)}
    assert section["fold_top1"] == pytest.approx(expected, abs=1e-12)
    assert section["fold_top1_mean"] == pytest.approx(np.mean(list(expected.values())))
    assert section["fold_top1_std"] == pytest.approx(np.std(list(expected.values())))
    assert section["top1"] == pytest.approx(float((predicted == truth).mean()))
    assert section["top5"] is None and section["num_classes"] == 3 and section["num_folds"] == 5
    assert section["templates"] == ["This is a sound of {}."]
    assert result.zero_shot.confusion.sum() == 15 and [c.clip_id for c in result.clips] == [
        c.clip_id for c in benchmark.clips]


def test_undecodable_clip_is_skipped_and_counted(tmp_path, micro_model, processor):
    make_us8k(tmp_path)
    (tmp_path / "audio" / "fold1" / "101-0-0-1.wav").write_bytes(b"not a wav file")
    result = run_benchmark(micro_model, processor, read_us8k(tmp_path))
    assert result.skipped.as_dict()["counts"] == {"undecodable": 1, "missing_file": 1, "bad_metadata": 1}
    assert len(result.clips) == 8 and list(result.section["fold_top1"]) == ["1", "2", "3"]


def test_retrieval_benchmark_equals_retrieval_metrics_of_the_embeddings(tmp_path, micro_model, processor):
    benchmark = read_audiocaps(make_audiocaps(tmp_path))
    result = run_benchmark(micro_model, processor, benchmark)
    audio = torch.cat([embed_audio(micro_model, processor.feature_extractor, [w], [r])
                       for w, r in zip(*_decoded(benchmark.clips), strict=True)])
    captions = [caption for clip in benchmark.clips for caption in clip.captions]
    text = embed_texts(micro_model, processor.tokenizer, captions)
    expected = retrieval_metrics(audio, text, np.repeat(np.arange(3), 5))
    for direction in ("text_to_audio", "audio_to_text"):
        assert list(result.section[direction]) == ["R@1", "R@5", "R@10", "mAP@10", "MRR@10"]
        for key, value in result.section[direction].items():
            assert value == pytest.approx(expected[f"{direction}/{key}"], abs=1e-12), (direction, key)
    assert result.embedded.captions == captions and result.embedded.caption_to_audio.tolist() == [0] * 5 + [1] * 5 + [2] * 5


# ---------------------------------------------------------------------------------------------
# slap-eval --benchmark, as users run it


def _slap_eval(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(Path(sys.executable).parent / "slap-eval"), *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def test_slap_eval_benchmark_in_a_fresh_process(micro_checkpoint, tmp_path, micro_model, processor):
    data = make_clotho(tmp_path / "clotho")
    out = tmp_path / "eval"
    run = _slap_eval(str(micro_checkpoint), "--benchmark", "clotho", "--data-dir", str(data), "--output-dir", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert list(results) == ["model", "dataset", "metrics", "versions", "elapsed_seconds"]
    dataset = results["dataset"]
    assert (dataset["name"], dataset["benchmark"], dataset["split"]) == ("Clotho", "clotho", "evaluation")
    assert (dataset["num_clips"], dataset["num_captions"]) == (4, 20)
    assert dataset["skipped"]["counts"] == {"missing_file": 1} and "retrieval over all clips" in dataset["protocol"]
    expected = run_benchmark(micro_model, processor, read_clotho(data)).section
    assert list(results["metrics"]["retrieval"]) == ["text_to_audio", "audio_to_text"]
    for direction, values in results["metrics"]["retrieval"].items():
        assert values == pytest.approx(expected[direction], abs=1e-6)
    assert {"similarity_matrix.png", "retrieval_examples.png"} <= {p.name for p in out.glob("*.png")}
    assert "text_to_audio/R@1" in run.stdout  # the printed table



def test_slap_eval_benchmark_zero_shot_section(micro_checkpoint, tmp_path, micro_model, processor):
    esc50 = make_esc50(tmp_path / "esc50")
    out = tmp_path / "eval"
    results = main([str(micro_checkpoint), "--benchmark", "esc50", "--data-dir", str(esc50), "--output-dir", str(out)])
    assert json.loads((out / "results.json").read_text()) == results
    assert results["dataset"]["name"] == "ESC-50" and results["dataset"]["num_clips"] == 15
    zero_shot = results["metrics"]["zero_shot"]
    assert list(zero_shot) == ["top1", "top5", "fold_top1", "fold_top1_mean", "fold_top1_std", "num_folds",
                               "num_classes", "templates"]
    assert zero_shot["fold_top1"] == pytest.approx(
        run_benchmark(micro_model, processor, read_esc50(esc50)).section["fold_top1"], abs=1e-6)
    assert [p.name for p in out.glob("*.png")] == ["confusion_matrix.png"]


def test_slap_eval_benchmark_bad_layout_and_arguments(micro_checkpoint, tmp_path, capsys):
    make_esc50(tmp_path)
    with pytest.raises(SystemExit, match="metadata/UrbanSound8K.csv not found"):
        main([str(micro_checkpoint), "--benchmark", "us8k", "--data-dir", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        main([str(micro_checkpoint), "--benchmark", "esc50"])
    assert exit_info.value.code == 2 and "--benchmark and --data-dir go together" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([str(micro_checkpoint), "--benchmark", "esc-50", "--data-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err
