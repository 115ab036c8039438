"""The Debian corpus core (`data/debian/`): decoding, packages, captions, splits and the writer.

The writer is tested on tiny synthetic sources written here (no network, no Debian package):
determinism of bytes and hashes, dedup, silence, skips with reasons, licences, splits by group,
resume after an interruption, and the output read back by `load_audio_text_dataset`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from slap_audio.data.debian import audio_io, captions, corpus, packages, splits
from slap_audio.data.debian.records import Clip, Skipped
from slap_audio.data.sources import load_audio_text_dataset

RATE_CASES = ((8_000, 1), (44_100, 2), (96_000, 1), (22_050, 2))


def tone(
    frequency: float, rate: int, seconds: float = 0.2, channels: int = 1, amplitude: float = 0.5
) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    wave = (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    return wave if channels == 1 else np.stack([wave] * channels, axis=1)


class ToySource:
    """A tiny source: tones at odd rates and channel counts in two groups, an 8-bit file read from
    its "package", a silent clip, a duplicate and a file it skips itself; `fail_after` clips it
    raises (a simulated interruption); `delay` seconds it waits before each clip (a slow source)."""

    packages = ("toy-sounds",)
    tools = ()

    def __init__(self, name="toy", base=220.0, fail_after=None, delay=0.0):
        self.name, self.base, self.fail_after, self.delay = name, base, fail_after, delay

    def _clip(self, index: int, audio: np.ndarray, rate: int, group: str, **attributes) -> Clip:
        return Clip(
            key=f"{self.name}/clip-{index:02d}",
            audio=audio,
            sampling_rate=rate,
            label="violin" if index % 2 else "kick drum",
            category="instrument" if index % 2 else "drums",
            source="toy-sounds",
            licence="GPL-2+" if index % 3 else "CC0",  # Debian short names: spelt as SPDX ids
            original_path=f"usr/share/toy/{index}.wav",
            group=group,
            attributes=attributes,
        )

    def clips(self, unpacked, size):
        for index, (rate, channels) in enumerate(RATE_CASES):
            if self.fail_after is not None and index == self.fail_after:
                raise RuntimeError("interrupted")
            time.sleep(self.delay)
            group = "toy-sounds:held-out" if index == 3 else "toy-sounds:main"
            audio = tone(self.base * (index + 1), rate, channels=channels)
            yield self._clip(index, audio, rate, group, texture="single note", pitch_range="middle")
        audio, rate = audio_io.decode_audio(unpacked["toy-sounds"] / "eight-bit.wav")
        yield self._clip(4, audio, rate, "toy-sounds:main", notes=np.array([60, 64]))
        yield self._clip(5, np.full(1600, 1e-4, np.float32), 16_000, "toy-sounds:main")  # -80 dBFS
        yield self._clip(6, tone(self.base, 8_000), 8_000, "toy-sounds:main")  # = clip 0
        yield Skipped("toy-sounds", "usr/share/toy/theme.ogg", "music track")


@pytest.fixture()
def toy_package(tmp_path):
    root = tmp_path / "unpacked" / "toy-sounds"
    root.mkdir(parents=True)
    soundfile.write(
        root / "eight-bit.wav", tone(330, 11_025, seconds=0.3), 11_025, subtype="PCM_U8"
    )
    return {"toy-sounds": root}


def tree(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def build(out: Path, unpacked, sources=None, **options) -> dict:
    sources = sources or (ToySource("toy"), ToySource("echo", base=110.0))
    options.setdefault("test_groups", {"toy-sounds:held-out": "a toy group held out"})
    return corpus.build_corpus(out, sources, unpacked, size="small", progress=False, **options)


# ---------------------------------------------------------------------------------------------
# decoding


@pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (./run installs it)"
)
@pytest.mark.parametrize(
    ("suffix", "codec", "rate"),
    [
        (".wv", "wavpack", 44_100),
        (".opus", "libopus", 48_000),
        (".wav", "pcm_u8", 11_025),
        (".wav", "pcm_s24le", 96_000),
    ],
)
def test_decode_audio_formats_and_rates(tmp_path, suffix, codec, rate):
    source = tmp_path / "source.wav"
    soundfile.write(source, tone(440, rate, seconds=0.5, channels=2), rate, subtype="FLOAT")
    encoded = tmp_path / f"encoded{suffix}"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(source), "-c:a", codec, "-ar", str(rate), str(encoded)],
        check=True,
    )
    for given in (encoded, encoded.read_bytes()):
        audio, decoded_rate = audio_io.decode_audio(given)
        assert decoded_rate == rate and audio.dtype == np.float32 and audio.shape[1] == 2
        assert abs(len(audio) / rate - 0.5) < 0.05  # codec padding at most
        mono = audio_io.to_corpus_audio(audio, decoded_rate)
        assert (
            abs(audio_io.peak_dbfs(mono) - 20 * np.log10(0.5)) < 1.0
        )  # 8-bit and Opus lose a little


def test_undecodable_audio_raises(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(b"not audio at all" * 8)
    with pytest.raises(audio_io.UndecodableAudio):
        audio_io.decode_audio(path)


def test_trailing_silence_is_trimmed():
    audio = np.concatenate(
        [tone(440, 16_000, 0.1), np.zeros(800, np.float32), np.full(10, 1e-4, np.float32)]
    )
    assert len(audio_io.trim_trailing_silence(audio)) <= 1600
    assert len(audio_io.trim_trailing_silence(np.stack([audio, audio], axis=1))) <= 1600


# ---------------------------------------------------------------------------------------------
# captions


@pytest.mark.parametrize(
    ("label", "category", "attributes", "first"),
    [
        (
            "violin",
            "instrument",
            {"family": "strings", "texture": "melody", "tempo_bpm": 70, "pitch_range": "high"},
            "A violin playing a slow melody in a high register.",
        ),
        (
            "English speech",
            "speech",
            {
                "language": "English",
                "gender": "female",
                "transcript": "good morning",
                "synthesized": False,
            },
            "A woman saying 'good morning' in English.",
        ),
        (
            "kick drum",
            "drums",
            {"instrument": "kick drum", "pattern": "single hit"},
            "A kick drum hit.",
        ),
        ("dog barking", "environmental", {"phrase": "a dog barking"}, "A dog barking."),
        ("organ", "instrument", {}, "The sound of an organ."),
        (
            "harp",
            "instrument",
            {"texture": "arpeggio", "chord": "F major", "tempo_bpm": 150},
            "A harp playing a fast F major arpeggio.",
        ),
        (
            "drum kit",
            "drums",
            {
                "instrument": "drum kit",
                "pattern": "groove",
                "style": "rock beat",
                "kit": "room kit",
            },
            "A drum kit playing a rock beat.",
        ),
    ],
)
def test_captions_from_keywords(label, category, attributes, first):
    made = captions.captions_for(label, category, attributes, key="k/1")
    assert made[0] == first
    assert captions.MIN_CAPTIONS <= len(made) <= captions.MAX_CAPTIONS and len(set(made)) == len(
        made
    )
    assert made == captions.captions_for(label, category, dict(attributes), key="k/1")
    assert all(c[0].isupper() and c.endswith(".") for c in made)


def test_captions_only_say_what_is_known():
    bare = captions.captions_for(
        "French speech", "speech", {"language": "French", "synthesized": True}, "k"
    )
    assert not any("woman" in c or "man " in c or "saying" in c for c in bare)
    long = "one two three four five six seven eight nine ten eleven twelve thirteen"
    quoted = captions.captions_for(
        "English speech", "speech", {"language": "English", "transcript": long}, "k"
    )
    assert not any("thirteen" in c for c in quoted)  # a long transcript is not quoted
    assert (
        captions.article("ukulele") == "a ukulele" and captions.article("English") == "an English"
    )
    assert (
        captions.article("F major chord") == "an F major chord" and captions.article("G4") == "a G4"
    )
    kit = captions.captions_for(
        "drum kit", "drums", {"instrument": "drum kit", "pattern": "groove"}, "k"
    )
    assert not any("from a drum kit" in c for c in kit)
    with pytest.raises(ValueError, match="unknown category"):
        captions.captions_for("x", "music", {}, "k")


# ---------------------------------------------------------------------------------------------
# splits and packages


def test_splits_by_group_patterns():
    table = {"kits": "r", "espeak-ng:*+f?": "r"}
    assert (
        splits.split_of("kits", table) == "test" and splits.split_of("kits:tr808", table) == "test"
    )
    assert splits.split_of("kitsch", table) == "train"
    assert splits.split_of("espeak-ng:fr+f3", table) == "test"
    assert splits.split_of("espeak-ng:fr+m3", table) == "train"
    assert (
        splits.split_of("musescore-general-soundfont-small:drums") == "test"
    )  # the reviewed table


def test_the_reviewed_table_names_groups_of_real_sources():
    from slap_audio.data.debian import all_sources

    heads = {name for source in all_sources() for name in (source.name, *source.packages)}
    for pattern in splits.TEST_GROUPS:
        assert pattern.split(":")[0] in heads, pattern
    assert splits.unmatched_patterns(["kits:a", "b"], {"kits": "", "c*": ""}) == ["c*"]


@pytest.mark.skipif(
    shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed (not Debian)"
)
def test_fetch_packages_unpacks_a_cached_deb_once(tmp_path):
    tree_root = tmp_path / "pkg"
    (tree_root / "DEBIAN").mkdir(parents=True)
    (tree_root / "DEBIAN" / "control").write_text(
        "Package: toy-sounds\nVersion: 1:2.0-1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: toy\n"
    )
    (tree_root / "usr" / "share" / "toy").mkdir(parents=True)
    (tree_root / "usr" / "share" / "toy" / "a.txt").write_text("a")
    cache = tmp_path / "cache"
    cache.mkdir()
    subprocess.run(
        ["dpkg-deb", "--build", str(tree_root), str(cache / "toy-sounds_1%3a2.0-1_all.deb")],
        check=True,
        capture_output=True,
    )
    fetched = packages.fetch_packages(["toy-sounds"], cache)["toy-sounds"]
    assert (
        fetched.version == "1:2.0-1" and (fetched.root / "usr/share/toy/a.txt").read_text() == "a"
    )
    stamp = fetched.root.stat().st_mtime_ns
    assert (
        packages.fetch_packages(["toy-sounds"], cache)["toy-sounds"].root.stat().st_mtime_ns
        == stamp
    )
    assert not list((cache / "unpacked").glob(".unpack-*"))


def test_fetch_packages_without_apt_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(packages.AptUnavailable, match="apt-get"):
        packages.fetch_packages(["fluid-soundfont-gm"], tmp_path / "cache")


# ---------------------------------------------------------------------------------------------
# the writer


def test_build_counts_skips_licences_and_splits(tmp_path, toy_package):
    summary = build(tmp_path / "out", toy_package)
    # per source: 5 kept (4 tones + the 8-bit file); clip 6 duplicates clip 0 within "toy"; the
    # echo source's 8-bit file duplicates toy's (the same file) across sources
    assert summary["clips"] == 9 and summary["splits"]["test"]["clips"] == 2
    assert summary["splits"]["test"]["groups"] == ["toy-sounds:held-out"]
    assert summary["unmatched_test_groups"] == []
    assert summary["skipped"]["reasons"] == {"duplicate": 3, "music track": 2, "silent": 2}
    duplicates = [item for item in summary["skipped"]["items"] if item["reason"] == "duplicate"]
    assert [item["duplicate_of"] for item in duplicates] == [
        "toy/clip-00",
        "echo/clip-00",
        "toy/clip-04",
    ]
    assert summary["licences"] == {
        "CC0-1.0": {"clips": 4, "sources": ["toy-sounds"]},
        "GPL-2.0+": {"clips": 5, "sources": ["toy-sounds"]},
    }
    assert summary["counts"]["category"] == {"drums": 5, "instrument": 4}
    out = tmp_path / "out"
    assert json.loads((out / "corpus.json").read_text()) == summary
    assert "| drums |" in (out / "README.md").read_text()
    rows = [
        json.loads(line) for line in (out / "train" / "metadata.jsonl").read_text().splitlines()
    ]
    assert {row["group"] for row in rows} == {"toy-sounds:main"}
    on_disk = sorted(
        str(p.relative_to(out / "train")) for p in (out / "train" / "audio").rglob("*.flac")
    )
    assert on_disk == sorted(
        row["file_name"] for row in rows
    )  # the cross-source duplicate's file is gone
    for row in rows:
        pcm, rate = soundfile.read(out / "train" / row["file_name"], dtype="int16")
        assert rate == 16_000 and pcm.ndim == 1
        assert hashlib.sha256(pcm.tobytes()).hexdigest() == row["audio_sha256"]
        assert abs(row["duration"] - len(pcm) / 16_000) < 1e-3
    assert rows[0]["attributes"] == {"texture": "single note", "pitch_range": "middle"}
    eight_bit = next(row for row in rows if row["key"] == "toy/clip-04")
    assert (
        eight_bit["attributes"] == {"notes": [60, 64]} and abs(eight_bit["duration"] - 0.3) < 0.01
    )


def test_build_is_deterministic(tmp_path, toy_package):
    first = build(tmp_path / "a", toy_package)
    second = build(tmp_path / "b", toy_package, jobs=2)  # worker processes give the same bytes
    assert first["fingerprint"] == second["fingerprint"]
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_resume_after_an_interruption_equals_an_uninterrupted_build(tmp_path, toy_package):
    build(tmp_path / "whole", toy_package)
    out = tmp_path / "resumed"
    with pytest.raises(RuntimeError, match="interrupted"):
        build(
            out,
            toy_package,
            sources=(ToySource("toy"), ToySource("echo", base=110.0, fail_after=2)),
        )
    assert (out / ".build" / "toy.json").is_file() and not (out / ".build" / "echo.json").exists()
    assert (out / "train" / "audio" / "echo").is_dir()  # the interrupted source left files behind
    (out / "train" / "audio" / "echo" / "stale.flac.partial").write_bytes(b"half a file")
    build(out, toy_package)
    assert tree(out) == tree(tmp_path / "whole")


KILLED_BUILD = """
import sys
from pathlib import Path

