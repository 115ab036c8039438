"""The speech sources of the Debian corpus, on tiny package trees written here (no network).

The synthesizer tests render with the installed espeak-ng / flite / festival (`./run` installs
them) and are skipped, saying which tool is missing, where one is absent.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from slap_audio.data.debian import speech
from slap_audio.data.debian.records import CATEGORIES, Clip, Skipped
from slap_audio.data.debian.sentences import SENTENCES
from slap_audio.data.debian.speech import (
    AsteriskPrompts,
    EspeakNg,
    Festival,
    Flite,
    KLettres,
    KTuberling,
    asterisk_transcript,
    evenly_spaced,
    festival_script,
    ktuberling_meaning,
    language_of,
    parse_transcripts,
)


def _wav(path: Path, seconds: float = 0.3, frequency: float = 220.0, rate: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    time = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * frequency * time), rate)


def _split(items) -> tuple[list[Clip], list[Skipped]]:
    items = list(items)
    assert all(isinstance(item, Clip | Skipped) for item in items)
    return [i for i in items if isinstance(i, Clip)], [i for i in items if isinstance(i, Skipped)]


def _fingerprint(clips: list[Clip]) -> list[tuple[str, str]]:
    return [(clip.key, hashlib.sha256(clip.audio.tobytes()).hexdigest()) for clip in clips]


def _check_clip_fields(clip: Clip) -> None:
    assert clip.category == "speech" and clip.category in CATEGORIES
    assert clip.audio.dtype == np.float32 and clip.audio.size > 0
    assert np.abs(clip.audio).max() <= 1.0 and clip.sampling_rate > 0
    assert clip.label == f"{clip.attributes['language']} speech"
    assert clip.group and not any(ch.isspace() for ch in clip.group)
    for key in ("language", "language_code", "gender", "speaker", "transcript", "synthesized"):
        assert key in clip.attributes
    assert clip.attributes["gender"] in ("female", "male", None)


# --- Mappings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en_US", ("English", "en")),
        ("pt_BR", ("Portuguese", "pt")),
        ("sr@latin", ("Serbian", "sr")),
        ("en-us", ("English", "en")),
        ("nds", ("Low German", "nds")),
    ],
)
def test_language_of_maps_locales_to_english_names(locale, expected):
    assert language_of(locale) == expected


def test_language_of_rejects_an_unknown_language():
    with pytest.raises(KeyError, match="LANGUAGE_NAMES"):
        language_of("xx_YY")


def test_parse_transcripts_reads_name_colon_text_and_ignores_comments():
    text = "; Asterisk core sounds\n\nhello-world: Hello world.\ndigits/7.wav: seven\n# note: no\n"
    assert parse_transcripts(text) == {"hello-world": "Hello world.", "digits/7": "seven"}


def test_asterisk_transcript_from_names_and_file():
    assert asterisk_transcript("digits/7", "ru", {}) == "7"
    assert asterisk_transcript("letters/b", "fr", {}) == "B"
    assert asterisk_transcript("phonetic/q_p", "en", {}) == "quebec"
    assert asterisk_transcript("phonetic/q_p", "es", {}) is None  # Spanish spelling words differ
    assert asterisk_transcript("digits/day-0", "en", {}) == "Sunday"
    assert asterisk_transcript("vm-intro", "en", {}) is None
    assert asterisk_transcript("vm-intro", "en", {"vm-intro": "Leave a message."}) == (
        "Leave a message."
    )


def test_ktuberling_meaning_strips_themes_and_fixes_words():
    assert ktuberling_meaning("egypt_palmtree") == "palm tree"
    assert ktuberling_meaning("pizzeria_olive3") == "olive"
    assert ktuberling_meaning("kid-tux") == "kid"
    assert ktuberling_meaning("robot_workshop_wheel") == "wheel"
    assert ktuberling_meaning("tv_breakdown_lorry") == "breakdown lorry"


def test_evenly_spaced_is_a_deterministic_spread_subset():
    items = list(range(10))
    assert evenly_spaced(items, 3) == [0, 3, 6]
    assert evenly_spaced(items, None) == items and evenly_spaced(items, 50) == items


def test_every_sentence_has_every_synthesized_language():
    assert len({sentence.topic for sentence in SENTENCES}) == len(SENTENCES)
    for sentence in SENTENCES:
        for locale in speech.ESPEAK_LANGUAGES:
            assert sentence.text(language_of(locale)[1]).strip()
    assert SENTENCES[0].text("es") == "Buenos días."


def test_festival_script_quotes_text():
    script = festival_script(speech.FESTIVAL_VOICES[0], ['say "hi"\\'], [Path("/tmp/out.wav")])
    assert script.splitlines()[0] == "(voice_kal_diphone)"
    assert '"say \\"hi\\"\\\\"' in script and '"/tmp/out.wav" (quote riff)' in script


# --- Recorded speech on tiny package trees ----------------------------------------------------


def _asterisk_tree(tmp_path: Path) -> dict[str, Path]:
    en = tmp_path / "asterisk-core-sounds-en-wav"
    voice = en / "usr/share/asterisk/sounds/en_US_f_Allison"
    for name in ("digits/7", "letters/b", "hello-world", "vm-intro", "beep", "silence/1"):
        _wav(voice / f"{name}.wav")
    doc = en / "usr/share/doc/asterisk-core-sounds-en-wav"
    doc.mkdir(parents=True)
    (doc / "core-sounds-en.txt").write_text("vm-intro: Leave a message after the tone.\n")
    it = tmp_path / "asterisk-core-sounds-it-wav"
    _wav(it / "usr/share/asterisk/sounds/it_IT_m_Carlo/digits/2.wav")
    return {"asterisk-core-sounds-en-wav": en, "asterisk-core-sounds-it-wav": it}


def test_asterisk_prompts_parse_voice_transcripts_and_skips(tmp_path):
    source = AsteriskPrompts(
        packages=("asterisk-core-sounds-en-wav", "asterisk-core-sounds-it-wav")
    )
    clips, skipped = _split(source.clips(_asterisk_tree(tmp_path), "full"))
    by_key = {clip.key: clip for clip in clips}
    assert sorted(by_key) == [
        "asterisk/en/digits/7",
        "asterisk/en/hello-world",
        "asterisk/en/letters/b",
        "asterisk/en/vm-intro",
        "asterisk/it/digits/2",
    ]
    for clip in clips:
        _check_clip_fields(clip)
    english = by_key["asterisk/en/vm-intro"]
    assert english.attributes["transcript"] == "Leave a message after the tone."
    assert english.attributes["gender"] == "female" and english.attributes["speaker"] == "Allison"
    assert english.attributes["locale"] == "en_US" and english.attributes["synthesized"] is False
    assert english.label == "English speech" and english.licence == "CC-BY-SA-3.0"
    assert english.group == "asterisk-core-sounds-en-wav" == english.source
    assert english.original_path == "usr/share/asterisk/sounds/en_US_f_Allison/vm-intro.wav"
    assert by_key["asterisk/en/hello-world"].attributes["transcript"] == "hello world"
    assert by_key["asterisk/en/letters/b"].attributes["transcript"] == "B"
    italian = by_key["asterisk/it/digits/2"]
    assert italian.attributes["gender"] == "male" and italian.attributes["speaker"] == "Carlo"
    assert italian.label == "Italian speech" and italian.licence == "CC-BY-3.0"
    assert italian.attributes["transcript"] == "2"
    assert {(s.original_path.rsplit("/", 1)[-1], s.reason) for s in skipped} == {
        ("beep.wav", "beep"),
        ("1.wav", "silence"),
    }
    small, _ = _split(source.clips(_asterisk_tree(tmp_path / "again"), "small"))
    assert _fingerprint(small) == _fingerprint(clips)  # under the budget: everything, same audio


def test_klettres_reads_letters_and_syllables_from_sounds_xml(tmp_path):
    root = tmp_path / "klettres-data"
    data = root / "usr/share/klettres"
    (data / "fr").mkdir(parents=True)
    (data / "fr/sounds.xml").write_text(
        '<klettres><language code="fr"><menuitem><label>&amp;French</label></menuitem>'
        '<alphabet><sound name="A" file="fr/alpha/a-0.ogg"/>'
        '<sound name="B" file="fr/alpha/a-1.ogg"/></alphabet>'
        '<syllables><sound name="LA" file="fr/syllab/ad-0.wav"/></syllables>'
        "</language></klettres>"
    )
    _wav(data / "fr/alpha/a-0.ogg")  # soundfile writes Ogg Vorbis from the suffix
    _wav(data / "fr/syllab/ad-0.wav", frequency=330.0)
    clips, skipped = _split(KLettres().clips({"klettres-data": root}, "full"))
    assert [(c.key, c.attributes["transcript"], c.attributes["unit"]) for c in clips] == [
        ("klettres/fr/alpha/a-0", "A", "letter"),
        ("klettres/fr/syllab/ad-0", "LA", "syllable"),
    ]
    for clip in clips:
        _check_clip_fields(clip)
        assert clip.group == "klettres-data:fr" and clip.label == "French speech"
        assert clip.licence == "GPL-2+" and clip.attributes["gender"] is None
    assert [(s.original_path, s.reason) for s in skipped] == [
        ("usr/share/klettres/fr/alpha/a-1.ogg", "missing file")
    ]


def test_ktuberling_reads_the_soundtheme_index(tmp_path):
    root = tmp_path / "ktuberling-data"
    sounds = root / "usr/share/ktuberling/sounds"
    sounds.mkdir(parents=True)
    (sounds / "en.soundtheme").write_text(
        '<language code="en"><sound name="egypt_palmtree" file="en/egypt_palmtree.ogg"/>'
        '<sound name="nose" file="en/nose.ogg"/></language>'
    )
    (sounds / "es.soundtheme").write_text(
        '<language code="es"><sound name="nose" file="es/nariz.wav"/></language>'
    )
    (sounds / "sr@latin.soundtheme").write_text(
        '<language code="sr@latin"><sound name="eye" file="sr@latin/oko.ogg"/></language>'
    )
    _wav(sounds / "en/egypt_palmtree.ogg")
    _wav(sounds / "en/nose.ogg", frequency=300.0)
    _wav(sounds / "es/nariz.wav", frequency=400.0)
    clips, skipped = _split(KTuberling().clips({"ktuberling-data": root}, "full"))
    assert [(c.key, c.attributes["meaning"], c.attributes["transcript"]) for c in clips] == [
        ("ktuberling/en/egypt_palmtree", "palm tree", "palm tree"),
        ("ktuberling/en/nose", "nose", "nose"),
        ("ktuberling/es/nariz", "nose", None),  # the Spanish word itself is not in the index
    ]
    assert [c.group for c in clips] == ["ktuberling-data:en"] * 2 + ["ktuberling-data:es"]
    assert [c.label for c in clips] == ["English speech"] * 2 + ["Spanish speech"]
    assert [(s.original_path, s.reason) for s in skipped] == [
        ("usr/share/ktuberling/sounds/sr@latin/oko.ogg", "duplicate (script variant)")
    ]


# --- Synthesized speech -----------------------------------------------------------------------


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (./run installs it: apt-get install {tool})")


def test_espeak_ng_renders_the_sentences_deterministically():
    _require("espeak-ng")
    clips, skipped = _split(EspeakNg().clips({}, "small"))
    assert not skipped
    voices = speech.espeak_voices("small")
    assert len(clips) == len(voices) * 3 and len({c.key for c in clips}) == len(clips)
    french = next(c for c in clips if c.group == "espeak-ng:fr+f1")
    _check_clip_fields(french)
    assert french.key == f"espeak-ng/fr+f1/{SENTENCES[0].topic}"
    assert french.attributes["transcript"] == "Bonjour." and french.label == "French speech"
    assert french.attributes["gender"] == "female" and french.attributes["synthesized"] is True
    assert french.attributes["engine"] == "espeak-ng" and french.attributes["voice"] == "fr+f1"
    assert french.source == "espeak-ng-data" and french.licence == "GPL-3+"
    assert french.original_path == "rendered:espeak-ng:fr+f1:good-morning"
    for clip in clips:
        seconds = len(clip.audio) / clip.sampling_rate
        assert 0.3 < seconds < 10 and np.abs(clip.audio).max() > 0.05, clip.key
    male = next(c for c in clips if c.group == "espeak-ng:fr+m3" and c.key.endswith("good-morning"))
    assert male.attributes["gender"] == "male"
    assert not np.array_equal(male.audio[: len(french.audio)], french.audio[: len(male.audio)])
    again, _ = _split(EspeakNg().clips({}, "small"))
    assert _fingerprint(again) == _fingerprint(clips)


def test_flite_renders_its_built_in_voices():
    _require("flite")
    clips, skipped = _split(Flite().clips({}, "small"))
    assert not skipped and {c.group for c in clips} == {v.group for v in speech.FLITE_VOICES}
    slt = next(c for c in clips if c.group == "flite:slt")
    _check_clip_fields(slt)
    assert slt.attributes["gender"] == "female" and slt.attributes["transcript"] == "Good morning."
    assert np.abs(slt.audio).max() > 0.05
    assert _fingerprint(_split(Flite().clips({}, "small"))[0]) == _fingerprint(clips)


def test_festival_renders_installed_voices_and_skips_missing_ones(tmp_path, monkeypatch):
    _require("festival")
    installed = [
        v for v in speech.FESTIVAL_VOICES if any(speech.FESTIVAL_VOICE_DIR.glob(f"*/{v.name}"))
    ]
    if not installed:
        pytest.skip("no festival voice installed (./run installs festvox-kallpc16k)")
    clips, skipped = _split(Festival().clips({}, "small"))
    assert {c.group for c in clips} == {v.group for v in installed}
    assert len(skipped) == 3 * (len(speech.FESTIVAL_VOICES) - len(installed))
    for clip in clips:
        _check_clip_fields(clip)
        assert len(clip.audio) / clip.sampling_rate > 0.3 and np.abs(clip.audio).max() > 0.05
    assert _fingerprint(_split(Festival().clips({}, "small"))[0]) == _fingerprint(clips)
    monkeypatch.setattr(speech, "FESTIVAL_VOICE_DIR", tmp_path)  # a machine without voices
    clips, skipped = _split(Festival().clips({}, "small"))
    assert not clips and {s.reason for s in skipped} == {"voice not installed"}
    assert len(skipped) == 3 * len(speech.FESTIVAL_VOICES)


def test_festival_italian_voices_read_accented_sentences(monkeypatch):
    _require("festival")
    italian = [
        v
        for v in speech.FESTIVAL_VOICES
        if v.locale == "it" and any(speech.FESTIVAL_VOICE_DIR.glob(f"*/{v.name}"))
    ]
    if not italian:
        pytest.skip("no Italian festival voice installed (festvox-italp16k, festvox-itapc16k)")
    monkeypatch.setattr(speech, "FESTIVAL_VOICES", tuple(italian[:1]))
    clips, skipped = _split(Festival().clips({}, "full"))
    assert not skipped and len(clips) == len(SENTENCES)  # "caffè", "Dov'è": Latin-1 for festival
    coffee = next(c for c in clips if c.key.endswith("/coffee-please"))
    assert coffee.attributes["transcript"] == "Vorrei una tazza di caffè, per favore."
    assert len(coffee.audio) / coffee.sampling_rate > 1.5
