"""Captions for the Debian corpus: LAION-CLAP's keyword-to-caption idea with our own templates.

A clip comes with a label and what its source knows (GM family, register, texture, tempo and
dynamics of an instrument clip; the kit and pattern of a drum clip; language, speaker and words
of speech; the reviewed phrase of an environmental sound). Each category has templates that turn
those keywords into sentences; a template is used only when the attributes it names are known,
so every caption is true of its clip. `captions_for` returns 4-6 of them, the most complete
first, the others drawn deterministically from the clip's key.

    captions_for("violin", "instrument", {"texture": "melody", "tempo_bpm": 70, "pitch_range": "high"}, "k")
    # ['A violin playing a slow melody in a high register.', ...]
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

MIN_CAPTIONS, MAX_CAPTIONS = 4, 6
MAX_QUOTED_WORDS = 12  # longer transcripts are described, not quoted

FAMILY_NOUNS = {
    "piano": "keyboard instrument",
    "chromatic percussion": "tuned percussion instrument",
    "organ": "organ",
    "guitar": "guitar",
    "bass": "bass instrument",
    "strings": "string instrument",
    "ensemble": "ensemble",
    "brass": "brass instrument",
    "reed": "reed instrument",
    "pipe": "wind instrument",
    "synth lead": "synthesizer lead",
    "synth pad": "synthesizer pad",
    "synth effects": "synthesizer effect",
    "ethnic": "folk instrument",
    "percussive": "percussive instrument",
    "sound effects": "sound effect",
}
REGISTERS = {
    "low": "in a low register",
    "middle": "in a middle register",
    "high": "in a high register",
}
PITCH_WORDS = {"low": "low-pitched", "middle": "mid-pitched", "high": "high-pitched"}
DYNAMICS_ADVERBS = {"soft": "softly", "medium": "at medium volume", "loud": "loudly"}
DRUM_PATTERNS = {"single hit": "hit", "roll": "roll", "groove": "groove"}
_NO_AN = ("uk", "uni", "use", "eu", "one")  # vowel letters read as a consonant sound
_NOTE_NAME = re.compile(r"[A-G][#b♯♭]?\d*( |$)")


def article(noun: str) -> str:
    """`noun` with "a" or "an" in front ("an organ", "a ukulele", "an F major chord")."""
    lower = noun.lower()
    if _NOTE_NAME.match(noun):  # a note name reads as its letter: "an F", "a G"
        return f"{'an' if noun[0] in 'AEF' else 'a'} {noun}"
    vowel = lower[:1] in "aeiou" and not lower.startswith(_NO_AN)
    return f"{'an' if vowel or lower.startswith('hour') else 'a'} {noun}"


def tempo_word(bpm: float) -> str:
    """ "slow" (< 80 bpm), "moderate" (< 130 bpm) or "fast"."""
    return "slow" if bpm < 80 else "moderate" if bpm < 130 else "fast"


def _instrument(label: str, a: Mapping[str, Any]) -> list[str | None]:
    name = a.get("instrument") or label
    texture, register = a.get("texture"), REGISTERS.get(a.get("pitch_range"))
    bpm, dynamics = a.get("tempo_bpm"), DYNAMICS_ADVERBS.get(a.get("dynamics"))
    family = FAMILY_NOUNS.get(a.get("family"))
    pitches, chord, scale = a.get("pitch_names") or [], a.get("chord"), a.get("scale")
    speed = f"{tempo_word(bpm)} " if bpm and texture in ("melody", "arpeggio") else ""
    played = {
        "single note": f"a single {pitches[0]} note" if len(pitches) == 1 else "a single note",
        "melody": f"a {speed}melody",
        "chord": article(f"{chord} chord") if chord else "a chord",
        "arpeggio": article(f"{speed}{chord} arpeggio" if chord else f"{speed}arpeggio"),
    }.get(texture)
    return [
        played and register and f"{article(name)} playing {played} {register}",
        played and f"{article(name)} playing {played}",
        played and dynamics and f"{played} played {dynamics} on {article(name)}",
        family and family != name and f"the sound of {article(name)}, {article(family)}",
        register
        and texture == "single note"
        and f"{article(PITCH_WORDS[a['pitch_range']] + ' ' + name)} note",
        bpm
        and texture in ("melody", "arpeggio")
        and f"{article(name)} {texture} at {round(bpm)} beats per minute",
        scale and texture == "melody" and f"a melody in {scale} played on {article(name)}",
        texture == "chord"
        and len(pitches) > 1
        and f"{article(name)} chord of {', '.join(pitches[:-1])} and {pitches[-1]}",
        f"the sound of {article(name)}",
        f"{article(name)} can be heard",
        f"a recording of {article(name)}",
        f"a musical instrument: {article(name)}",
    ]


def _drums(label: str, a: Mapping[str, Any]) -> list[str | None]:
    name = a.get("instrument") or label
    pattern = a.get("pattern") or "single hit"
    noun = DRUM_PATTERNS.get(pattern, "hit")
    dynamics, bpm, style, kit = a.get("dynamics"), a.get("tempo_bpm"), a.get("style"), a.get("kit")
    kit = kit and (kit if kit.lower().endswith("kit") else f"{kit} kit")
    whole_kit = name == "drum kit"
    return [
        style and f"{article(name)} playing {article(style)}",
        f"{article(name)} {noun}",
        dynamics and f"{article(dynamics + ' ' + name)} {noun}",
        pattern == "single hit" and f"a single {name} hit",
        pattern != "single hit"
        and bpm
        and f"{article(name)} {noun} at {round(bpm)} beats per minute",
        style and bpm and f"{article(style)} at {round(bpm)} beats per minute",
        kit and not whole_kit and f"{article(name)} from the {kit}",
        kit and whole_kit and style and f"{article(style)} played on the {kit}",
        f"the sound of {article(name)} being {'played' if pattern == 'groove' else 'struck'}",
        f"a percussion sound: {article(name)}",
        not whole_kit and f"{article(name)} from a drum kit",
        f"a recording of {article(name)}",
    ]


def _quoted(transcript: str | None) -> str | None:
    words = (transcript or "").strip().rstrip(".!?").split()
    if not words or len(words) > MAX_QUOTED_WORDS:
        return None
    return "'" + " ".join(words) + "'"


def _speech(label: str, a: Mapping[str, Any]) -> list[str | None]:
    language = a.get("language")
    in_language = f" in {language}" if language else ""
    person = {"female": "woman", "male": "man"}.get(a.get("gender"), "person")
    voice = {"female": "female voice", "male": "male voice"}.get(a.get("gender"), "voice")
    words = _quoted(a.get("transcript"))
    meaning = _quoted(a.get("meaning")) if language != "English" else None
    if a.get("synthesized"):
        speaker = f"a synthesized {voice}"
        who = [
            f"a speech synthesizer speaking{in_language}",
            f"computer-generated speech{in_language}",
        ]
    else:
        speaker = article(person)
        who = [
            f"{article(person)} speaking{in_language}",
            f"a recording of {article(person)} talking",
        ]
    return [
        words and f"{speaker} saying {words}{in_language}",
        words and f"the words {words} spoken{in_language}",
        meaning and language and f"{language} for {meaning}, spoken by {speaker}",
        *who,
        language and f"{language} speech by {speaker}",
        language and f"{article(language)} sentence spoken by {speaker}",
        f"{speaker} speaking",
        f"someone talking{in_language}",
        f"the sound of {label}",
    ]


def _environmental(label: str, a: Mapping[str, Any]) -> list[str | None]:
    phrase = a.get("phrase") or label
    tags = [tag for tag in a.get("tags") or [] if tag not in phrase]
    return [
        phrase,
        f"the sound of {phrase}",
        f"{phrase} can be heard",
        f"a recording of {phrase}",
        tags and f"{phrase}; {', '.join(tags[:3])}",
        f"a sound effect of {phrase}",
        f"an audio clip of {phrase}",
    ]


TEMPLATES: dict[str, Callable[[str, Mapping[str, Any]], list[str | None]]] = {
    "instrument": _instrument,
    "drums": _drums,
    "speech": _speech,
    "environmental": _environmental,
}


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def captions_for(label: str, category: str, attributes: Mapping[str, Any], key: str) -> list[str]:
    """4-6 distinct, true captions of one clip: the most complete first, then a draw seeded by `key`."""
    if category not in TEMPLATES:
        raise ValueError(f"unknown category {category!r}; expected one of {tuple(TEMPLATES)}")
    candidates = list(
        dict.fromkeys(_sentence(c) for c in TEMPLATES[category](label, attributes) if c)
    )
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    count = min(len(candidates), int(rng.integers(MIN_CAPTIONS, MAX_CAPTIONS + 1)))
    rest = rng.permutation(len(candidates) - 1)[: count - 1] + 1
    return [candidates[0], *(candidates[i] for i in sorted(rest))]
