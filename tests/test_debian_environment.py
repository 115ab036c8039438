"""The environmental sources of the Debian corpus: container readers, reviewed phrases, licences.

Every input is built here (a Qt resource file, an OpenTTD sample catalogue, a DEP-5 copyright
file, tiny packages of WAV / Ogg files): no network, no real Debian package needed.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile

from slap_audio.data.debian import phrases
from slap_audio.data.debian.containers import ContainerError, read_openttd_cat, read_rcc
from slap_audio.data.debian.copyright import file_licence, spdx
from slap_audio.data.debian.environment import SOURCES, opensfx_title
from slap_audio.data.debian.records import CATEGORIES, Clip, Skipped

RATE = 16_000


def _tone(seconds: float, frequency: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _encoded(audio: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, RATE, format=fmt)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# A Qt resource writer, written from the format description (independently of the reader).


def write_rcc(files: dict[str, tuple[bytes, str]], version: int = 3) -> bytes:
    """A binary Qt resource holding `files` = {path: (content, "none" | "zlib" | "zstd")}."""
    tree: dict = {}
    for path, entry in files.items():
        *folders, leaf = path.split("/")
        node = tree
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = entry
    names, data, nodes = bytearray(), bytearray(), []

    def name_offset(name: str) -> int:
        offset = len(names)
        names.extend(struct.pack(">HI", len(name), 0) + name.encode("utf-16-be"))
        return offset

    def payload(content: bytes, compression: str) -> tuple[int, bytes]:
        if compression == "zlib":  # qCompress: big-endian length, then a zlib stream
            return 0x1, struct.pack(">I", len(content)) + zlib.compress(content)
        if compression == "zstd":
            zstd = subprocess.run(["zstd", "-c", "-q"], input=content, capture_output=True)
            return 0x4, zstd.stdout
        return 0x0, content

    # breadth first, so that the children of each folder are consecutive nodes
    nodes.append(None)
    queue = [(0, "", tree)]
    while queue:
        index, name, children = queue.pop(0)
        first = len(nodes)
        nodes.extend([None] * len(children))
        noff = name_offset(name) if index else 0
        nodes[index] = struct.pack(">IHII", noff, 0x2, len(children), first)
        for offset, (child, entry) in enumerate(sorted(children.items())):
            if isinstance(entry, dict):
                queue.append((first + offset, child, entry))
            else:
                flags, body = payload(*entry)
                nodes[first + offset] = struct.pack(
                    ">IHHHI", name_offset(child), flags, 0, 0, len(data)
                )
                data.extend(struct.pack(">I", len(body)) + body)
    if version >= 2:
        nodes = [node + struct.pack(">Q", 0) for node in nodes]
    header_size = 24 if version >= 3 else 20
    tree_bytes = b"".join(nodes)
    tree_at = header_size
    data_at = tree_at + len(tree_bytes)
    names_at = data_at + len(data)
    header = b"qres" + struct.pack(">IIII", version, tree_at, data_at, names_at)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + tree_bytes + bytes(data) + bytes(names)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_reader_reads_nested_plain_and_zlib_entries(version):
    wav = _encoded(_tone(0.1, 440.0), "WAV")
    files = {
        "gcompris/src/core/sounds/a.wav": (wav, "none"),
        "gcompris/src/core/sounds/b.txt": (b"hello " * 50, "zlib"),
        "gcompris/src/activities/x/deep/er/c.wav": (wav[::-1], "zlib"),
        "top.bin": (b"\x00\x01\x02", "none"),
    }
    read = dict(read_rcc(write_rcc(files, version)))
    assert read == {path: content for path, (content, _) in files.items()}


@pytest.mark.skipif(shutil.which("zstd") is None, reason="the zstd tool is not installed")
def test_rcc_reader_reads_zstd_entries():
    content = b"zstandard payload " * 40
    read = dict(read_rcc(write_rcc({"a/z.bin": (content, "zstd"), "a/p.bin": (b"p", "none")})))
    assert read == {"a/z.bin": content, "a/p.bin": b"p"}


def test_rcc_reader_rejects_bad_input():
    with pytest.raises(ContainerError, match="qres"):
        list(read_rcc(b"RIFF" + bytes(40)))
    good = write_rcc({"a.bin": (b"x" * 100, "zlib")})
    size_at = good.index(struct.pack(">I", 100))  # qCompress's announced length
    with pytest.raises(ContainerError, match="announced"):
        list(read_rcc(good[:size_at] + struct.pack(">I", 99) + good[size_at + 4 :]))


# ---------------------------------------------------------------------------------------------
# OpenTTD sample catalogue.


def write_openttd_cat(samples: list[tuple[str, bytes]]) -> bytes:
    header, body = bytearray(), bytearray()
    start = 8 * len(samples)
    for name, wav in samples:
        raw = name.encode() + b"\0"
        header += struct.pack("<II", (start + len(body)) | 0x8000_0000, len(wav))
        body += bytes([len(raw)]) + raw + wav
    return bytes(header + body)


def test_openttd_cat_reader_round_trip():
    tones = [_tone(0.2, 300.0), _tone(0.1, 600.0), _tone(0.3, 900.0)]
    samples = [
        (f'"Sample {i}". By someone. License: CC0.', _encoded(t, "WAV"))
        for i, t in enumerate(tones)
    ]
    read = list(read_openttd_cat(write_openttd_cat(samples)))
    assert read == samples
    for (_, wav), tone in zip(read, tones, strict=True):
        np.testing.assert_allclose(soundfile.read(io.BytesIO(wav))[0], tone, atol=1e-4)
    assert [opensfx_title(name) for name, _ in read] == ["Sample 0", "Sample 1", "Sample 2"]


def test_openttd_cat_reader_rejects_a_sample_that_is_not_wav():
    with pytest.raises(ContainerError, match="RIFF"):
        list(read_openttd_cat(write_openttd_cat([("x", b"OggS" + bytes(40))])))


# ---------------------------------------------------------------------------------------------
# The reviewed phrase table.


@pytest.mark.parametrize(
    "table, name, phrase, label",
    [
        (phrases.LUGARU, "Bark2.ogg", "a dog barking", "dog barking"),
        (phrases.GCOMPRIS, "activities/memory-sound/resource/LRBark_1_LA_cut.ogg",
         "a dog barking", "dog barking"),
        (phrases.CSOUND, "1:123", "a dog barking", "dog barking"),
        (phrases.UFOAI, "footsteps/gravel3.ogg", "footsteps on gravel", "footsteps"),
        (phrases.MINETEST, "minetest_game/mods/default/sounds/default_snow_footstep.4.ogg",
         "footsteps on snow", "footsteps"),
        (phrases.OPENTTD, "Tropical: Bird (2)", "a tropical bird calling", "birds chirping"),
        (phrases.LINCITY, "sounds/Fire2.wav", "a fire crackling", "fire crackling"),
        (phrases.GCOMPRIS, "activities/instruments/resource/violin.ogg", "a violin", "violin"),
    ],
)  # fmt: skip
def test_names_map_to_phrases_and_shared_labels(table, name, phrase, label):
    verdict = phrases.review(table, name)
    assert isinstance(verdict, phrases.Phrase)
    assert (verdict.phrase, verdict.label) == (phrase, label)


@pytest.mark.parametrize(
    "table, name, reason",
    [
        (phrases.LUGARU, "Music1Grass.ogg", phrases.MUSIC),
        (phrases.LINCITY, "sounds/FireStation2.wav", phrases.AMBIGUOUS),  # not "Fire[0-9]"
        (phrases.UFOAI, "weapons/plasma-large.ogg", phrases.FICTIONAL),
        (phrases.UFOAI, "sfx_032.wav", phrases.CRYPTIC),
        (phrases.OPENTTD, "Toyland: Bubble plop", phrases.CARTOON),
        (phrases.OPENTTD, "Unused/Nothing | OpenSFX 1.0.3", phrases.EMPTY),
        (phrases.GCOMPRIS, "activities/chronos/resource/sound/1.ogg", phrases.CRYPTIC),
        (phrases.CSOUND, "4:124", phrases.AMBIGUOUS),
    ],
)
def test_skipped_names_carry_their_reason(table, name, reason):
    assert phrases.review(table, name) == reason


def test_every_table_is_complete_and_labels_are_canonical():
    tables = [phrases.UFOAI, phrases.OPENTTD, phrases.LINCITY, phrases.LUGARU,
              phrases.MINETEST, phrases.GCOMPRIS, phrases.CSOUND]  # fmt: skip
    used = set()
    for table in tables:
        assert table[-1][0] == "*" and isinstance(table[-1][1], str)  # a catch-all skip
        used |= {v.label for _, v in table if isinstance(v, phrases.Phrase)}
    assert used <= set(phrases.LABELS)
    assert {category for category, _ in phrases.LABELS.values()} <= set(CATEGORIES)
    for label in ("dog barking", "footsteps", "door", "explosion", "train", "fire crackling"):
        packages = sum(any(isinstance(v, phrases.Phrase) and v.label == label for _, v in t)
                       for t in tables)  # fmt: skip
        assert packages >= 3, f"{label!r} should be shared across packages"
    with pytest.raises(ValueError, match="canonical"):
        phrases.Phrase("a dog", "doggo")


def test_recorded_instruments_share_the_soundfont_labels():
    """gcompris' real recordings are held out against rendered GM programs: same labels."""
    from slap_audio.data.debian import soundfonts

    for label, program in phrases.GM_PROGRAMS.items():
        assert soundfonts.GM_PROGRAMS[program] == label
        assert soundfonts.gm_family(program) == phrases.LABELS[label][1][0]
    families = {tags[0] for category, tags in phrases.LABELS.values() if category == "instrument"}
    assert families <= set(soundfonts.GM_FAMILIES)
    drum_labels = {label for _, label in soundfonts.GM_DRUMS.values()} | {soundfonts.GROOVE_LABEL}
    drums = {label for label, (category, _) in phrases.LABELS.items() if category == "drums"}
    assert drums - drum_labels == {"castanets", "cymbal"}  # not in the GM key map, or unknown


