"""Audio search (`slap_audio.search.SearchIndex`) on a generated library with a micro model.

    pytest tests/test_search.py

The `slap-search` command runs in a fresh process (the test process registers the Auto classes,
which would hide a loading failure users hit). The library mixes rates, channel counts, lengths and formats, holds a broken file, an empty one
and a text file; results are checked against a brute-force cosine ranking computed clip by clip
with the model, and an updated index against a full rebuild.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from slap_audio.data.debian.audio_io import decode_audio
from slap_audio.modeling_slap import SlapModel
from slap_audio.search import ModelMismatch, SearchIndex, scan_library
from slap_audio.search.cli import main

from conftest import tone

# relative path: (seconds, sampling rate, channels, tone frequency, soundfile subtype)
LIBRARY = {
    "UPPER.WAV": (0.7, 11025, 1, 1500.0, "PCM_16"),
    "long/field.ogg": (25.0, 22050, 1, 220.0, "VORBIS"),
    "short.wav": (0.05, 8000, 1, 700.0, "PCM_U8"),
    "stereo48k.wav": (3.3, 48000, 2, 2500.0, "FLOAT"),
    "surround.wav": (1.2, 32000, 6, 90.0, "PCM_24"),
    "tones/a440.wav": (2.0, 16000, 1, 440.0, "PCM_16"),
    "tones/low_hum.flac": (7.5, 44100, 2, 60.0, "PCM_16"),
}
FFMPEG_ONLY = "tones/ffmpeg_only.m4a"  # AAC: libsndfile cannot read it, the ffmpeg fallback can
BROKEN = {"broken.wav", "empty.wav"}
QUERIES = ("a dog barking", "a low hum", "three rapid clicks then silence")
BATCH_SECONDS = 10.0  # small packs, so the 25 s clip goes alone and the short ones share


def write_clip(path, seconds, rate, channels, freq, subtype, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.stack([tone(seconds, freq * (1 + 0.1 * c), rate, seed + c) for c in range(channels)], axis=1)
    soundfile.write(path, audio[:, 0] if channels == 1 else audio, rate, subtype=subtype)


def write_library(root) -> list[str]:
    """The test library under `root`; the paths that must be indexed, sorted."""
    for name, spec in LIBRARY.items():
        write_clip(root / name, *spec)
    (root / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt not really a wave file")
    soundfile.write(root / "empty.wav", np.zeros(0, np.float32), 16000)
    (root / "notes.txt").write_text("not audio")
    indexed = sorted(LIBRARY)
    if shutil.which("ffmpeg"):
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(root / "tones/a440.wav"), "-af", "volume=0.5",
                        "-c:a", "aac", str(root / FFMPEG_ONLY)], check=True)
        indexed = sorted([*indexed, FFMPEG_ONLY])
    return indexed


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "library"
    return root, write_library(root)


@torch.no_grad()
def reference_embeddings(model, processor, root, paths) -> np.ndarray:
    """Each file embedded alone: decoded as stored (channels kept: the feature extractor downmixes)."""
    rows = []
    for path in paths:
        audio, rate = decode_audio(root / path)
        inputs = processor.feature_extractor(audio, sampling_rate=rate, return_tensors="pt")
        rows.append(model.get_audio_features(**inputs).pooler_output[0].numpy())
    return np.stack(rows)


@torch.no_grad()
def text_embedding(model, processor, text) -> np.ndarray:
    inputs = processor.tokenizer([text], return_tensors="pt")
    return model.get_text_features(**inputs).pooler_output[0].numpy()


def count_clips(model):
    """A forward hook counting the clips the audio encoder embeds (real calls, not a stand-in);
    records each pass's total frames. Returns (counts, handle)."""
    counts = {"clips": 0, "passes": []}

    def hook(module, args, kwargs, output):
        lengths = args[1] if len(args) > 1 else kwargs["audio_lengths"]
        counts["clips"] += len(lengths)
        counts["passes"].append(lengths.tolist())

    return counts, model.audio_model.register_forward_hook(hook, with_kwargs=True)


def test_scan_lists_audio_files_only(library):
    root, indexed = library
    assert [f.path for f in scan_library(root)] == sorted([*indexed, *BROKEN])
    with pytest.raises(NotADirectoryError, match="not a folder"):
        scan_library(root / "notes.txt")


