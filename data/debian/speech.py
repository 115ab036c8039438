"""Speech sources: recorded prompts, words and letters, and synthesized sentences.

Recorded speech (the packages are downloaded and unpacked, never installed):
- `asterisk-core-sounds-{en,es,fr,it,ru}-wav`: telephone prompts by one professional voice per
  package. The voice folder names language, region, gender and speaker (`en_US_f_Allison`,
  `it_IT_m_Carlo`), and debian/copyright credits the recording; Debian 12's packages ship no
  transcript file, so transcripts come from a `core-sounds-<lang>.txt` ("name: text") when a
  package has one, else from what a file name states (digits, letters, NATO words, a few
  reviewed English prompts). Beeps, tones, monkeys and `silence/` are skipped.
- `klettres-data`: letters and syllables read in 20 languages, `sounds.xml` maps each file to
  its letter or syllable (the transcript); one (unnamed) speaker per language folder.
- `ktuberling-data`: the "potato guy" game names each piece aloud in 25 languages; the
  `.soundtheme` index maps files to the piece's English name (its meaning; the transcript
  only for English).

Synthesized speech (tools run here, their voice data's licence per clip): `espeak-ng`
(languages x voice variants), `flite`'s built-in voices and the installed `festival` voices,
each reading the reviewed sentences of `sentences.py`. Groups are one per voice
("espeak-ng:fr+f3", "flite:slt", "festival:kal_diphone") so held-out voices still have their
language in training through other voices.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audio_io import UndecodableAudio, decode_audio
from .records import SIZES, Clip, Skipped
from .sentences import SENTENCES

LANGUAGE_NAMES = {
    "ar": "Arabic", "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German",
    "el": "Greek", "en": "English", "es": "Spanish", "fi": "Finnish", "fr": "French",
    "ga": "Irish", "gl": "Galician", "he": "Hebrew", "hu": "Hungarian", "id": "Indonesian",
    "it": "Italian", "lt": "Lithuanian", "ml": "Malayalam", "nb": "Norwegian",
    "nds": "Low German", "nl": "Dutch", "nn": "Norwegian", "pl": "Polish", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sl": "Slovenian", "sr": "Serbian", "sv": "Swedish",
    "tn": "Tswana", "uk": "Ukrainian", "wa": "Walloon",
}  # fmt: skip


def language_of(locale: str) -> tuple[str, str]:
    """(English name, base code) of a locale as packages spell it: "pt_BR", "sr@latin", "en-us"."""
    code = re.split(r"[_@-]", locale, maxsplit=1)[0].lower()
    if code not in LANGUAGE_NAMES:
        raise KeyError(f"no English name for language {locale!r}: add it to LANGUAGE_NAMES")
    return LANGUAGE_NAMES[code], code


def speech_attributes(
    locale: str,
    *,
    gender: str | None,
    speaker: str | None,
    transcript: str | None,
    engine: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The attribute keys every speech clip carries (see `records.py`), plus `extra`."""
    language, code = language_of(locale)
    return {
        "language": language,
        "language_code": code,
        "locale": locale,
        "gender": gender,
        "speaker": speaker,
        "transcript": transcript,
        "synthesized": engine is not None,
        "engine": engine,
        **extra,
    }


def speech_clip(
    key: str, path: str | Path, *, source: str, licence: str, original_path: str, group: str,
    attributes: dict[str, Any],
) -> Clip | Skipped:  # fmt: skip
    """Decode `path` into a speech Clip labelled "<language> speech" (Skipped if empty or undecodable)."""
    if Path(path).stat().st_size <= 44:  # a bare RIFF/WAVE header (asterisk's ru `is.wav`)
        return Skipped(source, original_path, "empty file")
    try:
        audio, rate = decode_audio(path)
    except UndecodableAudio:
        return Skipped(source, original_path, "undecodable")
    label = f"{attributes['language']} speech"
    return Clip(
        key, audio, rate, label, "speech", source, licence, original_path, group, attributes
    )


