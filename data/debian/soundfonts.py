"""General MIDI soundfonts rendered with fluidsynth: every program and the drum kits.

`fluid-soundfont-gm` (FluidR3_GM.sf2) and `musescore-general-soundfont-small`
(MuseScore_General_Lite.sf3) each hold the 128 General MIDI programs and GM drum kits. We write
standard MIDI files ourselves (`encode_midi`), one per batch of performances, and render each with
`fluidsynth` (reverb and chorus off, fixed gain and rate), then cut the rendering back into one
clip per performance at the known window boundaries and trim the decayed tail.

Performances (`plan_programs`, `plan_drums`):
- melodic programs: single notes across the program's playable range at several velocities,
  short seeded melodies, chords, arpeggios, at several tempi;
- GM sound-effect programs 122-127 (seashore ... gunshot): a few notes, as environmental sounds;
- drum kits (channel 10): each GM drum instrument as single hits, rolls, and a few grooves.

Each soundfont is one split group (its package name), so the test split can hold out a soundfont.
Every window ends with "all sound off", so no note leaks into the next clip, and the timing grid is
1 ms (500 ticks per quarter note at 120 bpm), so window boundaries are exact sample indices.

    from slap_audio.data.debian.soundfonts import SOURCES
    clips = list(SOURCES[0].clips({"fluid-soundfont-gm": Path("unpacked/fluid-soundfont-gm"), ...}, "small"))
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slap_audio.data.debian.audio_io import SILENCE_DBFS, peak_dbfs, trim_trailing_silence
from slap_audio.data.debian.records import Clip, Skipped

SEED = 10  # the corpus's fixed seed for melodies and chord roots (plus a CRC-32 of the key)
RENDER_RATE = 22_050  # fluidsynth's output rate; the corpus writer resamples to 16 kHz
GAIN = 0.65  # master gain: the loudest default clip (a tuba chord) peaks near -0.4 dBFS
TICKS_PER_SECOND = 1000  # 500 ticks per quarter note at 120 bpm: a 1 ms grid
RELEASE_S = 2.5  # room after the last note-off for the release to decay before "all sound off"
DRUM_CHANNEL = 9  # MIDI channel 10

# ---------------------------------------------------------------------------------------------
# General MIDI: the 128 programs (labels in plain English), 16 families of 8, playable ranges.

GM_FAMILIES = (
    "piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussive",
    "sound effects",
)  # fmt: skip
GM_PROGRAMS = (
    # piano
    "acoustic grand piano", "bright acoustic piano", "electric grand piano", "honky-tonk piano",
    "rhodes electric piano", "FM electric piano", "harpsichord", "clavinet",
    # chromatic percussion
    "celesta", "glockenspiel", "music box", "vibraphone", "marimba", "xylophone",
    "tubular bells", "dulcimer",
    # organ
    "drawbar organ", "percussive organ", "rock organ", "church organ", "reed organ",
    "accordion", "harmonica", "tango accordion",
    # guitar
    "nylon-string acoustic guitar", "steel-string acoustic guitar", "jazz electric guitar",
    "clean electric guitar", "muted electric guitar", "overdriven guitar", "distortion guitar",
    "guitar harmonics",
    # bass
    "acoustic bass", "fingered electric bass", "picked electric bass", "fretless bass",
    "slap bass 1", "slap bass 2", "synth bass 1", "synth bass 2",
    # strings
    "violin", "viola", "cello", "contrabass", "tremolo strings", "pizzicato strings",
    "orchestral harp", "timpani",
    # ensemble
    "string ensemble", "slow string ensemble", "synth strings 1", "synth strings 2",
    "choir aahs", "voice oohs", "synth voice", "orchestra hit",
    # brass
    "trumpet", "trombone", "tuba", "muted trumpet", "french horn", "brass section",
    "synth brass 1", "synth brass 2",
    # reed
    "soprano saxophone", "alto saxophone", "tenor saxophone", "baritone saxophone", "oboe",
    "english horn", "bassoon", "clarinet",
    # pipe
    "piccolo", "flute", "recorder", "pan flute", "blown bottle", "shakuhachi", "whistle",
    "ocarina",
    # synth lead
    "square wave lead", "sawtooth lead", "calliope lead", "chiff lead", "charang lead",
    "voice lead", "fifths lead", "bass and lead",
    # synth pad
    "new age pad", "warm pad", "polysynth pad", "choir pad", "bowed pad", "metallic pad",
    "halo pad", "sweep pad",
    # synth effects
    "rain synth effect", "soundtrack synth effect", "crystal synth effect",
    "atmosphere synth effect", "brightness synth effect", "goblins synth effect",
    "echoes synth effect", "sci-fi synth effect",
    # ethnic
    "sitar", "banjo", "shamisen", "koto", "kalimba", "bagpipe", "fiddle", "shehnai",
    # percussive
    "tinkle bell", "agogo", "steel drums", "woodblock", "taiko drum", "melodic tom",
    "synth drum", "reverse cymbal",
    # sound effects
    "guitar fret noise", "breath noise", "seashore", "bird tweet", "telephone ring",
    "helicopter", "applause", "gunshot",
)  # fmt: skip

# GM sound effects rendered as environmental sounds: program -> the caption phrase.
GM_ENVIRONMENTAL = {
    122: "waves on a seashore",
    123: "a bird tweeting",
    124: "a telephone ringing",
    125: "a helicopter",
    126: "applause",
    127: "a gunshot",
}

# (lowest, highest) MIDI note each program is played over: a family default, then the programs
# whose real instrument has another range (orchestral and folk ranges, rounded).
_FAMILY_RANGES = {
    "piano": (28, 100), "chromatic percussion": (60, 96), "organ": (36, 96),
    "guitar": (40, 84), "bass": (28, 60), "strings": (36, 84), "ensemble": (36, 91),
    "brass": (40, 79), "reed": (50, 86), "pipe": (60, 96), "synth lead": (36, 96),
    "synth pad": (36, 91), "synth effects": (36, 91), "ethnic": (50, 84),
    "percussive": (48, 84), "sound effects": (55, 67),
}  # fmt: skip
_PROGRAM_RANGES = {
    6: (29, 89), 7: (36, 84), 8: (60, 108), 9: (77, 108), 11: (53, 89), 12: (45, 96),
    13: (65, 108), 14: (60, 77), 19: (24, 96), 21: (53, 89), 22: (60, 84), 23: (53, 89),
    31: (52, 88), 38: (28, 67), 39: (28, 67), 40: (55, 96), 41: (48, 84), 42: (36, 72),
    43: (28, 60), 46: (24, 103), 47: (40, 57), 52: (48, 79), 53: (48, 79), 54: (48, 84),
    55: (48, 72), 56: (55, 82), 57: (40, 72), 58: (28, 58), 59: (55, 82), 60: (41, 77),
    61: (36, 84), 62: (36, 84), 63: (36, 84), 64: (56, 87), 65: (49, 80), 66: (44, 75),
    67: (36, 68), 68: (58, 91), 69: (52, 81), 70: (34, 75), 71: (50, 91), 72: (74, 108),
    76: (60, 84), 77: (55, 84), 79: (60, 84), 87: (36, 72), 104: (48, 77), 105: (48, 84),
    107: (55, 90), 108: (60, 84), 109: (55, 77), 110: (55, 96), 112: (72, 96), 114: (52, 88),
    116: (36, 60), 117: (40, 64), 118: (40, 64),
}  # fmt: skip


def gm_family(program: int) -> str:
    """The GM family of a program (0-127): eight programs per family."""
    return GM_FAMILIES[program // 8]


def program_range(program: int) -> tuple[int, int]:
    """The (lowest, highest) MIDI note a program is rendered over."""
    return _PROGRAM_RANGES.get(program, _FAMILY_RANGES[gm_family(program)])


# GM percussion key map (channel 10, notes 35-81): note -> (GM name, the corpus's drum label).
# The labels are the drum vocabulary shared with the recorded kits (`samples.py`).
GM_DRUMS = {
    35: ("Acoustic Bass Drum", "kick drum"), 36: ("Bass Drum 1", "kick drum"),
    37: ("Side Stick", "side stick"), 38: ("Acoustic Snare", "snare drum"),
    39: ("Hand Clap", "clap"), 40: ("Electric Snare", "snare drum"),
    41: ("Low Floor Tom", "tom"), 42: ("Closed Hi-Hat", "closed hi-hat"),
    43: ("High Floor Tom", "tom"), 44: ("Pedal Hi-Hat", "pedal hi-hat"),
    45: ("Low Tom", "tom"), 46: ("Open Hi-Hat", "open hi-hat"), 47: ("Low-Mid Tom", "tom"),
    48: ("Hi-Mid Tom", "tom"), 49: ("Crash Cymbal 1", "crash cymbal"), 50: ("High Tom", "tom"),
    51: ("Ride Cymbal 1", "ride cymbal"), 52: ("Chinese Cymbal", "china cymbal"),
    53: ("Ride Bell", "ride bell"), 54: ("Tambourine", "tambourine"),
    55: ("Splash Cymbal", "splash cymbal"), 56: ("Cowbell", "cowbell"),
    57: ("Crash Cymbal 2", "crash cymbal"), 58: ("Vibraslap", "vibraslap"),
    59: ("Ride Cymbal 2", "ride cymbal"), 60: ("Hi Bongo", "bongo"), 61: ("Low Bongo", "bongo"),
    62: ("Mute Hi Conga", "conga"), 63: ("Open Hi Conga", "conga"), 64: ("Low Conga", "conga"),
    65: ("High Timbale", "timbale"), 66: ("Low Timbale", "timbale"),
    67: ("High Agogo", "agogo"), 68: ("Low Agogo", "agogo"), 69: ("Cabasa", "cabasa"),
    70: ("Maracas", "maracas"), 71: ("Short Whistle", "whistle"),
    72: ("Long Whistle", "whistle"), 73: ("Short Guiro", "guiro"), 74: ("Long Guiro", "guiro"),
    75: ("Claves", "claves"), 76: ("Hi Wood Block", "wood block"),
    77: ("Low Wood Block", "wood block"), 78: ("Mute Cuica", "cuica"),
    79: ("Open Cuica", "cuica"), 80: ("Mute Triangle", "triangle"),
    81: ("Open Triangle", "triangle"),
}  # fmt: skip
GROOVE_LABEL = "drum kit"  # the label of a groove, where the whole kit plays

# GS/GM2 drum kit presets (bank 128) -> kit name. A kit the soundfont lacks is skipped.
DRUM_KITS = {
    0: "standard kit", 8: "room kit", 16: "power kit", 24: "electronic kit", 25: "TR-808 kit",
    32: "jazz kit", 40: "brush kit", 48: "orchestra kit",
}  # fmt: skip
# the kit pieces every kit plays in the default size (other kits than the standard one)
CORE_DRUM_NOTES = (36, 37, 38, 39, 42, 44, 46, 45, 48, 49, 51, 53)

# 16-step grooves (one bar of sixteenth notes): drum note -> steps; ghost notes are played soft.
GROOVES = {
    "rock beat": {36: (0, 8, 10), 38: (4, 12), 42: (0, 2, 4, 6, 8, 10, 12, 14)},
    "disco beat": {36: (0, 4, 8, 12), 38: (4, 12), 42: (0, 4, 8, 12), 46: (2, 6, 10, 14)},
    "funk beat": {36: (0, 3, 10), 38: (4, 7, 9, 12), 42: tuple(range(16))},
    "jazz ride pattern": {51: (0, 4, 7, 8, 12, 15), 44: (4, 12), 36: (0, 8)},
}
GHOST_STEPS = {"funk beat": {38: (7, 9)}}

VELOCITIES = {"soft": 50, "medium": 85, "loud": 115}
TEMPI = (72, 96, 120, 144)
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
CHORDS = {"major": (0, 4, 7), "minor": (0, 3, 7), "dominant seventh": (0, 4, 7, 10)}
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}


def pitch_name(note: int) -> str:
    """Scientific pitch name of a MIDI note (60 -> "C4")."""
    return f"{NOTE_NAMES[note % 12]}{note // 12 - 1}"


def pitch_range(notes: Sequence[int]) -> str:
    """ "low" (median below C3), "middle" (C3-B4) or "high" (C5 and up): absolute registers."""
    median = float(np.median(notes))
    return "low" if median < 48 else "middle" if median < 72 else "high"


def dynamics(velocity: int) -> str:
    """ "soft", "medium" or "loud" for a MIDI velocity."""
    return "soft" if velocity < 60 else "medium" if velocity < 100 else "loud"


# ---------------------------------------------------------------------------------------------
# Standard MIDI files.


def _variable_length(value: int) -> bytes:
    """A MIDI variable-length quantity: 7 bits per byte, most significant first."""
    groups = [value & 0x7F]
    while value := value >> 7:
        groups.append(0x80 | (value & 0x7F))
    return bytes(reversed(groups))


def encode_midi(events: Sequence[tuple[int, bytes]], ticks_per_quarter: int = 500) -> bytes:
    """A format-0 standard MIDI file of `(tick, message)` events at 120 bpm.

    With the default 500 ticks per quarter note one tick is 1 ms. Events are sorted by tick
    (stably: at one tick they keep the given order); an end-of-track follows the last one."""
    track = bytearray(b"\x00\xff\x51\x03" + (500_000).to_bytes(3, "big"))  # 120 bpm
    now = 0
    for tick, message in sorted(events, key=lambda event: event[0]):
        track += _variable_length(tick - now) + message
        now = tick
    track += b"\x00\xff\x2f\x00"
    header = struct.pack(">4sIHHH", b"MThd", 6, 0, 1, ticks_per_quarter)
    return header + struct.pack(">4sI", b"MTrk", len(track)) + bytes(track)


# ---------------------------------------------------------------------------------------------
# Performances: what is played in one clip.


@dataclass(frozen=True)
class Note:
    onset_s: float
    duration_s: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Performance:
    """One clip to render: a preset (bank, program), the notes, and what the caption may say."""

    key: str  # "<kind>/<...>", unique within a soundfont
    bank: int  # 0 for melodic programs, 128 for drum kits
    program: int
    notes: tuple[Note, ...]
    label: str
    category: str
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def length_s(self) -> float:
        return max(n.onset_s + n.duration_s for n in self.notes) + RELEASE_S


def _rng(key: str) -> np.random.Generator:
    return np.random.default_rng([SEED, zlib.crc32(key.encode())])


# per size: single notes per program, melodies, chords, arpeggios (each at one of TEMPI)
_PROGRAM_PLAN = {"small": (1, 0, 0, 0), "default": (4, 1, 1, 1), "full": (12, 3, 3, 2)}


def plan_programs(size: str) -> list[Performance]:
    """The melodic performances of one soundfont at `size` ("small", "default", "full")."""
    singles, melodies, chords, arpeggios = _PROGRAM_PLAN[size]
    plans = []
    for program, label in enumerate(GM_PROGRAMS):
        low, high = program_range(program)
        base = {"program": program, "family": gm_family(program), "instrument": label}
        category, textures = "instrument", []
        if program in GM_ENVIRONMENTAL:
            category = "environmental"
            base = {**base, "phrase": GM_ENVIRONMENTAL[program], "tags": ["synthesized"]}
            textures = [("single note", i) for i in range(min(singles, 2))]
        elif size == "small":  # one clip per program, the texture rotating over the programs
            textures = [(("single note", "melody", "chord", "arpeggio")[program % 4], 0)]
        else:
            textures = [
                *(("single note", i) for i in range(singles)),
                *(("melody", i) for i in range(melodies)),
                *(("chord", i) for i in range(chords)),
                *(("arpeggio", i) for i in range(arpeggios)),
            ]
        for texture, index in textures:
            key = f"program-{program:03d}-{label.replace(' ', '-')}/{texture.replace(' ', '-')}-{index}"
            notes, extra = _texture(texture, index, max(singles, 1), low, high, _rng(key))
            pitches = sorted({n.pitch for n in notes})
            velocity = max(n.velocity for n in notes)
            attributes = {
                **base,
                **extra,
                "texture": texture,
                "notes": pitches,
                "pitch_names": [pitch_name(p) for p in pitches],
                "pitch_range": pitch_range([n.pitch for n in notes]),
                "velocity": velocity,
                "dynamics": dynamics(velocity),
            }
            plans.append(Performance(key, 0, program, notes, label, category, attributes))
    return plans


def _texture(
    texture: str, index: int, count: int, low: int, high: int, rng: np.random.Generator
) -> tuple[tuple[Note, ...], dict[str, Any]]:
    """The notes of one texture and its extra attributes (tempo, chord, scale)."""
    tempo = TEMPI[int(rng.integers(len(TEMPI)))]
    beat = 60.0 / tempo
    velocity = tuple(VELOCITIES.values())[int(rng.integers(len(VELOCITIES)))]
    if texture == "single note":  # evenly across the range; velocities cycle soft/medium/loud
        pitch = low + round((high - low) * (index + 0.5) / count)
        velocity = tuple(VELOCITIES.values())[index % len(VELOCITIES)]
        return (Note(0.0, 2 * beat, pitch, velocity),), {}  # held two beats
    quality = tuple(CHORDS)[int(rng.integers(len(CHORDS)))]
    intervals = CHORDS[quality]
    root = int(rng.integers(low, max(low + 1, high - intervals[-1] - 11)))
    if texture == "chord":
        notes = tuple(Note(0.0, 3 * beat, root + i, velocity) for i in intervals)
        return notes, {"chord": f"{NOTE_NAMES[root % 12]} {quality}", "tempo_bpm": tempo}
    if texture == "arpeggio":  # up over two octaves where the range allows, then down
        up = [root + 12 * octave + i for octave in (0, 1, 2) for i in intervals]
        up = [p for p in up if p <= min(high, root + 24)]
        pitches = up + up[-2::-1]
        step = beat / 2
        notes = tuple(Note(i * step, step, p, velocity) for i, p in enumerate(pitches))
        return notes, {"chord": f"{NOTE_NAMES[root % 12]} {quality}", "tempo_bpm": tempo}
    # melody: a seeded walk over a major or minor scale, 6-9 notes of one or two beats' length
    mode = "major" if quality != "minor" else "minor"
    scale = [root + 12 * o + d for o in (-1, 0, 1) for d in SCALES[mode]]
    scale = [p for p in scale if low <= p <= high] or [root]
    position, onset, notes_list = scale.index(root) if root in scale else 0, 0.0, []
    for _ in range(int(rng.integers(6, 10))):
        length = beat * float(rng.choice([0.5, 1.0, 1.0, 2.0]))
        notes_list.append(Note(onset, length * 0.95, scale[position], velocity))
        onset += length
        position = int(np.clip(position + rng.choice([-2, -1, 1, 1, 2]), 0, len(scale) - 1))
    return tuple(notes_list), {"scale": f"{NOTE_NAMES[root % 12]} {mode}", "tempo_bpm": tempo}


# per size: (kits: "standard" only / all, notes per kit beyond the standard one, velocities of
# single hits, rolls, grooves)
_DRUM_PLAN = {
    "small": (False, (), ("loud",), 0, 1),
    "default": (True, CORE_DRUM_NOTES, ("loud",), 4, 4),
    "full": (True, tuple(GM_DRUMS), ("soft", "medium", "loud"), 6, 4),
}
ROLL_NOTES = (38, 45, 49, 42, 51, 36)  # snare, low tom, crash, closed hi-hat, ride, kick


def plan_drums(size: str, kits: Sequence[int]) -> list[Performance]:
    """The drum performances of one soundfont at `size`, over the drum kit presets `kits`."""
    all_kits, other_notes, velocity_names, rolls, grooves = _DRUM_PLAN[size]
    plans = []
    for kit in [k for k in kits if all_kits or k == 0]:
        notes = CORE_DRUM_NOTES if size == "small" else tuple(GM_DRUMS) if kit == 0 else other_notes
        for note in notes:
            gm_name, label = GM_DRUMS[note]
            for name in velocity_names:
                hit = (Note(0.0, 0.25, note, VELOCITIES[name]),)
                plans.append(
                    _drums(kit, f"hit-{note}-{name}", label, hit, "single hit", gm_drum=gm_name)
                )
        for note in ROLL_NOTES[: rolls if kit == 0 else min(rolls, 1)]:
            gm_name, label = GM_DRUMS[note]
            tempo = TEMPI[int(_rng(f"{kit}/roll/{note}").integers(len(TEMPI)))]
            step = 60.0 / tempo / 8  # thirty-second notes over one bar, a crescendo
            hits = tuple(Note(i * step, step, note, int(40 + 80 * i / 31)) for i in range(32))
            plans.append(_drums(kit, f"roll-{note}", label, hits, "roll", tempo, gm_drum=gm_name))
        for style in list(GROOVES)[: grooves if kit == 0 else min(grooves, 1)]:
            tempo = TEMPI[int(_rng(f"{kit}/groove/{style}").integers(len(TEMPI)))]
            step = 60.0 / tempo / 4  # sixteenth notes, two bars
            ghosts = GHOST_STEPS.get(style, {})
            hits = tuple(
                Note((16 * bar + s) * step, step, note, 40 if s in ghosts.get(note, ()) else 100)
                for bar in (0, 1)
                for note, steps in GROOVES[style].items()
                for s in steps
            )
            key = f"groove-{style.replace(' ', '-')}"
            plans.append(_drums(kit, key, GROOVE_LABEL, hits, "groove", tempo, style=style))
    return plans


def _drums(
    kit: int, key: str, label: str, hits: tuple[Note, ...], pattern: str, tempo=None, **extra
) -> Performance:
    velocity = max(n.velocity for n in hits)
    attributes = {"kit": DRUM_KITS[kit], "instrument": label, "pattern": pattern, **extra}
    attributes |= {"velocity": velocity, "dynamics": dynamics(velocity)}
    if tempo is not None:
        attributes["tempo_bpm"] = tempo
    return Performance(f"kit-{kit:03d}/{key}", 128, kit, hits, label, "drums", attributes)


# ---------------------------------------------------------------------------------------------
# Rendering.


def soundfont_presets(path: str | Path) -> dict[tuple[int, int], str]:
    """{(bank, program): preset name} from the `phdr` chunk of an SF2/SF3 file."""
    with open(path, "rb") as f:
        riff, _, form = struct.unpack("<4sI4s", f.read(12))
        if riff != b"RIFF" or form != b"sfbk":
            raise ValueError(f"{path} is not a SoundFont (RIFF sfbk) file")
        while header := f.read(8):
            chunk, size = struct.unpack("<4sI", header)
            if chunk == b"LIST" and f.read(4) == b"pdta":
                end = f.tell() + size - 4
                while f.tell() < end:
                    sub, sub_size = struct.unpack("<4sI", f.read(8))
                    if sub == b"phdr":
                        data = f.read(sub_size)
                        records = [data[i : i + 38] for i in range(0, len(data) - 38, 38)]
                        return {
                            (bank, program): name.split(b"\0")[0].decode("latin-1").strip()
                            for name, program, bank in (
                                struct.unpack("<20sHH", r[:24]) for r in records
                            )
                        }  # the last record, "EOP", is left out by the range above
                    f.seek(sub_size, 1)
            else:
                f.seek(size - (4 if chunk == b"LIST" else 0), 1)  # SF3 does not pad odd sizes
    raise ValueError(f"{path} has no preset headers (phdr)")


def _events(performances: Sequence[Performance]) -> tuple[list[tuple[int, bytes]], list[int]]:
    """MIDI events playing `performances` one after another, and each window's start tick."""
    events, starts, tick = [], [], 0
    for p in performances:
        channel = DRUM_CHANNEL if p.bank == 128 else 0
        starts.append(tick)
        events += [  # channel 10 plays bank 128 (drum kits) by itself; channel 1 bank 0
            *([(tick, bytes([0xB0, 0, p.bank]))] if channel == 0 else []),  # bank select (GS: MSB)
            (tick, bytes([0xB0 | channel, 91, 0])),  # reverb send off
            (tick, bytes([0xB0 | channel, 93, 0])),  # chorus send off
            (tick, bytes([0xC0 | channel, p.program])),
        ]
        lead = 20  # ms for the program change to settle before the first note
        for n in p.notes:
            on = tick + lead + round(n.onset_s * TICKS_PER_SECOND)
            off = on + max(1, round(n.duration_s * TICKS_PER_SECOND))
            events += [
                (on, bytes([0x90 | channel, n.pitch, n.velocity])),
                (off, bytes([0x80 | channel, n.pitch, 0])),
            ]
        tick += lead + round(p.length_s * TICKS_PER_SECOND)
        events.append((tick - 1, bytes([0xB0 | channel, 120, 0])))  # all sound off
    starts.append(tick)
    return events, starts