def test_results_equal_brute_force_cosine_ranking(library, tmp_path, micro_model, processor):
    root, indexed = library
    counts, handle = count_clips(micro_model)
    try:
        index = SearchIndex.build(root, micro_model, tmp_path / "index", processor=processor,
                                  batch_seconds=BATCH_SECONDS)
    finally:
        handle.remove()

    assert [entry["path"] for entry in index.files] == indexed
    assert sorted(entry["path"] for entry in index.skipped) == sorted(BROKEN)
    assert all(entry["reason"] for entry in index.skipped)
    assert index.stats | {"seconds": 0} == {
        "files": len(indexed), "embedded": len(indexed), "reused": 0, "removed": 0, "skipped": 2,
        "audio_seconds": pytest.approx(sum(entry["duration"] for entry in index.files), abs=1e-3),
        "seconds": 0}
    for entry in index.files:
        if entry["path"] in LIBRARY:
            seconds, rate, channels, *_ = LIBRARY[entry["path"]]
            assert (entry["sampling_rate"], entry["channels"]) == (rate, channels)
            assert entry["duration"] == pytest.approx(seconds, abs=1 / rate)
    # packed: fewer passes than clips; a pass holds at most BATCH_SECONDS unless it is one clip
    assert counts["clips"] == len(indexed) and len(counts["passes"]) < len(indexed)
    hop = processor.feature_extractor.hop_length / processor.feature_extractor.sampling_rate
    patch = processor.feature_extractor.patch_frames * hop
    for lengths in counts["passes"]:
        assert len(lengths) == 1 or sum(lengths) * hop <= BATCH_SECONDS + patch * len(lengths)

    reference = reference_embeddings(micro_model, processor, root, indexed)
    np.testing.assert_allclose(index.embeddings, reference, atol=1e-5)
    for text in QUERIES:
        scores = reference @ text_embedding(micro_model, processor, text)
        order = np.argsort(-scores)
        hits = index.query_text(text, k=len(indexed))
        assert [hit.path for hit in hits] == [str(root.resolve() / indexed[i]) for i in order]
        np.testing.assert_allclose([hit.score for hit in hits], scores[order], atol=1e-5)
        assert [hit.path for hit in index.query_text(text, k=3)] == [hit.path for hit in hits[:3]]

    query_clip = root / "tones/low_hum.flac"
    scores = reference @ reference[indexed.index("tones/low_hum.flac")]
    hits = index.query_audio(query_clip, k=4)
    assert hits[0].path == str(query_clip.resolve()) and hits[0].score == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose([hit.score for hit in hits], np.sort(scores)[::-1][:4], atol=1e-5)
    audio, rate = soundfile.read(query_clip, dtype="float32")
    assert [h.path for h in index.query_audio(audio, k=4, sampling_rate=rate)] == [h.path for h in hits]
    assert hits[0].metadata == {"path": "tones/low_hum.flac", "duration": 7.5, "sampling_rate": 44100,
                                "channels": 2, "size": (root / "tones/low_hum.flac").stat().st_size}
    with pytest.raises(ValueError, match="sampling_rate"):
        index.query_audio(audio, k=4)
    with pytest.raises(ValueError, match="k must be at least 1"):
        index.query_text("a hum", k=0)


def test_faiss_and_numpy_give_the_same_results(library, tmp_path, micro_model, processor):
    pytest.importorskip("faiss")
    root, indexed = library
    SearchIndex.build(root, micro_model, tmp_path / "index", processor=processor)
    with_faiss = SearchIndex.load(tmp_path / "index", micro_model, processor=processor, backend="faiss")
    with_numpy = SearchIndex.load(tmp_path / "index", micro_model, processor=processor, backend="numpy")
    assert (with_faiss.backend, with_numpy.backend) == ("faiss", "numpy")
    for k in (1, 3, len(indexed), len(indexed) + 5):
        for text in QUERIES:
            a, b = with_faiss.query_text(text, k=k), with_numpy.query_text(text, k=k)
            assert len(a) == min(k, len(indexed)) and [h.path for h in a] == [h.path for h in b]
            np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-6)
        a = with_faiss.query_audio(root / "stereo48k.wav", k=k)
        assert [h.path for h in a] == [h.path for h in with_numpy.query_audio(root / "stereo48k.wav", k=k)]