# ---------------------------------------------------------------------------------------------
# Licences from DEP-5 copyright files.

COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: someone
License: GPL-2+

Files: Data/*
Copyright: someone else
License: CC-BY-SA-3.0

Files: Data/Sounds/Bark.ogg
       Data/Sounds/Quiet*.ogg
Copyright: a third person
License: CC0-1.0 and CC-BY-3.0
Comment: the last matching paragraph decides

License: GPL-2+
 The full text of the licence, which is not a Files paragraph.
"""


def test_licence_is_the_last_matching_files_paragraph(tmp_path):
    path = tmp_path / "copyright"
    path.write_text(COPYRIGHT)
    assert file_licence(path, "Source/main.cpp") == "GPL-2.0+"
    assert file_licence(path, "Data/Sounds/Wind.ogg") == "CC-BY-SA-3.0"
    assert file_licence(path, "Data/Sounds/Bark.ogg") == "CC0-1.0 AND CC-BY-3.0"
    assert file_licence(path, "Data/Sounds/Quiet2.ogg") == "CC0-1.0 AND CC-BY-3.0"
    assert spdx("GPL-2+ or CDDL") == "GPL-2.0+ OR CDDL-1.1"


# ---------------------------------------------------------------------------------------------
# Sources end to end on tiny packages.


def _source(name: str):
    return next(source for source in SOURCES if source.name == name)


def _lugaru_package(root: Path) -> Path:
    sounds = root / "usr/share/games/lugaru/Sounds"
    sounds.mkdir(parents=True)
    for index, name in enumerate(["Bark.ogg", "Wind.ogg", "Music2.ogg", "Jump.ogg", "Fire.ogg"]):
        soundfile.write(sounds / name, _tone(0.3, 200.0 + 50 * index), RATE, format="OGG")
    (sounds / "Thud.ogg").write_bytes(b"not audio at all")
    doc = root / "usr/share/doc/lugaru-data"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    return root


def _fingerprint(items) -> list:
    return [
        (i.key, i.label, i.group, i.licence, hashlib.sha256(i.audio.tobytes()).hexdigest())
        if isinstance(i, Clip)
        else (i.original_path, i.reason)
        for i in items
    ]


def test_file_source_keeps_reviewed_sounds_and_skips_the_rest(tmp_path):
    root = _lugaru_package(tmp_path / "lugaru-data")
    items = list(_source("lugaru-data").clips({"lugaru-data": root}, "default"))
    clips = {i.key: i for i in items if isinstance(i, Clip)}
    skipped = {i.original_path.rsplit("/", 1)[1]: i.reason for i in items if isinstance(i, Skipped)}
    assert sorted(clips) == ["lugaru-data/Bark.ogg", "lugaru-data/Fire.ogg", "lugaru-data/Wind.ogg"]
    assert skipped == {"Music2.ogg": phrases.MUSIC, "Jump.ogg": phrases.AMBIGUOUS,
                       "Thud.ogg": "undecodable"}  # fmt: skip
    bark = clips["lugaru-data/Bark.ogg"]
    assert (bark.label, bark.category, bark.group) == (
        "dog barking",
        "environmental",
        "lugaru-data",
    )
    assert bark.licence == "CC0-1.0 AND CC-BY-3.0"  # Data/Sounds/Bark.ogg in the copyright file
    assert clips["lugaru-data/Wind.ogg"].licence == "CC-BY-SA-3.0"
    assert bark.attributes["phrase"] == "a dog barking" and "dog" in bark.attributes["tags"]
    assert bark.sampling_rate == RATE and abs(len(bark.audio) - 0.3 * RATE) < 0.01 * RATE
    # deterministic: a second run yields the same clips, audio and skips in the same order
    again = list(_source("lugaru-data").clips({"lugaru-data": root}, "default"))
    assert _fingerprint(again) == _fingerprint(items)


def test_gcompris_source_reads_sounds_inside_rcc_files(tmp_path):
    root = tmp_path / "gcompris-qt-data"
    (root / "usr/share/gcompris-qt/rcc").mkdir(parents=True)
    ogg = {freq: _encoded(_tone(0.2, freq), "OGG") for freq in (300.0, 500.0, 660.0)}
    farm = "gcompris/src/activities/explore_farm_animals/resource/animals"
    farm_rcc = {f"{farm}/dog.ogg": (ogg[300.0], "none"), f"{farm}/dog.svg": (b"<svg/>", "zlib")}
    activities = "gcompris/src/activities"
    music_rcc = {
        f"{activities}/instruments/resource/violin.ogg": (ogg[660.0], "none"),
        f"{activities}/chronos/resource/sound/1.ogg": (ogg[500.0], "none"),
        f"{activities}/ballcatch/resource/tuxok.wav": (_encoded(_tone(0.1, 800.0), "WAV"), "zlib"),
    }
    rcc = root / "usr/share/gcompris-qt/rcc"
    (rcc / "explore_farm_animals.rcc").write_bytes(write_rcc(farm_rcc))
    (rcc / "instruments.rcc").write_bytes(write_rcc(music_rcc))
    doc = root / "usr/share/doc/gcompris-qt-data"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Files: *\nCopyright: x\nLicense: GPL-3+\n")
    items = list(_source("gcompris-qt-data").clips({"gcompris-qt-data": root}, "default"))
    clips = {i.key.rsplit("/", 1)[1]: i for i in items if isinstance(i, Clip)}
    reasons = sorted(i.reason for i in items if isinstance(i, Skipped))
    assert sorted(clips) == ["dog.ogg", "violin.ogg"]
    assert reasons == sorted([phrases.CRYPTIC, phrases.AMBIGUOUS])  # chronos/1.ogg, tuxok.wav
    dog, violin = clips["dog.ogg"], clips["violin.ogg"]
    assert (dog.label, dog.category, dog.group) == (
        "dog barking", "environmental", "gcompris-qt-data:animals")  # fmt: skip
    assert (violin.category, violin.group) == ("instrument", "gcompris-qt-data:instruments")
    assert violin.attributes["family"] == "strings" and violin.attributes["program"] == 40
    assert dog.licence == "GPL-3.0+"
    assert dog.original_path.endswith(f"explore_farm_animals.rcc#{farm}/dog.ogg")