def evenly_spaced(items: Sequence, count: int | None) -> list:
    """`count` items spread evenly over `items` (all of them for None): a deterministic subset."""
    if count is None or count >= len(items):
        return list(items)
    return [items[(index * len(items)) // count] for index in range(count)]


@dataclass(frozen=True)
class Budget:
    """How much of each speech source one corpus size takes (None: everything)."""

    asterisk_per_package: int | None
    klettres_per_language: int | None
    ktuberling_per_language: int | None
    espeak_variants: tuple[str, ...]
    sentences: int | None


_ALL_ESPEAK_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "m1", "m2", "m3", "m4", "m5", "m6", "m7")
BUDGETS = {
    "small": Budget(12, 4, 3, ("f1", "m3"), 3),
    "default": Budget(80, 12, 8, ("f1", "f2", "f3", "m1", "m2", "m3"), None),
    "full": Budget(None, None, None, _ALL_ESPEAK_VARIANTS, None),
}
assert set(BUDGETS) == set(SIZES)


# --- Recorded speech --------------------------------------------------------------------------

ASTERISK_LICENCES = {  # from each package's debian/copyright ("Files: *", "fr-*", "ru-*", "it-*")
    "en": "CC-BY-SA-3.0", "es": "CC-BY-SA-3.0", "fr": "CC-BY-SA-3.0",
    "it": "CC-BY-3.0", "ru": "CC-BY-3.0",
}  # fmt: skip
_ASTERISK_VOICE = re.compile(
    r"(?P<lang>[a-z]{2})_(?P<region>[A-Z]{2})_(?P<gender>[fm])_(?P<name>\w+)"
)
_ASTERISK_NOT_SPEECH = {
    "beep": "beep", "beeperr": "beep", "ascending-2tone": "tone", "descending-2tone": "tone",
    "tt-monkeys": "not speech (monkeys)",
}  # fmt: skip
_NATO = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey x-ray yankee zulu"
).split()
_ENGLISH_WORDS = {  # English prompts whose file name is their wording (ambiguous ones left out)
    "hello": "hello", "hello-world": "hello world", "goodbye": "goodbye",
    "vm-goodbye": "goodbye", "one-moment-please": "one moment please",
    "please-try-again": "please try again", "im-sorry": "I'm sorry",
    "digits/hundred": "hundred", "digits/thousand": "thousand", "digits/million": "million",
    "digits/billion": "billion", "digits/minus": "minus", "digits/today": "today",
    "digits/tomorrow": "tomorrow", "digits/yesterday": "yesterday", "digits/oclock": "o'clock",
    "digits/star": "star", "digits/pound": "pound", "digits/dollars": "dollars",
    **{f"digits/day-{i}": day for i, day in enumerate(
        "Sunday Monday Tuesday Wednesday Thursday Friday Saturday".split())},
    **{f"digits/mon-{i}": month for i, month in enumerate(
        "January February March April May June July August September October November December".split())},
}  # fmt: skip


def parse_transcripts(text: str) -> dict[str, str]:
    """Asterisk's `core-sounds-<lang>.txt`: "name: words" per line ("digits/1: one"); ";" comments."""
    transcripts = {}
    for line in text.splitlines():
        match = re.match(r"^\s*([\w./-]+)\s*:\s*(.*\S)\s*$", line)
        if match and not line.lstrip().startswith((";", "#")):
            transcripts[match.group(1).removesuffix(".wav")] = match.group(2)
    return transcripts


def asterisk_transcript(
    name: str, language_code: str, transcripts: Mapping[str, str]
) -> str | None:
    """The words of prompt `name` ("digits/7", "letters/b", "hello-world"), None when unknown.

    The package's transcript file first; else numbers and letters in every language (what a
    file name says is language-neutral), NATO words and the reviewed prompts in English."""
    if name in transcripts:
        return transcripts[name]
    folder, _, stem = name.rpartition("/")
    if folder == "digits" and stem.isdigit():
        return stem
    if folder == "letters" and re.fullmatch(r"[a-z]", stem):
        return stem.upper()
    if language_code != "en":
        return None
    if folder == "phonetic" and re.fullmatch(r"[a-z]_p", stem):
        return _NATO[ord(stem[0]) - ord("a")]
    return _ENGLISH_WORDS.get(name)