def test_reindex_embeds_only_changed_files_and_equals_a_full_build(library, tmp_path, micro_model, processor):
    root, indexed = library
    out = tmp_path / "index"
    SearchIndex.build(root, micro_model, out, processor=processor, batch_seconds=BATCH_SECONDS)
    first_manifest = (out / "manifest.json").read_text()

    counts, handle = count_clips(micro_model)
    try:
        unchanged = SearchIndex.build(root, micro_model, out, processor=processor)
        assert counts["clips"] == 0 and unchanged.stats["embedded"] == 0
        assert unchanged.stats["reused"] == len(indexed) and unchanged.stats["skipped"] == 2

        # same size, new content and modification time; one file deleted, one added
        changed = root / "tones/a440.wav"
        before = changed.stat()
        write_clip(changed, *LIBRARY["tones/a440.wav"][:3], 880.0, "PCM_16", seed=5)
        os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
        assert changed.stat().st_size == before.st_size
        (root / "short.wav").unlink()
        write_clip(root / "new/bell.wav", 1.0, 24000, 1, 1200.0, "PCM_16")
        updated = SearchIndex.build(root, micro_model, out, processor=processor, batch_seconds=BATCH_SECONDS)
    finally:
        handle.remove()
    assert counts["clips"] == 2
    assert updated.stats | {"seconds": 0, "audio_seconds": 0} == {
        "files": len(indexed), "embedded": 2, "reused": len(indexed) - 2, "removed": 1, "skipped": 2,
        "seconds": 0, "audio_seconds": 0}
    assert (out / "manifest.json").read_text() != first_manifest
    assert len(list(out.glob("embeddings-*.npy"))) == 1  # the previous embeddings are removed

    full = SearchIndex.build(root, micro_model, tmp_path / "full", processor=processor)
    assert full.stats["embedded"] == len(indexed)
    assert updated.files == full.files
    # (the reasons hold decoder messages with memory addresses)
    assert [{**e, "reason": ""} for e in updated.skipped] == [{**e, "reason": ""} for e in full.skipped]
    np.testing.assert_allclose(updated.embeddings, full.embeddings, atol=1e-5)
    reloaded = SearchIndex.load(out, micro_model, processor=processor)
    for text in QUERIES:
        assert [h.path for h in reloaded.query_text(text)] == [h.path for h in full.query_text(text)]


def test_an_interrupted_update_leaves_the_index_whole(library, tmp_path, micro_model, processor, monkeypatch):
    """An update of an unchanged library writes the very embeddings file the manifest names: a
    write cut short (Ctrl-C, a full disk) must leave the index as it was."""
    root, _ = library
    out = tmp_path / "index"
    built = SearchIndex.build(root, micro_model, out, processor=processor)

    def interrupted_save(file, array, *args, **kwargs):
        handle = open(file, "wb") if isinstance(file, (str, os.PathLike)) else file  # noqa: SIM115
        handle.write(b"\x93NUMPY")  # the start of a header, then the interruption
        if handle is not file:
            handle.close()
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(np, "save", interrupted_save)
        with pytest.raises(KeyboardInterrupt):
            SearchIndex.build(root, micro_model, out, processor=processor)
    reloaded = SearchIndex.load(out, micro_model, processor=processor)
    assert reloaded.files == built.files
    np.testing.assert_array_equal(reloaded.embeddings, built.embeddings)
    SearchIndex.build(root, micro_model, out, processor=processor)  # the next update cleans up
    assert sorted(f.name for f in out.iterdir()) == sorted(["manifest.json", built.manifest["embeddings"]])


def test_another_model_is_refused_or_rebuilds(library, tmp_path, micro_model, micro_config, processor):
    root, indexed = library
    out = tmp_path / "index"
    SearchIndex.build(root, micro_model, out, processor=processor)
    torch.manual_seed(1)
    other = SlapModel(micro_config).eval()
    with pytest.raises(ModelMismatch, match="rebuild"):
        SearchIndex.build(root, other, out, processor=processor)
    with pytest.raises(ModelMismatch, match="cannot be compared"):
        SearchIndex.load(out, other, processor=processor)
    rebuilt = SearchIndex.build(root, other, out, processor=processor, rebuild=True)
    assert rebuilt.stats["embedded"] == len(indexed) and rebuilt.stats["reused"] == 0
    np.testing.assert_allclose(rebuilt.embeddings, reference_embeddings(other, processor, root, indexed),
                               atol=1e-5)
    with pytest.raises(ModelMismatch, match="unsaved model"):
        SearchIndex.load(out).query_text("a hum")  # an in-memory model has no name to load


