"""Environmental sounds from Debian's game and education packages, captioned by reviewed names.

One source per package, each reading where the package keeps its sounds:

- `openttd-opensfx`: the samples of `opensfx.cat` (an OpenTTD sample catalogue), named by the
  title OpenSFX gives each one ("Steam train station departure");
- `ufoai-sound`: the Ogg Vorbis members of `base/0snd.pk3` (a zip archive);
- `lincity-ng-data`, `lugaru-data`, `minetest-data`: plain WAV / Ogg files;
- `gcompris-qt-data`: WAV / Ogg files inside its Qt resource files (`rcc/*.rcc`), among them
  farm animals and real recordings of instruments;
- `csound-soundfont`: the General MIDI / GS sound-effect presets of `sf_GMbank.sf2` (rain,
  dog, siren, train...), rendered with fluidsynth: held at a few pitches and lengths, and repeated.

Captions come from `phrases.py`: a sound is kept only where its name says what is heard, and
everything else is yielded as `Skipped` with the reason. Licences come from each package's
`debian/copyright`, matched against the file's path in the upstream tree. The split unit is the
package, and `gcompris-qt-data:<animals|instruments|memory-sound|effects>` within gcompris.

`size`: "default" and "full" keep every usable file ("full" renders more preset variants);
"small" keeps every tenth kept file and one rendering per preset.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from slap_audio.data.debian import phrases
from slap_audio.data.debian.audio_io import SILENCE_DBFS, UndecodableAudio, decode_audio, peak_dbfs
from slap_audio.data.debian.containers import read_openttd_cat, read_rcc
from slap_audio.data.debian.copyright import file_licence
from slap_audio.data.debian.phrases import Phrase, Review
from slap_audio.data.debian.records import Clip, Skipped
from slap_audio.data.debian.soundfonts import (
    RENDER_RATE,
    Note,
    Performance,
    render_performances,
    soundfont_presets,
)

AUDIO_SUFFIXES = (".wav", ".ogg", ".flac", ".opus", ".mp3")
SMALL_STRIDE = 10  # "small" keeps every tenth usable file


@dataclass(frozen=True)
class SoundFile:
    """One sound a package ships, before review: its reviewed name and how to read it."""

    name: str  # what the phrase table matches ("footsteps/grass1.ogg", "Ship horn")
    original_path: str  # path in the package ("...0snd.pk3#sound/footsteps/grass1.ogg")
    upstream_path: str  # path in the upstream source tree, for debian/copyright
    group: str
    read: Callable[[], bytes | Path]  # the file's bytes, or its path


def _copyright(root: Path, package: str) -> Path:
    return root / "usr/share/doc" / package / "copyright"


def _attributes(phrase: Phrase) -> dict:
    """What captions may use: the phrase and tags; an instrument's GM name, family and program."""
    attributes = {"phrase": phrase.phrase, "tags": phrase.tags}
    if phrase.category == "instrument":
        attributes |= {"instrument": phrase.label, "family": phrase.tags[0], "recorded": True}
        if phrase.label in phrases.GM_PROGRAMS:
            attributes["program"] = phrases.GM_PROGRAMS[phrase.label]
    elif phrase.category == "drums":
        attributes |= {"instrument": phrase.label, "recorded": True}
    return attributes


@dataclass(frozen=True)
class PackageSounds:
    """The sound files of one package, kept where its reviewed phrase table says what they are."""

    name: str
    table: tuple[tuple[str, Review], ...]
    list_files: Callable[[Path], list[SoundFile]]
    tools: tuple[str, ...] = ()

    @property
    def packages(self) -> tuple[str, ...]:
        return (self.name,)

    def clips(self, unpacked: Mapping[str, Path], size: str) -> Iterator[Clip | Skipped]:
        root = Path(unpacked[self.name])
        kept = 0
        for sound in self.list_files(root):
            verdict = phrases.review(self.table, sound.name)
            if isinstance(verdict, str):
                yield Skipped(self.name, sound.original_path, verdict)
                continue
            kept += 1
            if size == "small" and (kept - 1) % SMALL_STRIDE:
                continue
            try:
                audio, rate = decode_audio(sound.read())
            except UndecodableAudio:
                yield Skipped(self.name, sound.original_path, "undecodable")
                continue
            yield Clip(
                key=f"{self.name}/{sound.name}",
                audio=audio,
                sampling_rate=rate,
                label=verdict.label,
                category=verdict.category,
                source=self.name,
                licence=file_licence(_copyright(root, self.name), sound.upstream_path),
                original_path=sound.original_path,
                group=sound.group,
                attributes=_attributes(verdict),
            )


