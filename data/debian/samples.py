"""Recorded instrument and drum samples: hydrogen-drumkits and lmms-common.

- `hydrogen-drumkits`: 14 drum kits, each a folder with a `drumkit.xml` that names its
  instruments ("Snare Rimshot (Pearl Free Floating Maple 14x3.5)", "c#3 - stick", "Open HH") and
  lists each instrument's velocity layers (one sample file per layer). The names are mapped to the
  corpus's drum labels (the vocabulary of `soundfonts.GM_DRUMS`) by the reviewed rules of
  `DRUM_NAME_RULES`; names no rule matches ("Sample: beats_08-37.flac", "Drum 1", "Zap") are
  skipped with the reason. Each kit is its own split group, "hydrogen-drumkits:<kit>".
- `lmms-common`: LMMS's sample library (`usr/share/lmms/samples`), mapped folder/file stem by
  folder/file stem with the reviewed table `LMMS_SAMPLES`; DrumSynth presets (`.ds` parameter
  files), single-cycle waveforms and cryptic names are skipped with the reason.

Licences come from each package's machine-readable `debian/copyright`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from slap_audio.data.debian.audio_io import UndecodableAudio, decode_audio
from slap_audio.data.debian.copyright import file_licence
from slap_audio.data.debian.records import Clip, Skipped
from slap_audio.data.debian.soundfonts import GM_DRUMS, GROOVE_LABEL, gm_family

# ---------------------------------------------------------------------------------------------
# hydrogen-drumkits

HYDROGEN = "hydrogen-drumkits"
HYDROGEN_KITS = "usr/share/hydrogen/data/drumkits"
# kit folder -> its upstream archive, where the two names differ (debian/copyright names archives)
KIT_ARCHIVES = {"circAfrique v4": "circAfrique"}

# Reviewed rules, first match wins: a regular expression over the lowercased instrument name
# (its "c#3 - " note prefix removed) -> a drum label (one of DRUM_LABELS below), or else the
# reason the instrument is skipped.
DRUM_NAME_RULES: tuple[tuple[str, str], ...] = (
    (r"^sample:|^\d*$|^$", "cryptic name"),
    (r"snare|\bsn\b", "snare drum"),  # rimshots and rolls included
    (r"kick|bass ?drum|\bbd\b", "kick drum"),
    (r"side ?stick|\bstick\b|rim ?click", "side stick"),
    (r"\bclap\b", "clap"),
    (r"finger ?snap", "finger snap"),
    (r"(hi-?hat|\bhh\b|\bhat\b).*(pedal|foot|\bpd\b)|pedal hh", "pedal hi-hat"),
    (
        r"(hi-?hat|\bhh\b|\bhat\b|\bohh\b).*(open|opened|\bop\b|semi-?open|swish)|open hh|\bohh\b",
        "open hi-hat",
    ),
    (r"(hi-?hat|\bhh\b|\bhat\b).*(closed|\bcl\b)|closed hh", "closed hi-hat"),
    (r"hi-?hat|\bhh\b|\bhat\b", "hi-hat articulation not named"),
    (r"\bbell\b.*\b(ride|crash)|\b(ride|crash)\b.*\bbell\b|ride-cup|^paiste bell$", "ride bell"),
    (r"\bride", "ride cymbal"),
    (r"\bcrash", "crash cymbal"),
    (r"\bchina\b", "china cymbal"),
    (r"\bsplash\b", "splash cymbal"),
    (r"\bcymbal\b", "cymbal type not named"),
    (r"\btom\b|tom(hi|low|mid)", "tom"),
    (r"\bcowbell\b", "cowbell"),
    (r"\btambourine\b", "tambourine"),
    (r"\bagogo\b", "agogo"),
    (r"\bconga\b", "conga"),
    (r"\bbongo\b", "bongo"),
    (r"\bcajon\b", "cajon"),
    (r"\bdjembe", "djembe"),
    (r"(sangban|dununba|kenkeni)\d* head", "dunun"),
    (r"(sangban|dununba|kenkeni)\d* bell", "cowbell"),  # the iron bell mounted on a dunun
    (r"\bmaracas?\b", "maracas"),
    (r"\bclaves?\b", "claves"),
    (r"wood ?block", "wood block"),
    (r"waterglass", "water glass"),
    (r"\bwhistle\b", "whistle"),
    (r"^(zap|fx|click)\b|\bdrum \d\b", "cryptic name"),  # "Zap 1", "FX", "Click", "Drum 2"
)
DRUM_LABELS = frozenset(label for _, label in GM_DRUMS.values()) | {
    GROOVE_LABEL,
    "finger snap",
    "cajon",
    "djembe",
    "dunun",
    "water glass",
    "shaker",
}


def drum_label(name: str) -> tuple[str | None, str | None]:
    """(label, None) for a kit's instrument name, or (None, reason) when no rule names a drum."""
    text = re.sub(r"^[a-g]#?\d\s*-\s*", "", name.strip().lower())  # "c#3 - stick" -> "stick"
    for pattern, outcome in DRUM_NAME_RULES:
        if re.search(pattern, text):
            return (outcome, None) if outcome in DRUM_LABELS else (None, outcome)
    return None, "no drum label for this name"