def render_midi(
    midi: bytes, soundfont: str | Path, rate: int = RENDER_RATE, gain: float = GAIN
) -> np.ndarray:
    """Render a MIDI file with fluidsynth (reverb and chorus off): float32 mono at `rate`."""
    import soundfile

    executable = shutil.which("fluidsynth")
    if executable is None:
        raise FileNotFoundError("fluidsynth is not installed (apt-get install fluidsynth)")
    with tempfile.TemporaryDirectory(prefix="slap-fluidsynth-") as tmp:
        (Path(tmp) / "in.mid").write_bytes(midi)
        command = [
            executable, "-n", "-i", "-q", "-R", "0", "-C", "0", "-g", str(gain), "-r", str(rate),
            "-O", "float", "-T", "wav", "-o", "synth.cpu-cores=1", "-o", "synth.polyphony=256", "-o", "synth.dynamic-sample-loading=1",
            "-F", str(Path(tmp) / "out.wav"), str(soundfont), str(Path(tmp) / "in.mid"),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, check=False)
        if result.returncode != 0 or not (Path(tmp) / "out.wav").exists():
            raise RuntimeError(f"fluidsynth failed: {result.stderr.decode(errors='replace')}")
        audio, _ = soundfile.read(Path(tmp) / "out.wav", dtype="float32", always_2d=True)
    return audio.mean(axis=1)