@dataclass(frozen=True)
class AsteriskPrompts:
    """Asterisk's telephone prompts: one recorded voice per language package (a group each)."""

    name: str = "asterisk-core-sounds"
    packages: tuple[str, ...] = tuple(
        f"asterisk-core-sounds-{code}-wav" for code in ASTERISK_LICENCES
    )
    tools: tuple[str, ...] = ()

    def clips(self, unpacked: Mapping[str, Path], size: str) -> Iterator[Clip | Skipped]:
        budget = BUDGETS[size].asterisk_per_package
        for package in self.packages:
            root = Path(unpacked[package])
            transcripts = {}
            for transcript_file in sorted(root.rglob("core-sounds-*.txt")):
                transcripts.update(parse_transcripts(transcript_file.read_text(errors="replace")))
            for voice_dir in sorted((root / "usr/share/asterisk/sounds").iterdir()):
                yield from self._voice(package, root, voice_dir, transcripts, budget)

    def _voice(self, package, root, voice_dir, transcripts, budget) -> Iterator[Clip | Skipped]:
        voice = _ASTERISK_VOICE.fullmatch(voice_dir.name)
        if voice is None:
            raise ValueError(f"{package}: unexpected voice folder {voice_dir.name!r}")
        code = voice["lang"]
        speech = []
        for path in sorted(voice_dir.rglob("*.wav")):
            name = path.relative_to(voice_dir).with_suffix("").as_posix()
            original_path = path.relative_to(root).as_posix()
            if name.startswith("silence/"):
                yield Skipped(package, original_path, "silence")
            elif name in _ASTERISK_NOT_SPEECH:
                yield Skipped(package, original_path, _ASTERISK_NOT_SPEECH[name])
            else:
                speech.append((name, path, original_path))
        for name, path, original_path in evenly_spaced(speech, budget):
            attributes = speech_attributes(
                f"{code}_{voice['region']}",
                gender={"f": "female", "m": "male"}[voice["gender"]],
                speaker=voice["name"],
                transcript=asterisk_transcript(name, code, transcripts),
                prompt=name,
            )
            yield speech_clip(
                f"asterisk/{code}/{name}", path, source=package, licence=ASTERISK_LICENCES[code],
                original_path=original_path, group=package, attributes=attributes,
            )  # fmt: skip


@dataclass(frozen=True)
class KLettres:
    """KLettres: letters and syllables read aloud, one speaker per language (a group each)."""

    name: str = "klettres"
    packages: tuple[str, ...] = ("klettres-data",)
    tools: tuple[str, ...] = ()
    licence: str = "GPL-2+"  # debian/copyright, "Files: *"

    def clips(self, unpacked: Mapping[str, Path], size: str) -> Iterator[Clip | Skipped]:
        root = Path(unpacked["klettres-data"])
        data = root / "usr/share/klettres"
        for index in sorted(data.glob("*/sounds.xml")):
            language = ElementTree.parse(index).getroot().find("language")
            locale = language.get("code")
            entries = [
                (kind, sound.get("name"), sound.get("file"))
                for kind in ("alphabet", "syllables")
                for sound in language.iterfind(f"{kind}/sound")
            ]
            kept = []
            for kind, text, file in entries:
                original_path = (data / file).relative_to(root).as_posix()
                if not (data / file).is_file():
                    yield Skipped("klettres-data", original_path, "missing file")
                else:
                    kept.append((kind, text, file, original_path))
            for kind, text, file, original_path in evenly_spaced(
                kept, BUDGETS[size].klettres_per_language
            ):
                attributes = speech_attributes(
                    locale, gender=None, speaker=None, transcript=text,
                    unit="letter" if kind == "alphabet" else "syllable",
                )  # fmt: skip
                yield speech_clip(
                    f"klettres/{Path(file).with_suffix('').as_posix()}", data / file,
                    source="klettres-data", licence=self.licence, original_path=original_path,
                    group=f"klettres-data:{locale}", attributes=attributes,
                )  # fmt: skip


_KTUBERLING_THEMES = re.compile(
    r"^(egypt|moon|pizzeria|tv|xmas|butterflies|robot_workshop)_|^tux-|-tux$"
)
_KTUBERLING_WORDS = {  # the index's names where they are not plain English words
    "fallingstar": "falling star", "palmtree": "palm tree", "fireengine": "fire engine",
    "brocolli": "broccoli", "sphynx": "sphinx", "whitch": "witch", "sherif": "sheriff",
    "dowe": "dove", "letter love": "love letter",
}  # fmt: skip


def ktuberling_meaning(name: str) -> str:
    """The English meaning of a KTuberling piece: "egypt_palmtree" -> "palm tree", "kid-tux" -> "kid"."""
    word = re.sub(r"\d+$", "", _KTUBERLING_THEMES.sub("", name)).replace("_", " ").replace("-", " ")
    return _KTUBERLING_WORDS.get(word, word)