def _dynamics(low: float, high: float) -> str:
    middle = (low + high) / 2  # hydrogen velocity layers span [0, 1]
    return "soft" if middle < 0.4 else "medium" if middle < 0.75 else "loud"


def _children(element: ET.Element, tag: str) -> list[ET.Element]:
    return [child for child in element if child.tag.rsplit("}", 1)[-1] == tag]


def _text(element: ET.Element, tag: str) -> str:
    found = _children(element, tag)
    return (found[0].text or "").strip() if found else ""


def read_drumkit(
    xml_path: str | Path,
) -> tuple[str, list[tuple[str, list[tuple[str, float, float]]]]]:
    """(kit name, [(instrument name, [(layer file, velocity min, velocity max), ...]), ...]).

    Reads `drumkit.xml` with or without its XML namespace; instruments in file order."""
    root = ET.parse(xml_path).getroot()
    instruments = []
    for instrument_list in _children(root, "instrumentList"):
        for instrument in _children(instrument_list, "instrument"):
            layers = []
            for layer in instrument.iter():  # <layer>, or <instrumentComponent><layer> (v0.9.7+)
                if layer.tag.rsplit("}", 1)[-1] == "layer" and _text(layer, "filename"):
                    entry = (
                        _text(layer, "filename"),
                        float(_text(layer, "min") or 0),
                        float(_text(layer, "max") or 1),
                    )
                    if entry not in layers:
                        layers.append(entry)
            if not layers and _text(instrument, "filename"):  # old format: one sample
                layers.append((_text(instrument, "filename"), 0.0, 1.0))
            instruments.append((_text(instrument, "name"), layers))
    return _text(root, "name") or Path(xml_path).parent.name, instruments


# layers per instrument at each size: the loudest, then evenly spread softer ones
_LAYERS = {"small": 1, "default": 2, "full": None}
_SMALL_KITS = 3  # the first kits (sorted) in the small size