def _files_under(root: Path, folder: str, upstream: Callable[[str], str], group: str):
    """Every audio file below `root/folder`, sorted, named by its path relative to `folder`."""
    base = root / folder
    return [
        SoundFile(
            name=(relative := path.relative_to(base).as_posix()),
            original_path=f"{folder}/{relative}",
            upstream_path=upstream(relative),
            group=group,
            read=lambda path=path: path,
        )
        for path in sorted(base.rglob("*"))
        if path.suffix.lower() in AUDIO_SUFFIXES
    ]


# ---------------------------------------------------------------------------------------------
# The packages.

OPENSFX_CAT = "usr/share/games/openttd/baseset/opensfx/opensfx.cat"
UFOAI_PK3 = "usr/share/games/ufoai/base/0snd.pk3"
GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc"
# gcompris resource folders that form their own split group; the rest is "effects".
GCOMPRIS_GROUPS = {
    "explore_farm_animals": "animals",
    "instruments": "instruments",
    "melody": "instruments",
    "memory-sound": "memory-sound",
}


def opensfx_title(name: str) -> str:
    """The title of an OpenSFX sample: the quoted start of its catalogue name."""
    match = re.match(r'\s*"([^"]+)"', name)
    return match.group(1) if match else name


def _openttd_files(root: Path) -> list[SoundFile]:
    samples = read_openttd_cat((root / OPENSFX_CAT).read_bytes())
    return [
        SoundFile(
            name=opensfx_title(name),
            original_path=f"{OPENSFX_CAT}#{index}",
            upstream_path=f"src/wav/{index}.wav",
            group="openttd-opensfx",
            read=lambda wav=wav: wav,
        )
        for index, (name, wav) in enumerate(samples)
    ]


def _ufoai_files(root: Path) -> list[SoundFile]:
    with zipfile.ZipFile(root / UFOAI_PK3) as archive:
        members = {
            name: archive.read(name)
            for name in sorted(archive.namelist())
            if name.startswith("sound/") and name.lower().endswith(AUDIO_SUFFIXES)
        }
    return [
        SoundFile(
            name=member.removeprefix("sound/"),
            original_path=f"{UFOAI_PK3}#{member}",
            upstream_path=f"base/{member}",
            group="ufoai-sound",
            read=lambda data=data: data,
        )
        for member, data in members.items()
    ]


def _gcompris_files(root: Path) -> list[SoundFile]:
    files = []
    for rcc in sorted((root / GCOMPRIS_RCC).glob("*.rcc")):
        for path, data in read_rcc(rcc.read_bytes()):
            if not path.lower().endswith(AUDIO_SUFFIXES):
                continue
            name = path.removeprefix("gcompris/src/")
            activity = name.split("/")[1] if name.startswith("activities/") else "core"
            files.append(
                SoundFile(
                    name=name,
                    original_path=f"{GCOMPRIS_RCC}/{rcc.name}#{path}",
                    upstream_path=f"src/{name}",
                    group=f"gcompris-qt-data:{GCOMPRIS_GROUPS.get(activity, 'effects')}",
                    read=lambda data=data: data,
                )
            )
    return files


def _lincity_files(root: Path) -> list[SoundFile]:
    return _files_under(
        root, "usr/share/games/lincity-ng", lambda rel: f"data/{rel}", "lincity-ng-data"
    )


def _lugaru_files(root: Path) -> list[SoundFile]:
    return _files_under(
        root, "usr/share/games/lugaru/Sounds", lambda rel: f"Data/Sounds/{rel}", "lugaru-data"
    )