@dataclass(frozen=True)
class KTuberling:
    """KTuberling: a speaker per language naming the game's pieces (a group each)."""

    name: str = "ktuberling"
    packages: tuple[str, ...] = ("ktuberling-data",)
    tools: tuple[str, ...] = ()
    licence: str = "GPL-2+"  # debian/copyright, "Files: *"

    def clips(self, unpacked: Mapping[str, Path], size: str) -> Iterator[Clip | Skipped]:
        root = Path(unpacked["ktuberling-data"])
        sounds = root / "usr/share/ktuberling/sounds"
        for index in sorted(sounds.glob("*.soundtheme")):
            language = ElementTree.parse(index).getroot()
            if language.tag != "language":
                language = language.find("language")
            locale = language.get("code")
            kept = []
            for sound in language.iterfind("sound"):
                file = sound.get("file")
                original_path = (sounds / file).relative_to(root).as_posix()
                if "@" in locale:  # sr@latin, sr@ijekavian...: the same recordings as sr
                    yield Skipped("ktuberling-data", original_path, "duplicate (script variant)")
                elif not (sounds / file).is_file():
                    yield Skipped("ktuberling-data", original_path, "missing file")
                else:
                    kept.append((sound.get("name"), file, original_path))
            kept.sort(key=lambda entry: entry[1])
            for name, file, original_path in evenly_spaced(
                kept, BUDGETS[size].ktuberling_per_language
            ):
                meaning = ktuberling_meaning(name)
                attributes = speech_attributes(
                    locale, gender=None, speaker=None,
                    transcript=meaning if locale == "en" else None, meaning=meaning,
                )  # fmt: skip
                yield speech_clip(
                    f"ktuberling/{Path(file).with_suffix('').as_posix()}", sounds / file,
                    source="ktuberling-data", licence=self.licence, original_path=original_path,
                    group=f"ktuberling-data:{locale}", attributes=attributes,
                )  # fmt: skip


# --- Synthesized speech -----------------------------------------------------------------------


@dataclass(frozen=True)
class Voice:
    """One synthesizer voice: how the engine names it, its language, gender and voice data."""

    engine: str
    name: str
    locale: str  # the sentences' language ("en-us": English sentences)
    gender: str | None
    package: str  # the Debian package holding the voice data
    licence: str  # that package's debian/copyright

    @property
    def group(self) -> str:
        return f"{self.engine}:{self.name}"


def _sentences(size: str) -> list:
    return evenly_spaced(SENTENCES, BUDGETS[size].sentences)


def _synthesized_clip(voice: Voice, sentence, path: Path) -> Clip | Skipped:
    original_path = f"rendered:{voice.engine}:{voice.name}:{sentence.topic}"
    _, code = language_of(voice.locale)
    attributes = speech_attributes(
        voice.locale, gender=voice.gender, speaker=None, transcript=sentence.text(code),
        engine=voice.engine, voice=voice.name, meaning=sentence.english.rstrip(".?!").lower(),
    )  # fmt: skip
    if not path.is_file() or path.stat().st_size <= 44:
        return Skipped(voice.package, original_path, "synthesis failed")
    return speech_clip(
        f"{voice.engine}/{voice.name}/{sentence.topic}", path, source=voice.package,
        licence=voice.licence, original_path=original_path, group=voice.group, attributes=attributes,
    )  # fmt: skip


# espeak-ng: every variant file in espeak-ng-data/voices/!v declares its gender ("f3": "gender female").
ESPEAK_LANGUAGES = ("en", "en-us", "es", "fr", "it", "ru", "de", "pt", "nl", "pl", "sv")


def espeak_voices(size: str) -> list[Voice]:
    """espeak-ng's language x variant voices for `size` ("fr+f3": French, female variant 3)."""
    return [
        Voice(
            "espeak-ng",
            f"{locale}+{variant}",
            locale,
            "female" if variant.startswith("f") else "male",
            "espeak-ng-data",
            "GPL-3+",
        )  # fmt: skip
        for locale in ESPEAK_LANGUAGES
        for variant in BUDGETS[size].espeak_variants
    ]


@dataclass(frozen=True)
class EspeakNg:
    """espeak-ng's formant voices reading the reviewed sentences, a group per language+variant."""

    name: str = "espeak-ng"
    packages: tuple[str, ...] = ()
    tools: tuple[str, ...] = ("espeak-ng",)

    def clips(self, unpacked: Mapping[str, Path], size: str) -> Iterator[Clip | Skipped]:
        with tempfile.TemporaryDirectory() as scratch:
            for voice in espeak_voices(size):
                for sentence in _sentences(size):
                    path = Path(scratch) / "speech.wav"
                    path.unlink(missing_ok=True)
                    _, code = language_of(voice.locale)
                    subprocess.run(
                        ["espeak-ng", "-v", voice.name, "-w", str(path), sentence.text(code)],
                        capture_output=True, check=False,
                    )  # fmt: skip
                    yield _synthesized_clip(voice, sentence, path)


