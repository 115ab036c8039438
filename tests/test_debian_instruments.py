"""The instrument and drum sources of `slap-data debian` on tiny inputs the tests write themselves.

The MIDI writer (parsed back), the General MIDI tables and performance plans, a tiny SoundFont
rendered with fluidsynth (skipped where the tool is absent; `./run` installs it), a tiny Hydrogen
drum kit, LMMS's name table, and determinism. No network, no Debian package needed.
"""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest
import soundfile

from slap_audio.data.debian import samples, soundfonts
from slap_audio.data.debian.records import CATEGORIES, Clip, Skipped

# ---------------------------------------------------------------------------------------------
# MIDI


def _parse_midi(data: bytes) -> tuple[int, list[tuple[int, bytes]]]:
    """(ticks per quarter, [(absolute tick, message)]) of a format-0 file without running status."""
    kind, length, fmt, tracks, division = struct.unpack(">4sIHHH", data[:14])
    assert (kind, length, fmt, tracks) == (b"MThd", 6, 0, 1)
    kind, size = struct.unpack(">4sI", data[14:22])
    assert kind == b"MTrk" and len(data) == 22 + size
    events, position, tick = [], 22, 0
    while position < len(data):
        delta = 0
        while True:
            byte = data[position]
            position += 1
            delta = (delta << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        tick += delta
        status = data[position]
        if status == 0xFF:
            length = data[position + 2]
            message = data[position : position + 3 + length]
        else:
            message = data[position : position + (2 if status >> 4 in (0xC, 0xD) else 3)]
        events.append((tick, bytes(message)))
        position += len(message)
    return division, events


@pytest.mark.parametrize(
    "value, encoded",
    [(0, b"\x00"), (0x7F, b"\x7f"), (0x80, b"\x81\x00"), (0x3FFF, b"\xff\x7f"),
     (0x200000, b"\x81\x80\x80\x00")],
)  # fmt: skip
def test_variable_length_quantities_follow_the_smf_spec(value, encoded):
    assert soundfonts._variable_length(value) == encoded


def test_midi_file_parses_back_to_the_events_written():
    events = [
        (1500, bytes([0x80, 64, 0])),
        (0, bytes([0xC0, 40])),
        (20, bytes([0x90, 60, 100])),
        (20, bytes([0x90, 64, 90])),
        (520, bytes([0x80, 60, 0])),
        (200_000, bytes([0xB9, 120, 0])),
    ]
    division, parsed = _parse_midi(soundfonts.encode_midi(events))
    assert division == 500  # 1 ms per tick at the file's 120 bpm
    assert parsed[0] == (0, b"\xff\x51\x03" + (500_000).to_bytes(3, "big"))
    assert parsed[-1] == (200_000, b"\xff\x2f\x00")
    assert parsed[1:-1] == sorted(events, key=lambda e: e[0])  # stable: 20, 20 keep their order


def test_performance_events_cut_at_known_windows_and_silence_each_one():
    plans = soundfonts.plan_programs("small")[:3] + soundfonts.plan_drums("small", [0])[:2]
    events, starts = soundfonts._events(plans)
    assert len(starts) == len(plans) + 1 and starts == sorted(starts)
    for plan, start, end in zip(plans, starts, starts[1:], strict=False):
        inside = [m for t, m in events if start <= t < end]
        channel = 9 if plan.bank == 128 else 0
        assert bytes([0xC0 | channel, plan.program]) in inside
        assert inside[-1] == bytes([0xB0 | channel, 120, 0])  # all sound off closes the window
        notes = [m for m in inside if m[0] >> 4 == 0x9]
        assert sorted(m[1] for m in notes) == sorted(n.pitch for n in plan.notes)


# ---------------------------------------------------------------------------------------------
# General MIDI tables and plans


def test_gm_tables_have_128_programs_in_16_families():
    assert len(soundfonts.GM_PROGRAMS) == 128 and len(set(soundfonts.GM_PROGRAMS)) == 128
    assert len(soundfonts.GM_FAMILIES) == 16
    assert [soundfonts.gm_family(p) for p in (0, 40, 56, 73, 127)] == [
        "piano",
        "strings",
        "brass",
        "pipe",
        "sound effects",
    ]
    assert soundfonts.GM_PROGRAMS[40] == "violin" and soundfonts.GM_PROGRAMS[19] == "church organ"
    for program in range(128):
        low, high = soundfonts.program_range(program)
        assert 0 <= low < high <= 127
    assert sorted(soundfonts.GM_DRUMS) == list(range(35, 82))
    assert soundfonts.GM_DRUMS[38] == ("Acoustic Snare", "snare drum")
    assert soundfonts.pitch_name(60) == "C4" and soundfonts.pitch_name(61) == "C#4"
    assert soundfonts.pitch_name(21) == "A0"


def test_program_plans_cover_every_program_within_its_range_deterministically():
    plans = soundfonts.plan_programs("default")
    assert plans == soundfonts.plan_programs("default")
    assert len({p.key for p in plans}) == len(plans)
    assert {p.program for p in plans} == set(range(128))
    for p in plans:
        assert p.category in CATEGORIES and p.label == soundfonts.GM_PROGRAMS[p.program]
        low, high = soundfonts.program_range(p.program)
        assert all(low <= n.pitch <= high for n in p.notes), p.key
        assert p.attributes["pitch_names"] == [
            soundfonts.pitch_name(n) for n in p.attributes["notes"]
        ]
    textures = {p.attributes["texture"] for p in plans if p.program == 40}
    assert textures == {"single note", "melody", "chord", "arpeggio"}
    singles = [p.notes[0].pitch for p in plans if p.program == 0 and len(p.notes) == 1]
    assert singles == sorted(singles) and singles[-1] - singles[0] > 36  # across the range
    assert {p.category for p in plans if p.program in soundfonts.GM_ENVIRONMENTAL} == {
        "environmental"
    }
    small = soundfonts.plan_programs("small")
    assert len(small) == 128 < len(plans) < len(soundfonts.plan_programs("full"))


def test_drum_plans_play_each_gm_drum_rolls_and_grooves():
    plans = soundfonts.plan_drums("default", [0, 25])
    hits = {p.notes[0].pitch for p in plans if p.attributes["pattern"] == "single hit"}
    assert hits == set(soundfonts.GM_DRUMS)
    patterns = {p.attributes["pattern"] for p in plans}
    assert patterns == {"single hit", "roll", "groove"}
    assert {p.attributes["kit"] for p in plans} == {"standard kit", "TR-808 kit"}
    assert all(p.bank == 128 and p.category == "drums" for p in plans)
    grooves = [p for p in plans if p.attributes["pattern"] == "groove"]
    assert all(p.label == soundfonts.GROOVE_LABEL and p.attributes["tempo_bpm"] for p in grooves)


# ---------------------------------------------------------------------------------------------
# A tiny SoundFont: one looped sine sample as preset 0 of bank 0


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack("<4sI", kind, len(data)) + data + b"\0" * (len(data) & 1)


def _write_sine_soundfont(path, rate: int = 22_050) -> None:
    period = 50  # 441 Hz at 22.05 kHz: a whole number of samples per period loops cleanly
    pcm = np.round(np.sin(2 * np.pi * np.arange(period * 200) / period) * 12_000).astype("<i2")
    smpl = pcm.tobytes() + b"\0" * 92  # 46 zero samples after the sample, as SF2 requires

    def name(text: str) -> bytes:
        return text.encode().ljust(20, b"\0")

    info = b"INFO" + _chunk(b"ifil", struct.pack("<HH", 2, 1)) + _chunk(b"isng", b"EMU8000\0")
    info += _chunk(b"INAM", b"tiny\0\0")
    pdta = b"pdta" + b"".join(
        [
            _chunk(b"phdr", struct.pack("<20sHHHIII", name("Sine"), 0, 0, 0, 0, 0, 0)
                   + struct.pack("<20sHHHIII", name("EOP"), 0, 0, 1, 0, 0, 0)),
            _chunk(b"pbag", struct.pack("<HHHH", 0, 0, 1, 0)),
            _chunk(b"pmod", b"\0" * 10),
            _chunk(b"pgen", struct.pack("<HHHH", 41, 0, 0, 0)),  # instrument 0
            _chunk(b"inst", struct.pack("<20sH", name("Sine"), 0) + struct.pack("<20sH", name("EOI"), 1)),
            _chunk(b"ibag", struct.pack("<HHHH", 0, 0, 2, 0)),
            _chunk(b"imod", b"\0" * 10),
            _chunk(b"igen", struct.pack("<HHHHHH", 54, 1, 53, 0, 0, 0)),  # looped, sample 0
            _chunk(b"shdr", struct.pack("<20sIIIIIBbHH", name("sine"), 0, len(pcm), 0, len(pcm),
                                        rate, 69, 0, 0, 1) + b"\0" * 46),
        ]
    )  # fmt: skip
    body = b"sfbk" + _chunk(b"LIST", info) + _chunk(b"LIST", b"sdta" + _chunk(b"smpl", smpl))
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body + _chunk(b"LIST", pdta))) + body
                     + _chunk(b"LIST", pdta))  # fmt: skip