sys.path.insert(0, {tests!r})
from test_debian_corpus import ToySource, build

slow = ToySource("echo", base=110.0, delay=float(sys.argv[1]))
build(Path({out!r}), {{"toy-sounds": Path({root!r})}}, sources=(ToySource("toy"), slow))
"""


def test_a_killed_build_continues_to_the_same_bytes(tmp_path, toy_package):
    build(tmp_path / "whole", toy_package)
    out = tmp_path / "killed"
    script = tmp_path / "build.py"
    script.write_text(
        KILLED_BUILD.format(
            tests=str(Path(__file__).parent), out=str(out), root=str(toy_package["toy-sounds"])
        )
    )
    process = subprocess.Popen([sys.executable, str(script), "5"])  # 5 s before each clip of "echo"
    deadline = time.monotonic() + 120
    while not list((out / "train" / "audio" / "echo").glob("*.flac")):
        assert process.poll() is None and time.monotonic() < deadline, (
            "the build ended before the kill"
        )
        time.sleep(0.05)
    process.kill()
    process.wait()
    assert (out / ".build" / "toy.json").is_file() and not (out / ".build" / "echo.json").exists()
    subprocess.run([sys.executable, str(script), "0"], check=True, timeout=120)
    assert tree(out) == tree(tmp_path / "whole")


def test_resume_refuses_other_settings(tmp_path, toy_package):
    build(tmp_path / "out", toy_package)
    with pytest.raises(corpus.CorpusMismatch, match="size"):
        corpus.build_corpus(
            tmp_path / "out", (ToySource(),), toy_package, size="full", progress=False
        )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(corpus.CorpusMismatch, match="not empty"):
        build(tmp_path / "other", toy_package)


def test_a_bad_clip_is_a_bug_of_its_source(tmp_path, toy_package):
    class Wrong(ToySource):
        def clips(self, unpacked, size):
            yield Clip("wrong/1", tone(440, 8000), 8000, "violin", "music", "p", "MIT", "x", "p")

    with pytest.raises(ValueError, match="category 'music'"):
        build(tmp_path / "out", toy_package, sources=(Wrong("wrong"),))


def test_output_loads_as_an_audio_folder(tmp_path, toy_package):
    out = tmp_path / "out"
    build(out, toy_package)
    for split, count in (("train", 7), ("test", 2)):
        dataset = load_audio_text_dataset(str(out), split=split)
        assert len(dataset) == count and dataset.skip_stats.total == 0
        example = dataset[0]
        assert example["audio"]["sampling_rate"] == 16_000 and len(example["audio"]["array"]) > 1000
        assert 4 <= len(example["captions"]) <= 6 and example["label"] in ("violin", "kick drum")


def test_slap_data_cli_in_a_fresh_process(tmp_path):
    script = Path(sys.executable).parent / "slap-data"
    if not script.exists():
        pytest.skip("the slap-data console script is not installed (pip install -e .)")
    shown = subprocess.run(
        [str(script), "debian", "--help"], capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0 and "--size" in shown.stdout and "--cache" in shown.stdout
    missing = subprocess.run([str(script), "debian"], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "OUT is required" in missing.stderr
    listed = subprocess.run(
        [str(script), "debian", "--list"], capture_output=True, text=True, timeout=120
    )
    assert (
        listed.returncode == 0 and "musescore-general-soundfont-small: musescore" in listed.stdout
    )
    no_tools = subprocess.run(
        [str(script), "debian", str(tmp_path / "out"), "--sources", "flite"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PATH": str(tmp_path)},
    )  # fmt: skip
    assert (
        no_tools.returncode == 1
        and "apt-get install --no-install-recommends ffmpeg flite" in no_tools.stderr
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="dpkg is not installed (not Debian)")
def test_tool_versions_come_from_dpkg():
    found = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "dpkg"], capture_output=True, text=True
    )
    versions = packages.tool_versions(["dpkg-deb", "no-such-tool-here"])
    assert versions == {"dpkg-deb": found.stdout.strip(), "no-such-tool-here": None}