@dataclass(frozen=True)
class HydrogenDrumkits:
    """The recorded drum kits of hydrogen-drumkits, labelled from each kit's drumkit.xml."""

    name: str = HYDROGEN
    packages: tuple[str, ...] = (HYDROGEN,)
    tools: tuple[str, ...] = ()

    def clips(self, unpacked: Mapping[str, Path], size: str) -> Iterator[Clip | Skipped]:
        root = Path(unpacked[HYDROGEN])
        copyright_file = root / "usr/share/doc" / HYDROGEN / "copyright"
        folders = sorted(p.parent for p in (root / HYDROGEN_KITS).glob("*/drumkit.xml"))
        for folder in folders[:_SMALL_KITS] if size == "small" else folders:
            yield from self._kit(root, folder, copyright_file, size)

    def _kit(
        self, root: Path, folder: Path, copyright_file: Path, size: str
    ) -> Iterator[Clip | Skipped]:
        kit_name, instruments = read_drumkit(folder / "drumkit.xml")
        archive = KIT_ARCHIVES.get(folder.name, folder.name)
        relative = folder.relative_to(root).as_posix()
        try:
            licence = file_licence(copyright_file, f"drumkits/{archive}.h2drumkit")
        except LookupError:
            yield Skipped(HYDROGEN, relative, "no licence for this kit in debian/copyright")
            return
        seen: set[str] = set()
        for name, layers in instruments:
            label, reason = drum_label(name)
            for file_name, low, high in _pick_layers(layers, _LAYERS[size]):
                original = f"{relative}/{file_name}"
                if reason is not None:
                    yield Skipped(HYDROGEN, original, reason)
                elif file_name in seen:  # one sample shared by several instruments
                    yield Skipped(HYDROGEN, original, "duplicate")
                elif (folder / file_name).name == "emptySample.flac":
                    yield Skipped(HYDROGEN, original, "silent")
                else:
                    seen.add(file_name)
                    attributes = {
                        "instrument": label,
                        "kit": kit_name,
                        "drum_name": name,
                        "pattern": "roll" if re.search(r"\broll\b", name.lower()) else "single hit",
                        "dynamics": _dynamics(low, high),
                    }
                    yield _decoded(
                        folder / file_name,
                        key=f"{HYDROGEN}/{folder.name}/{file_name}",
                        label=label,
                        category="drums",
                        source=HYDROGEN,
                        licence=licence,
                        original_path=original,
                        group=f"{HYDROGEN}:{folder.name}",
                        attributes=attributes,
                    )


def _pick_layers(
    layers: list[tuple[str, float, float]], count: int | None
) -> list[tuple[str, float, float]]:
    """`count` layers (all when None): the loudest first, then evenly spaced softer ones."""
    ordered = sorted(layers, key=lambda layer: (-layer[2], -layer[1], layer[0]))
    if count is None or len(ordered) <= count:
        return ordered
    step = (len(ordered) - 1) / (count - 1) if count > 1 else 0
    return [ordered[round(i * step)] for i in range(count)]


def _decoded(path: Path, **fields: Any) -> Clip | Skipped:
    if not path.is_file():  # named by a drumkit.xml but not shipped
        return Skipped(fields["source"], fields["original_path"], "missing file")
    try:
        audio, rate = decode_audio(path)
    except UndecodableAudio:
        return Skipped(fields["source"], fields["original_path"], "undecodable")
    return Clip(audio=audio, sampling_rate=rate, **fields)


# ---------------------------------------------------------------------------------------------
# lmms-common

LMMS = "lmms-common"
LMMS_SAMPLES_DIR = "usr/share/lmms/samples"