def test_soundfont_presets_are_read_from_the_phdr_chunk(tmp_path):
    _write_sine_soundfont(tmp_path / "tiny.sf2")
    assert soundfonts.soundfont_presets(tmp_path / "tiny.sf2") == {(0, 0): "Sine"}
    (tmp_path / "not.sf2").write_bytes(b"RIFF\0\0\0\0WAVE")
    with pytest.raises(ValueError, match="not a SoundFont"):
        soundfonts.soundfont_presets(tmp_path / "not.sf2")


needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None,
    reason="fluidsynth is not installed (./run installs it: apt-get install fluidsynth)",
)


def _dominant_hz(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / rate)[np.argmax(spectrum)])


@needs_fluidsynth
def test_two_note_midi_renders_both_pitches_and_trims_the_tail(tmp_path):
    _write_sine_soundfont(tmp_path / "tiny.sf2")
    notes = (soundfonts.Note(0.0, 0.5, 69, 110), soundfonts.Note(0.5, 0.5, 76, 110))
    melody = soundfonts.Performance("test/two-notes", 0, 0, notes, "sine", "instrument")
    single = soundfonts.Performance("test/one", 0, 0, notes[:1], "sine", "instrument")
    first, second = soundfonts.render_performances([melody, single], tmp_path / "tiny.sf2")
    rate = soundfonts.RENDER_RATE
    assert 0.95 < len(first) / rate < 1.2  # 1 s of notes, the 2.5 s release room trimmed away
    assert 0.45 < len(second) / rate < 0.7
    onset = int(0.05 * rate)  # past the 20 ms lead
    assert abs(_dominant_hz(first[onset : rate // 2], rate) - 441) < 10  # A4 on a 441 Hz sample
    assert abs(_dominant_hz(first[rate // 2 + onset : rate], rate) - 441 * 2 ** (7 / 12)) < 12
    again = soundfonts.render_performances([melody, single], tmp_path / "tiny.sf2")
    assert np.array_equal(first, again[0]) and np.array_equal(second, again[1])


@needs_fluidsynth
def test_soundfont_source_yields_clips_of_the_presets_it_has(tmp_path):
    package = tmp_path / "fluid-soundfont-gm"
    sf2 = package / "usr/share/sounds/sf2/FluidR3_GM.sf2"
    sf2.parent.mkdir(parents=True)
    _write_sine_soundfont(sf2)
    source = soundfonts.SOURCES[0]
    items = list(source.clips({source.package: package}, "small"))
    clips = [i for i in items if isinstance(i, Clip)]
    assert [c.key for c in clips] == [
        "fluid-soundfont-gm/program-000-acoustic-grand-piano/single-note-0"
    ]
    (clip,) = clips
    assert (clip.label, clip.category, clip.group, clip.licence) == (
        "acoustic grand piano",
        "instrument",
        "fluid-soundfont-gm",
        "MIT",
    )
    assert clip.attributes["family"] == "piano" and clip.attributes["preset"] == "Sine"
    assert clip.attributes["soundfont"] == "FluidR3 GM" and clip.sampling_rate == 22_050
    reasons = {i.reason for i in items if isinstance(i, Skipped)}
    assert reasons == {"preset not in soundfont", "drum kit not in soundfont"}


# ---------------------------------------------------------------------------------------------
# hydrogen-drumkits


@pytest.mark.parametrize(
    "name, label",
    [
        ('Kick (Tama Superstar 22")', "kick drum"),
        ("c3 - bass drum 1", "kick drum"),
        ("Snare Rimshot (Pearl Free Floating Maple 14x3.5)", "snare drum"),
        ("Snare1", "snare drum"),
        ("Rim Click (Pearl Free Floating Maple 14x3.5)", "side stick"),
        ("c#3 - stick", "side stick"),
        ("Hand Clap", "clap"),
        ("Closed HH", "closed hi-hat"),
        ("VariBreaks Hat 1 Cl", "closed hi-hat"),
        ("Hi Hat Opened", "open hi-hat"),
        ("Side OHH", "open hi-hat"),
        ("Sabian Hat Semi-Open", "open hi-hat"),
        ('Hi-Hat Pedal (Paiste Alpha Metal edge 14")', "pedal hi-hat"),
        ('Crash/Ride Bell (Paiste Rude Crash/Ride 18")', "ride bell"),
        ("Ride Jazz", "ride cymbal"),
        ("crash16inch", "crash cymbal"),
        ('China (Paiste Alpha 18")', "china cymbal"),
        ("Floor Tom", "tom"),
        ("tomhi2", "tom"),
        ("Djembe3 Slap", "djembe"),
        ("Sangban1 Head Hit", "dunun"),
        ("Finger Snaps", "finger snap"),
    ],
)
def test_drum_names_map_to_the_shared_drum_labels(name, label):
    assert samples.drum_label(name) == (label, None)
    assert label in samples.DRUM_LABELS


@pytest.mark.parametrize(
    "name, reason",
    [
        ("Sample: beats_08-37.flac", "cryptic name"),
        ("f#4 - ", "cryptic name"),
        ("VariBreaks Drum 1", "cryptic name"),
        ("Zap 2", "cryptic name"),
        ("Hat Ring 1", "hi-hat articulation not named"),
        ("d#4 - cymbal 1", "cymbal type not named"),
        ("redo super opaco", "no drum label for this name"),
    ],
)
def test_unclear_drum_names_are_skipped_with_the_reason(name, reason):
    assert samples.drum_label(name) == (None, reason)


def test_every_drum_label_of_the_soundfonts_is_in_the_shared_vocabulary():
    assert {label for _, label in soundfonts.GM_DRUMS.values()} <= samples.DRUM_LABELS


_DRUMKIT_XML = """<?xml version="1.0" encoding="UTF-8"?>
<drumkit_info xmlns="http://www.hydrogen-music.org/drumkit">
 <name>Tiny Kit</name>
 <license>CC-BY</license>
 <instrumentList>
  <instrument><id>0</id><name>Kick (Tama 22")</name>
   <layer><filename>kick-soft.wav</filename><min>0</min><max>0.5</max></layer>
   <layer><filename>kick-hard.wav</filename><min>0.5</min><max>1</max></layer>
  </instrument>
  <instrument><id>1</id><name>Hi-Hat Closed</name>
   <layer><filename>hat.flac</filename><min>0</min><max>1</max></layer>
  </instrument>
  <instrument><id>2</id><name>Sample: beats_01.wav</name>
   <layer><filename>beats_01.wav</filename><min>0</min><max>1</max></layer>
  </instrument>
  <instrument><id>3</id><name>Stick</name>
   <instrumentComponent><layer><filename>hat.flac</filename><min>0</min><max>1</max></layer>
   </instrumentComponent>
  </instrument>
  <instrument><id>4</id><name>Snare Roll</name>
   <layer><filename>gone.wav</filename><min>0</min><max>1</max></layer>
  </instrument>
 </instrumentList>
</drumkit_info>
"""
_COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: drumkits/TinyKit.h2drumkit
Copyright: someone
License: CC-BY-3.0
"""


def _tiny_hydrogen(root):
    kit = root / samples.HYDROGEN_KITS / "TinyKit"
    kit.mkdir(parents=True)
    (kit / "drumkit.xml").write_text(_DRUMKIT_XML)
    rng = np.random.default_rng(0)
    for file_name, amplitude in [("kick-soft.wav", 0.2), ("kick-hard.wav", 0.8), ("hat.flac", 0.5),
                                 ("beats_01.wav", 0.5)]:  # fmt: skip
        soundfile.write(kit / file_name, rng.uniform(-amplitude, amplitude, 800), 44_100)
    doc = root / "usr/share/doc" / samples.HYDROGEN
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(_COPYRIGHT)


def test_read_drumkit_finds_names_and_layers_with_or_without_components(tmp_path):
    _tiny_hydrogen(tmp_path)
    name, instruments = samples.read_drumkit(
        tmp_path / samples.HYDROGEN_KITS / "TinyKit/drumkit.xml"
    )
    assert name == "Tiny Kit"
    assert instruments[0] == (
        'Kick (Tama 22")',
        [("kick-soft.wav", 0.0, 0.5), ("kick-hard.wav", 0.5, 1.0)],
    )
    assert instruments[3] == ("Stick", [("hat.flac", 0.0, 1.0)])


def test_hydrogen_kit_clips_have_labels_layers_licence_and_group(tmp_path):
    _tiny_hydrogen(tmp_path)
    items = list(samples.HydrogenDrumkits().clips({samples.HYDROGEN: tmp_path}, "full"))
    clips = [i for i in items if isinstance(i, Clip)]
    assert [
        (c.label, c.attributes["dynamics"], c.original_path.rsplit("/", 1)[-1]) for c in clips
    ] == [
        ("kick drum", "loud", "kick-hard.wav"),  # the loudest layer first
        ("kick drum", "soft", "kick-soft.wav"),
        ("closed hi-hat", "medium", "hat.flac"),
    ]
    for clip in clips:
        assert clip.group == "hydrogen-drumkits:TinyKit" and clip.licence == "CC-BY-3.0"
        assert clip.category == "drums" and clip.attributes["kit"] == "Tiny Kit"
        assert clip.sampling_rate == 44_100 and clip.audio.shape == (800,)
    skipped = {
        (i.original_path.rsplit("/", 1)[-1], i.reason) for i in items if isinstance(i, Skipped)
    }
    assert skipped == {
        ("beats_01.wav", "cryptic name"),
        ("hat.flac", "duplicate"),  # "Stick" names the hi-hat's file again
        ("gone.wav", "missing file"),
    }
    small = [i for i in samples.HydrogenDrumkits().clips({samples.HYDROGEN: tmp_path}, "small")]
    assert [c.original_path for c in small if isinstance(c, Clip)] == [
        clips[0].original_path,
        clips[2].original_path,
    ]  # one layer per instrument: the loudest
    again = list(samples.HydrogenDrumkits().clips({samples.HYDROGEN: tmp_path}, "full"))
    assert [(c.key, c.audio.tobytes()) for c in again if isinstance(c, Clip)] == [
        (c.key, c.audio.tobytes()) for c in clips
    ]


# ---------------------------------------------------------------------------------------------
# lmms-common


@pytest.mark.parametrize(
    "relative, label, category",
    [
        ("drums/kick01.ogg", "kick drum", "drums"),
        ("drums/hihat_opened02.ogg", "open hi-hat", "drums"),
        ("drums/snare_hiphop02.ogg", "snare drum", "drums"),
        ("beats/break03.ogg", "drum kit", "drums"),
        ("instruments/violin_pizzicato01.ogg", "violin", "instrument"),
        ("instruments/church_organ04.ogg", "church organ", "instrument"),
        ("basses/rave_bass03.ogg", "synth bass", "instrument"),
    ],
)
def test_lmms_names_map_to_labels(relative, label, category):
    assert samples.lmms_entry(relative)[:2] == (label, category)


@pytest.mark.parametrize(
    "relative, reason",
    [
        ("drumsynth/tr808/Kick.ds", "DrumSynth preset (synthesis parameters, not audio)"),
        ("shapes/moog.wav", "single-cycle waveform"),
        ("drums/nasty_bass01.ogg", "cryptic name"),
        ("misc/applause01.ogg", "sound effect, not an instrument or drum sample"),
        ("newfolder/thing01.ogg", "not in the reviewed table"),
    ],
)
def test_lmms_names_without_a_label_are_skipped_with_the_reason(relative, reason):
    assert samples.lmms_entry(relative) == reason


def test_lmms_table_agrees_with_the_gm_and_drum_vocabularies():
    for key, entry in samples.LMMS_SAMPLES.items():
        if isinstance(entry, str):
            continue
        label, category, extra = entry
        assert category in CATEGORIES, key
        if "program" in extra:
            assert soundfonts.GM_PROGRAMS[extra["program"]] == label, key
        if category == "drums":
            assert label in samples.DRUM_LABELS, key
        else:
            assert extra.get("family") in (None, *soundfonts.GM_FAMILIES), key


def test_lmms_source_reads_samples_with_the_dep5_licence(tmp_path):
    base = tmp_path / samples.LMMS_SAMPLES_DIR
    for relative in ("drums/clap01.ogg", "instruments/cello01.ogg", "drumsynth/tr808/Kick.ds"):
        (base / relative).parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(base / "drums/clap01.ogg", np.sin(np.arange(4000) / 5) * 0.5, 44_100)
    soundfile.write(base / "instruments/cello01.ogg", np.sin(np.arange(8000) / 9) * 0.5, 22_050)
    (base / "drumsynth/tr808/Kick.ds").write_text("[General]\n")
    doc = tmp_path / "usr/share/doc" / samples.LMMS
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Files: *\nCopyright: LMMS\nLicense: GPL-2+\n")
    items = list(samples.LmmsSamples().clips({samples.LMMS: tmp_path}, "default"))
    clips = {i.key: i for i in items if isinstance(i, Clip)}
    assert sorted(clips) == ["lmms-common/drums/clap01.ogg", "lmms-common/instruments/cello01.ogg"]
    cello = clips["lmms-common/instruments/cello01.ogg"]
    assert (cello.label, cello.category, cello.licence, cello.group) == (
        "cello",
        "instrument",
        "GPL-2.0+",
        "lmms-common",
    )
    assert cello.attributes["family"] == "strings" and cello.sampling_rate == 22_050
    assert clips["lmms-common/drums/clap01.ogg"].attributes["pattern"] == "single hit"
    assert [i.reason for i in items if isinstance(i, Skipped)] == [
        "DrumSynth preset (synthesis parameters, not audio)"
    ]