def _minetest_files(root: Path) -> list[SoundFile]:
    return _files_under(
        root,
        "usr/share/games/minetest/games",
        lambda rel: rel.replace("minetest_game/", "mtg/", 1),
        "minetest-data",
    )


# ---------------------------------------------------------------------------------------------
# csound-soundfont: sound-effect presets rendered with fluidsynth.

CSOUND_SF2 = "usr/share/sounds/sf2/sf_GMbank.sf2"
CSOUND_UPSTREAM = "samples/sf_GMbank.sf2"
# The renderings of each preset, in size order: its own pitch (note 60) held, repeated (steps,
# barks, shots), lower and shorter, higher and longer; "full" adds more pitches and lengths.
PRESET_VARIANTS = (
    (Note(0.0, 2.0, 60, 100),),
    tuple(Note(0.5 * i, 0.45, 60, 96) for i in range(4)),
    (Note(0.0, 1.0, 55, 112),),
    (Note(0.0, 3.0, 65, 90),),
    (Note(0.0, 2.0, 48, 100),),
    tuple(Note(0.8 * i, 0.7, 62, 84) for i in range(3)),
    (Note(0.0, 1.5, 72, 100),),
    (Note(0.0, 6.0, 60, 70),),
)
VARIANTS_PER_SIZE = {"small": 1, "default": 4, "full": 8}


@dataclass(frozen=True)
class EffectPresets:
    """The sound-effect presets of csound's GM/GS soundfont, each rendered a few ways."""

    name: str = "csound-soundfont"
    table: tuple[tuple[str, Review], ...] = phrases.CSOUND
    tools: tuple[str, ...] = ("fluidsynth",)

    @property
    def packages(self) -> tuple[str, ...]:
        return (self.name,)

    def clips(self, unpacked: Mapping[str, Path], size: str) -> Iterator[Clip | Skipped]:
        root = Path(unpacked[self.name])
        soundfont = root / CSOUND_SF2
        licence = file_licence(_copyright(root, self.name), CSOUND_UPSTREAM)
        performances, presets = [], soundfont_presets(soundfont)
        for (bank, program), preset in sorted(presets.items()):
            if bank >= 128 or program < 120:  # effects: GM programs 120-127 and their GS banks
                continue
            verdict = phrases.review(self.table, f"{bank}:{program}")
            original = f"{CSOUND_SF2}#bank={bank},program={program} ({preset})"
            if isinstance(verdict, str):
                yield Skipped(self.name, original, verdict)
                continue
            for index, notes in enumerate(PRESET_VARIANTS[: VARIANTS_PER_SIZE[size]]):
                velocity = max(note.velocity for note in notes)
                performances.append(
                    Performance(
                        key=f"bank-{bank}-program-{program}/variant-{index}",
                        bank=bank,
                        program=program,
                        notes=notes,
                        label=verdict.label,
                        category=verdict.category,
                        attributes={**_attributes(verdict), "preset": preset, "velocity": velocity},
                    )
                )
        for p, audio in zip(
            performances, render_performances(performances, soundfont), strict=True
        ):
            original = f"rendered:{CSOUND_SF2}#bank={p.bank},program={p.program}:{p.key}"
            if peak_dbfs(audio) < SILENCE_DBFS:
                yield Skipped(self.name, original, "silent")
                continue
            yield Clip(
                key=f"{self.name}/{p.key}",
                audio=audio,
                sampling_rate=RENDER_RATE,
                label=p.label,
                category=p.category,
                source=self.name,
                licence=licence,
                original_path=original,
                group=self.name,
                attributes=p.attributes,
            )


SOURCES = (
    PackageSounds("openttd-opensfx", phrases.OPENTTD, _openttd_files),
    PackageSounds("ufoai-sound", phrases.UFOAI, _ufoai_files),
    PackageSounds("lincity-ng-data", phrases.LINCITY, _lincity_files),
    PackageSounds("lugaru-data", phrases.LUGARU, _lugaru_files),
    PackageSounds("minetest-data", phrases.MINETEST, _minetest_files),
    PackageSounds("gcompris-qt-data", phrases.GCOMPRIS, _gcompris_files),
    EffectPresets(),
)