# Reviewed table: "<folder>/<file stem without its trailing number>" (or "<folder>/*") ->
# (label, category, extra attributes) or a skip reason (a plain string). Instrument labels are
# GM program labels where the sample is that instrument, so families and prompts line up.
_INSTRUMENT = "instrument"
_DRUMS = "drums"
LMMS_SAMPLES: dict[str, tuple[str, str, dict[str, Any]] | str] = {
    "drums/bassdrum": ("kick drum", _DRUMS, {}),
    "drums/bassdrum_acoustic": ("kick drum", _DRUMS, {}),
    "drums/kick": ("kick drum", _DRUMS, {}),
    "drums/kick_distorted": ("kick drum", _DRUMS, {}),
    "drums/kick_hard": ("kick drum", _DRUMS, {"dynamics": "loud"}),
    "drums/kick_hardcore": ("kick drum", _DRUMS, {}),
    "drums/kick_hiphop": ("kick drum", _DRUMS, {}),
    "drums/kick_long": ("kick drum", _DRUMS, {}),
    "drums/kick_soft": ("kick drum", _DRUMS, {"dynamics": "soft"}),
    "drums/clap": ("clap", _DRUMS, {}),
    "drums/clav": ("claves", _DRUMS, {}),
    "drums/crash": ("crash cymbal", _DRUMS, {}),
    "drums/hihat_closed": ("closed hi-hat", _DRUMS, {}),
    "drums/hihat_foot_pedal": ("pedal hi-hat", _DRUMS, {}),
    "drums/hihat_opened": ("open hi-hat", _DRUMS, {}),
    "drums/nasty_bass": "cryptic name",
    "drums/nasty_rim": ("side stick", _DRUMS, {}),
    "drums/nasty_snare": ("snare drum", _DRUMS, {}),
    "drums/ride": ("ride cymbal", _DRUMS, {}),
    "drums/rim": ("side stick", _DRUMS, {}),
    "drums/shaker": ("shaker", _DRUMS, {}),
    "drums/sidestick": ("side stick", _DRUMS, {}),
    "drums/snare": ("snare drum", _DRUMS, {}),
    "drums/snare_acoustic": ("snare drum", _DRUMS, {}),
    "drums/snare_electro": ("snare drum", _DRUMS, {}),
    "drums/snare_harsh": ("snare drum", _DRUMS, {}),
    "drums/snare_hiphop": ("snare drum", _DRUMS, {}),
    "drums/snare_muffled": ("snare drum", _DRUMS, {}),
    "drums/snare_rim": ("snare drum", _DRUMS, {}),
    "drums/snare_short": ("snare drum", _DRUMS, {}),
    "drums/tom": ("tom", _DRUMS, {}),
    "drums/tom_hi": ("tom", _DRUMS, {}),
    "drums/tom_low": ("tom", _DRUMS, {}),
    "drums/tom_mid": ("tom", _DRUMS, {}),
    "drums/wood": ("wood block", _DRUMS, {}),
    "drums/zap": "synthetic effect, not a drum",
    "beats/909beat": (GROOVE_LABEL, _DRUMS, {"pattern": "groove", "style": "drum machine beat"}),
    "beats/break": (GROOVE_LABEL, _DRUMS, {"pattern": "groove", "style": "breakbeat"}),
    "beats/electro_beat": (GROOVE_LABEL, _DRUMS, {"pattern": "groove", "style": "electro beat"}),
    "beats/house_loop": (GROOVE_LABEL, _DRUMS, {"pattern": "groove", "style": "house beat"}),
    "beats/jungle": (GROOVE_LABEL, _DRUMS, {"pattern": "groove", "style": "jungle beat"}),
    "beats/rave_hihat": "hi-hat articulation not named",
    "beats/rave_kick": ("kick drum", _DRUMS, {"pattern": "groove"}),
    "beats/rave_snare": ("snare drum", _DRUMS, {"pattern": "groove"}),
    "instruments/bassslap": ("slap bass 1", _INSTRUMENT, {"program": 36}),
    "instruments/cello": ("cello", _INSTRUMENT, {"program": 42}),
    "instruments/church_organ": ("church organ", _INSTRUMENT, {"program": 19}),
    "instruments/e_organ": ("electric organ", _INSTRUMENT, {"family": "organ"}),
    "instruments/e_piano_accord": (
        "electric piano",
        _INSTRUMENT,
        {"family": "piano", "texture": "chord"},
    ),
    "instruments/flute": ("flute", _INSTRUMENT, {"program": 73}),
    "instruments/harpsichord": ("harpsichord", _INSTRUMENT, {"program": 6}),
    "instruments/piano": ("piano", _INSTRUMENT, {"family": "piano"}),
    "instruments/steel_guitar": ("electric guitar", _INSTRUMENT, {"family": "guitar"}),
    "instruments/steel_guitar_heavy_distorted": ("distortion guitar", _INSTRUMENT, {"program": 30}),
    "instruments/steel_guitar_medium_distorted": (
        "overdriven guitar",
        _INSTRUMENT,
        {"program": 29},
    ),
    "instruments/steel_guitar_slight_distorted": (
        "overdriven guitar",
        _INSTRUMENT,
        {"program": 29},
    ),
    "instruments/trumpet": ("trumpet", _INSTRUMENT, {"program": 56}),
    "instruments/violin_double_stop": ("violin", _INSTRUMENT, {"program": 40, "texture": "chord"}),
    "instruments/violin_fingered": ("violin", _INSTRUMENT, {"program": 40}),
    "instruments/violin_pizzicato": (
        "violin",
        _INSTRUMENT,
        {"program": 40, "playing": "pizzicato"},
    ),
    "latin/latin_brass": ("brass section", _INSTRUMENT, {"program": 61}),
    "latin/latin_guitar": ("acoustic guitar", _INSTRUMENT, {"family": "guitar"}),
    "basses/*": ("synth bass", _INSTRUMENT, {"family": "bass"}),
    "bassloops/*": ("synth bass", _INSTRUMENT, {"family": "bass", "texture": "melody"}),
    "stringsnpads/bell_choir": "cryptic name",
    "stringsnpads/chorus": ("choir", _INSTRUMENT, {"family": "ensemble"}),
    "stringsnpads/heaven_strings": ("synth strings", _INSTRUMENT, {"family": "ensemble"}),
    "stringsnpads/orion_string": ("synth strings", _INSTRUMENT, {"family": "ensemble"}),
    "stringsnpads/space_strings": ("synth strings", _INSTRUMENT, {"family": "ensemble"}),
    "stringsnpads/strings": ("string ensemble", _INSTRUMENT, {"program": 48}),
    "stringsnpads/juno_pad": ("synth pad", _INSTRUMENT, {"family": "synth pad"}),
    "stringsnpads/korg_poly6_drone": ("synth pad", _INSTRUMENT, {"family": "synth pad"}),
    "stringsnpads/nord_ambient": ("synth pad", _INSTRUMENT, {"family": "synth pad"}),
    "stringsnpads/rave_choir": ("synth choir", _INSTRUMENT, {"family": "synth pad"}),
    "shapes/*": "single-cycle waveform",
    "waveforms/*": "single-cycle waveform",
    "effects/*": "sound effect, not an instrument or drum sample",
    "misc/*": "sound effect, not an instrument or drum sample",
}