def test_bad_input_gets_clear_errors(library, tmp_path, micro_model, processor):
    root, _ = library
    with pytest.raises(FileNotFoundError, match="not a search index"):
        SearchIndex.load(tmp_path / "nothing")
    with pytest.raises(ValueError, match="processor"):
        SearchIndex.build(root, micro_model, tmp_path / "index")
    SearchIndex.build(root / "tones", micro_model, tmp_path / "index", processor=processor)
    with pytest.raises(ValueError, match="indexes .*tones"):
        SearchIndex.build(root, micro_model, tmp_path / "index", processor=processor)
    with pytest.raises(ValueError, match="backend"):
        SearchIndex.load(tmp_path / "index", backend="annoy")


def test_cli_in_a_fresh_process(library, tmp_path, micro_model, micro_config, processor, capsys):
    script = Path(sys.executable).parent / "slap-search"
    if not script.exists():
        pytest.skip("the slap-search console script is not installed (pip install -e .)")
    root, indexed = library
    micro_model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    environment = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")

    def run(*args):
        return subprocess.run([str(script), *args], cwd=tmp_path, env=environment, capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL)

    built = run("index", str(root), "--model", "model", "--out", "idx", "--no-progress")
    assert built.returncode == 0, built.stderr[-3000:]
    n = len(indexed)
    assert f"idx: {n} files ({n} embedded, 0 unchanged, 0 removed, 2 skipped)" in built.stdout
    assert "skipped broken.wav: " in built.stderr and "skipped empty.wav: no samples" in built.stderr
    queried = run("query", "idx", "a dog barking", "--audio", str(root / "surround.wav"), "-k", "3", "--json")
    assert queried.returncode == 0, queried.stderr[-3000:]
    results = json.loads(queried.stdout)

    index = SearchIndex.load(tmp_path / "idx", micro_model, processor=processor)
    assert index.manifest["model"]["name"] == str((tmp_path / "model").resolve())
    for kind, expected in (("text", index.query_text("a dog barking", k=3)),
                           ("audio", index.query_audio(root / "surround.wav", k=3))):
        assert [r["rank"] for r in results[kind]] == [1, 2, 3]
        assert [r["path"] for r in results[kind]] == [hit.path for hit in expected]
        np.testing.assert_allclose([r["score"] for r in results[kind]], [h.score for h in expected], atol=1e-5)
    assert results["audio"][0]["relative_path"] == "surround.wav" and results["audio"][0]["channels"] == 6

    # the same commands in this process: the text listing, updates and errors
    assert main(["query", str(tmp_path / "idx"), "a low hum", "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = index.query_text("a low hum", k=2)
    assert lines[0] == "text: a low hum" and len(lines) == 3
    for line, hit in zip(lines[1:], expected, strict=True):
        rank, score, path, duration = line.split(maxsplit=3)
        assert (path, float(score)) == (hit.path, pytest.approx(hit.score, abs=1e-4))
    (root / "UPPER.WAV").unlink()
    assert main(["index", str(root), "--model", str(tmp_path / "model"), "--out", str(tmp_path / "idx"),
                 "--no-progress"]) == 0
    assert f"{n - 1} files (0 embedded, {n - 1} unchanged, 1 removed, 2 skipped)" in capsys.readouterr().out
    torch.manual_seed(1)
    SlapModel(micro_config).save_pretrained(tmp_path / "other")
    processor.save_pretrained(tmp_path / "other")
    assert main(["index", str(root), "--model", str(tmp_path / "other"), "--out", str(tmp_path / "idx")]) == 1
    assert "--rebuild" in capsys.readouterr().err
    assert main(["query", str(tmp_path / "idx"), "a hum", "--model", str(tmp_path / "other")]) == 1
    assert "cannot be compared" in capsys.readouterr().err
    assert main(["query", str(tmp_path / "nothing"), "a hum"]) == 1
    assert "is not a search index" in capsys.readouterr().err
    assert main(["query", str(tmp_path / "idx")]) == 2
    assert "give a TEXT, an --audio clip, or both" in capsys.readouterr().err