# flite's built-in voices (`flite -lv`): the CMU ARCTIC speakers awb (Scottish English male),
# rms (US male), slt (US female) and the kal diphone voice (US male, festvox-kallpc16k's
# description). `kal` (8 kHz) duplicates `kal16`; `awb_time` only speaks clock times.
FLITE_VOICES = tuple(
    Voice("flite", name, "en-us", gender, "flite", "LicenseRef-Flite")
    for name, gender in (("kal16", "male"), ("awb", "male"), ("rms", "male"), ("slt", "female"))
)


@dataclass(frozen=True)
class Flite:
    """flite's built-in English voices reading the reviewed sentences, a group per voice."""

    name: str = "flite"
    packages: tuple[str, ...] = ()
    tools: tuple[str, ...] = ("flite",)

    def clips(self, unpacked: Mapping[str, Path], size: str) -> Iterator[Clip | Skipped]:
        with tempfile.TemporaryDirectory() as scratch:
            for voice in FLITE_VOICES:
                for sentence in _sentences(size):
                    path = Path(scratch) / "speech.wav"
                    path.unlink(missing_ok=True)
                    subprocess.run(
                        ["flite", "-voice", voice.name, "-t", sentence.english, "-o", str(path)],
                        capture_output=True, check=False,
                    )  # fmt: skip
                    yield _synthesized_clip(voice, sentence, path)


# festival voices as Debian packages them; gender from each package's description.
FESTIVAL_VOICES = (
    Voice("festival", "kal_diphone", "en-us", "male", "festvox-kallpc16k", "LicenseRef-Festvox"),
    Voice("festival", "ked_diphone", "en-us", "male", "festvox-kdlpc16k", "LicenseRef-Festvox"),
    Voice("festival", "cmu_us_slt_arctic_hts", "en-us", "female", "festvox-us-slt-hts", "EST-2003"),
    Voice("festival", "lp_diphone", "it", "female", "festvox-italp16k", "GPL-2+"),
    Voice("festival", "pc_diphone", "it", "male", "festvox-itapc16k", "GPL-2+"),
    Voice("festival", "msu_ru_nsh_clunits", "ru", "male", "festvox-ru", "BSD-like"),
)
FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices")
_FESTIVAL_ENCODING = {"it": "latin-1"}  # the Italian voices read Latin-1 text; the others UTF-8


def festival_script(voice: Voice, texts: Sequence[str], paths: Sequence[Path]) -> str:
    """A festival (Scheme) script that selects `voice` and saves each text as a RIFF WAV."""
    lines = [f"(voice_{voice.name})"]
    for text, path in zip(texts, paths, strict=True):
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(
            f'(utt.save.wave (utt.synth (Utterance Text "{quoted}")) "{path}" (quote riff))'
        )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Festival:
    """The installed festival voices reading the reviewed sentences, a group per voice.

    One festival process per voice renders all its sentences; a voice that is not installed
    is recorded as skipped, so the corpus says which voices it lacks."""

    name: str = "festival"
    packages: tuple[str, ...] = ()
    tools: tuple[str, ...] = ("festival",)

    def clips(self, unpacked: Mapping[str, Path], size: str) -> Iterator[Clip | Skipped]:
        with tempfile.TemporaryDirectory() as scratch:
            for voice in FESTIVAL_VOICES:
                sentences = _sentences(size)
                if not any(FESTIVAL_VOICE_DIR.glob(f"*/{voice.name}")):
                    for sentence in sentences:
                        original_path = f"rendered:festival:{voice.name}:{sentence.topic}"
                        yield Skipped(voice.package, original_path, "voice not installed")
                    continue
                _, code = language_of(voice.locale)
                paths = [
                    Path(scratch) / f"{voice.name}-{index}.wav" for index in range(len(sentences))
                ]
                script = Path(scratch) / "render.scm"
                texts = [sentence.text(code) for sentence in sentences]
                script.write_bytes(
                    festival_script(voice, texts, paths).encode(
                        _FESTIVAL_ENCODING.get(code, "utf-8")
                    )
                )
                subprocess.run(["festival", "-b", str(script)], capture_output=True, check=False)
                for sentence, path in zip(sentences, paths, strict=True):
                    yield _synthesized_clip(voice, sentence, path)


SOURCES = (AsteriskPrompts(), KLettres(), KTuberling(), EspeakNg(), Flite(), Festival())