def lmms_entry(relative: str) -> tuple[str, str, dict[str, Any]] | str:
    """The reviewed table's entry for a path under `samples/` ("drums/kick01.ogg"), or a reason."""
    path = PurePosixPath(relative)
    if path.suffix == ".ds":
        return "DrumSynth preset (synthesis parameters, not audio)"
    stem = re.sub(r"\d+$", "", path.stem)
    folder = path.parent.as_posix()
    return LMMS_SAMPLES.get(f"{folder}/{stem}") or LMMS_SAMPLES.get(
        f"{folder}/*", "not in the reviewed table"
    )


@dataclass(frozen=True)
class LmmsSamples:
    """LMMS's instrument and drum samples, labelled by a reviewed table of their names."""

    name: str = LMMS
    packages: tuple[str, ...] = (LMMS,)
    tools: tuple[str, ...] = ()

    def clips(self, unpacked: Mapping[str, Path], size: str) -> Iterator[Clip | Skipped]:
        root = Path(unpacked[LMMS])
        copyright_file = root / "usr/share/doc" / LMMS / "copyright"
        files = sorted(p for p in (root / LMMS_SAMPLES_DIR).rglob("*") if p.is_file())
        for index, path in enumerate(files):
            relative = path.relative_to(root / LMMS_SAMPLES_DIR).as_posix()
            original = f"{LMMS_SAMPLES_DIR}/{relative}"
            entry = lmms_entry(relative)
            if isinstance(entry, str):
                yield Skipped(LMMS, original, entry)
                continue
            if size == "small" and index % 5:
                continue
            label, category, extra = entry
            attributes: dict[str, Any] = {"instrument": label, **extra}
            if "program" in extra:
                attributes["family"] = gm_family(extra["program"])
            if category == _DRUMS:
                attributes.setdefault("pattern", "single hit")
                attributes["kit"] = "LMMS sample library"
            yield _decoded(
                path,
                key=f"{LMMS}/{relative}",
                label=label,
                category=category,
                source=LMMS,
                licence=file_licence(copyright_file, f"data/samples/{relative}"),
                original_path=original,
                group=LMMS,
                attributes=attributes,
            )


SOURCES = (HydrogenDrumkits(), LmmsSamples())