def render_performances(
    performances: Sequence[Performance], soundfont: str | Path, rate: int = RENDER_RATE
) -> list[np.ndarray]:
    """Render performances in one fluidsynth run and cut them apart: one trimmed array each."""
    events, starts = _events(performances)
    audio = render_midi(encode_midi(events), soundfont, rate)
    bounds = [round(t * rate / TICKS_PER_SECOND) for t in starts]
    audio = np.pad(audio, (0, max(0, bounds[-1] - len(audio))))
    return [
        np.clip(trim_trailing_silence(audio[a:b]), -1.0, 1.0)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# The source.


@dataclass(frozen=True)
class SoundfontSource:
    """A General MIDI soundfont package rendered with fluidsynth: programs and drum kits."""

    name: str
    package: str
    soundfont_path: str  # inside the unpacked package
    soundfont: str  # how captions and attributes name it
    licence: str  # from the package's debian/copyright (reviewed)
    tools: tuple[str, ...] = ("fluidsynth",)
    batch_size: int = 64  # performances per fluidsynth run (bounds memory, amortises loading)

    @property
    def packages(self) -> tuple[str, ...]:
        return (self.package,)

    def clips(self, unpacked: Mapping[str, Path], size: str) -> Iterator[Clip | Skipped]:
        path = Path(unpacked[self.package]) / self.soundfont_path
        presets = soundfont_presets(path)
        plans = plan_programs(size) + plan_drums(
            size, [k for k in DRUM_KITS if (128, k) in presets]
        )
        for kit in DRUM_KITS:
            if (128, kit) not in presets:
                yield Skipped(self.package, f"rendered:bank-128/{kit}", "drum kit not in soundfont")
        playable = [p for p in plans if (p.bank, p.program) in presets]
        for p in plans:
            if (p.bank, p.program) not in presets:
                yield Skipped(self.package, f"rendered:{p.key}", "preset not in soundfont")
        for start in range(0, len(playable), self.batch_size):
            batch = playable[start : start + self.batch_size]
            for p, audio in zip(batch, render_performances(batch, path), strict=True):
                yield self._clip(p, audio, presets)

    def _clip(self, p: Performance, audio: np.ndarray, presets: Mapping) -> Clip | Skipped:
        original = f"rendered:{self.soundfont_path}#bank={p.bank},program={p.program}:{p.key}"
        if peak_dbfs(audio) < SILENCE_DBFS:
            return Skipped(self.package, original, "silent")
        attributes = {
            **p.attributes,
            "soundfont": self.soundfont,
            "preset": presets[(p.bank, p.program)],
        }
        return Clip(
            key=f"{self.package}/{p.key}",
            audio=audio,
            sampling_rate=RENDER_RATE,
            label=p.label,
            category=p.category,
            source=self.package,
            licence=self.licence,
            original_path=original,
            group=self.package,
            attributes=attributes,
        )


SOURCES = (
    SoundfontSource(
        name="fluid-soundfont-gm",
        package="fluid-soundfont-gm",
        soundfont_path="usr/share/sounds/sf2/FluidR3_GM.sf2",
        soundfont="FluidR3 GM",
        licence="MIT",
    ),
    SoundfontSource(
        name="musescore-general-soundfont-small",
        package="musescore-general-soundfont-small",
        soundfont_path="usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
        soundfont="MuseScore General Lite",
        licence="MIT",
    ),
)
