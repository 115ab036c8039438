"""Caption writer for the built-in procedural data: paraphrased English descriptions of a clip.

A clip plan (see `builtin_data.py`) is a sequence of segments, each a main event plus an optional
simultaneous companion, optionally over a background bed, with silences. Every caption mentions
every event with what tells it apart — pitch or note, count, rate, direction, loudness, length —
and the order of the segments; captions differ in sentence template and in synonyms. Because
the same nouns recur across clips ("beeps", "a hum"), retrieval has to use order, pitch, count
and loudness, not keywords alone.

All randomness comes from the generator passed in, so captions are as reproducible as audio.
"""

from __future__ import annotations

import numpy as np

from slap_audio.data.sound_events import EVENT_KINDS, melody_pitches, midi_to_hz, note_name

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
NUMBER_WORDS = (*_UNITS, "twenty", *(f"twenty-{u}" for u in _UNITS[1:10]), "thirty")  # 0..30
LEVEL_ADJECTIVES = {
    "quiet": ("quiet", "faint", "soft"),
    "moderate": ("moderately loud", "medium-volume"),
    "loud": ("loud", "strong", "powerful"),
}
LEVEL_SUFFIXES = {
    "quiet": ("at low volume", "played quietly"),
    "moderate": ("at moderate volume",),
    "loud": ("at high volume", "played loudly"),
}


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def number_word(n: int) -> str:
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)


def times_word(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{number_word(n)} times")


def with_article(phrase: str) -> str:
    """'a' or 'an' by the sound of the first word (note letters A, E, F read as 'ay', 'ee', 'ef')."""
    first = phrase.split(" ", 1)[0]
    vowel = first[0].lower() in "aeiou" or (
        first[0] in "AEF" and (len(first) == 1 or not first[1].islower())
    )
    return ("an " if vowel else "a ") + phrase


def pitch_word(hz: float, rng: np.random.Generator) -> str:
    if hz < 120:
        return _pick(rng, ("very low", "deep"))
    if hz < 300:
        return _pick(rng, ("low", "low-pitched"))
    if hz < 900:
        return _pick(rng, ("mid-pitched", "medium-pitched"))
    if hz < 2200:
        return _pick(rng, ("high", "high-pitched"))
    return _pick(rng, ("very high", "shrill"))


def _length(ev: dict, rng: np.random.Generator) -> tuple[list[str], str]:
    """Length adjectives and suffix for a continuous event: brief (< 0.6 s) or long (>= 6 s)."""
    d = ev["duration"]
    if d < 0.6:
        return [_pick(rng, ("brief", "short", "quick"))], ""
    if d >= 6.0:
        if rng.random() < 0.3:
            return [], f"lasting about {number_word(int(round(d)))} seconds"
        return [_pick(rng, ("long", "sustained", "lengthy"))], ""
    if d >= 1.5 and rng.random() < 0.25:
        return [], f"lasting about {number_word(int(round(d)))} seconds"
    return [], ""


def _compose(rng, ev, adjectives, head, suffix="", article=True) -> str:
    """[article] [level] adjectives head [suffix] [level suffix]; quiet/loud are always said."""
    level, words, tail = ev["level"], [], []
    if level != "moderate" or rng.random() < 0.25:
        if rng.random() < 0.7:
            words.append(_pick(rng, LEVEL_ADJECTIVES[level]))
        else:
            tail.append(_pick(rng, LEVEL_SUFFIXES[level]))
    phrase = " ".join(w for w in [*words, *adjectives, head, suffix, *tail] if w)
    return with_article(phrase) if article else phrase


def _counted(rng, ev, count, singular, plural, adjectives=()) -> str:
    """'three loud short beeps' / 'a loud short beep repeated three times' / 'a single beep'."""
    adjectives = list(adjectives)
    if count == 1:
        phrase = _compose(rng, ev, adjectives, singular, article=False)
        return _pick(rng, (f"a single {phrase}", f"one {phrase}", with_article(phrase)))
    if rng.random() < 0.3:
        return _compose(rng, ev, adjectives, singular, f"repeated {number_word(count)} times")
    return f"{number_word(count)} " + _compose(rng, ev, adjectives, plural, article=False)


# ---------------------------------------------------------------------------------------------
# one noun phrase per event kind


def _hum(ev, rng):
    lengths, suffix = _length(ev, rng)
    note = note_name(ev["params"]["midi"])
    suffix = suffix or _pick(rng, ("", f"at {note}", f"around {note}"))
    return _compose(
        rng,
        ev,
        [*lengths, _pick(rng, ("low", "deep"))],
        _pick(rng, ("hum", "droning hum", "electrical hum", "drone")),
        suffix,
    )


def _tone(ev, rng):
    lengths, suffix = _length(ev, rng)
    midi = ev["params"]["midi"]
    head = _pick(rng, ("tone", "pure tone", "sine tone", "steady tone"))
    form = rng.integers(3)
    if form == 0:
        return _compose(
            rng, ev, [*lengths, pitch_word(midi_to_hz(midi), rng), note_name(midi)], head, suffix
        )
    if form == 1:
        return _compose(
            rng, ev, lengths, head, " ".join(w for w in (f"at {note_name(midi)}", suffix) if w)
        )
    return _compose(
        rng,
        ev,
        [*lengths, pitch_word(midi_to_hz(midi), rng)],
        head,
        " ".join(w for w in (f"on the note {note_name(midi)}", suffix) if w),
    )


def _whistle(ev, rng):
    lengths, suffix = _length(ev, rng)
    return _compose(
        rng,
        ev,
        [*lengths, _pick(rng, ("high", "shrill", "high-pitched"))],
        _pick(rng, ("whistle", "whistling sound", "whistle with a slight wobble")),
        suffix,
    )


def _chord(ev, rng):
    lengths, suffix = _length(ev, rng)
    p = ev["params"]
    letter = note_name(p["root"])[:-1]
    register = "low" if p["root"] < 53 else "high" if p["root"] > 67 else ""
    head = _pick(
        rng,
        (
            f"{letter} {p['quality']} chord",
            f"{letter} {p['quality']} triad",
            f"{p['quality']} chord rooted on {letter}",
        ),
    )
    return _compose(rng, ev, [*lengths, _pick(rng, ("", register))], head, suffix)


def _noise(names):
    def phrase(ev, rng):
        lengths, suffix = _length(ev, rng)
        head, mass = _pick(rng, names)
        return _compose(rng, ev, lengths, head, suffix, article=not mass)

    return phrase


def _chirp(direction: str):
    def phrase(ev, rng):
        p = ev["params"]
        speed = (
            "quick" if p["chirp_duration"] < 0.6 else "slow" if p["chirp_duration"] > 2.0 else ""
        )
        up = direction == "up"
        if p["count"] == 1 and rng.random() < 0.4:
            span = "from low to high" if up else "from high to low"
            return _compose(rng, ev, [speed], "tone sweeping " + ("up" if up else "down"), span)
        word = _pick(rng, ("rising", "upward") if up else ("falling", "downward"))
        head = _pick(rng, (("chirp", "chirps"), ("sweep", "sweeps")))
        return _counted(rng, ev, p["count"], head[0], head[1], [speed, word])

    return phrase


def _clicks(ev, rng):
    p = ev["params"]
    if p["mode"] == "count":
        sharp = _pick(rng, ("sharp", "crisp", ""))
        return _counted(rng, ev, p["count"], "click", "clicks", [sharp])
    rate = p["rate"]
    if rate < 2.5:
        head = _pick(rng, ("slow ticking", "clock-like ticking", "slow clicking"))
    elif rate < 10:
        head = _pick(rng, ("steady clicking", "regular ticking", "steady ticking"))
    else:
        head = _pick(rng, ("rapid clicking", "fast clicking", "rapid ticking"))
    lengths, suffix = _length(ev, rng)
    return _compose(rng, ev, lengths, head, suffix, article=False)


def _beeps(ev, rng):
    p = ev["params"]
    length = "short" if p["beep_duration"] < 0.15 else "long" if p["beep_duration"] > 0.3 else ""
    adjectives = [length, pitch_word(midi_to_hz(p["midi"]), rng), _pick(rng, ("", "electronic"))]
    return _counted(rng, ev, p["count"], "beep", "beeps", adjectives)


def _siren(ev, rng):
    lengths, suffix = _length(ev, rng)
    if ev["params"]["mode"] == "wail":
        head = _pick(
            rng, ("wailing siren", "siren rising and falling", "siren wailing up and down")
        )
    else:
        head = _pick(
            rng, ("two-tone siren", "hi-lo siren", "siren alternating between two pitches")
        )
    return _compose(rng, ev, lengths, head, suffix)


def _tremolo(ev, rng):
    p = ev["params"]
    lengths, suffix = _length(ev, rng)
    speed = "slowly" if p["rate"] < 4 else "rapidly" if p["rate"] > 8 else ""
    pitch = pitch_word(midi_to_hz(p["midi"]), rng)
    form = rng.integers(3)
    if form == 0:
        return _compose(
            rng,
            ev,
            [*lengths, pitch],
            "tone " + " ".join(w for w in (speed, "pulsing in volume") if w),
            suffix,
        )
    if form == 1:
        return _compose(
            rng,
            ev,
            [*lengths, pitch, "tremolo"],
            "tone",
            suffix
            or ("with a slow pulse" if speed == "slowly" else "with a fast pulse" if speed else ""),
        )
    return _compose(
        rng, ev, [*lengths, " ".join(w for w in (speed, "throbbing") if w), pitch], "tone", suffix
    )


def _vibrato(ev, rng):
    p = ev["params"]
    lengths, suffix = _length(ev, rng)
    width = "wide" if p["depth"] > 0.035 else "gentle"
    pitch = pitch_word(midi_to_hz(p["midi"]), rng)
    if rng.random() < 0.5:
        return _compose(
            rng, ev, [*lengths, pitch], "tone", suffix or f"with {with_article(width)} vibrato"
        )
    return _compose(
        rng, ev, [*lengths, pitch, _pick(rng, ("wavering", "wobbling"))], "tone", suffix
    )


def _bell(ev, rng):
    p = ev["params"]
    pitch = pitch_word(midi_to_hz(p["midi"]), rng)
    if rng.random() < 0.5:
        return _compose(rng, ev, [pitch], "bell", f"ringing {times_word(p['strikes'])}")
    return _counted(
        rng,
        ev,
        p["strikes"],
        _pick(rng, ("bell strike", "bell chime")),
        _pick(rng, ("bell strikes", "bell chimes")),
        [pitch],
    )


def _drum(ev, rng):
    p = ev["params"]
    if rng.random() < 0.3:
        return _compose(
            rng, ev, [_pick(rng, ("deep", "low", ""))], "drum", f"hit {times_word(p['count'])}"
        )
    head = _pick(
        rng, (("drum thump", "drum thumps"), ("drum beat", "drum beats"), ("thump", "thumps"))
    )
    return _counted(rng, ev, p["count"], head[0], head[1], [_pick(rng, ("deep", "low", ""))])


def _rain(ev, rng):
    density = ev["params"]["density"]
    lengths, suffix = _length(ev, rng)
    if density < 120:
        head, mass = _pick(
            rng, (("light rain", True), ("drizzle", False), ("gentle patter of rain", False))
        )
    elif density < 300:
        head, mass = _pick(
            rng, (("rain", True), ("rainfall", True), ("steady patter of rain", False))
        )
    else:
        head, mass = _pick(
            rng, (("heavy rain", True), ("downpour", False), ("heavy rainfall", True))
        )
    return _compose(rng, ev, lengths, head, suffix, article=not mass)


def _wind(ev, rng):
    lengths, suffix = _length(ev, rng)
    high = ev["params"]["centre_hz"] > 600
    head = _pick(
        rng,
        ("howling wind", "whistling wind")
        if high
        else ("gusting wind", "blowing wind", "rushing wind"),
    )
    return _compose(rng, ev, lengths, head, suffix, article=False)


def _buzz(ev, rng):
    lengths, suffix = _length(ev, rng)
    wave = ev["params"]["wave"]
    head = _pick(
        rng,
        (
            f"{wave} buzz",
            "harsh buzz" if wave == "sawtooth" else "hollow buzz",
            f"buzzing {wave} wave",
        ),
    )
    return _compose(
        rng, ev, [*lengths, pitch_word(midi_to_hz(ev["params"]["midi"]), rng)], head, suffix
    )


def _engine(ev, rng):
    lengths, suffix = _length(ev, rng)
    if ev["params"]["mode"] == "revving":
        head = _pick(rng, ("engine revving up", "motor speeding up", "engine revving"))
    else:
        head = _pick(rng, ("idling engine", "engine running steadily", "rumbling motor"))
    return _compose(rng, ev, lengths, head, suffix)


def _heartbeat(ev, rng):
    bpm = ev["params"]["bpm"]
    speed = "slow" if bpm < 70 else "fast" if bpm > 105 else ""
    lengths, suffix = _length(ev, rng)
    if rng.random() < 0.3 and speed:
        return _compose(
            rng, ev, [], "heart beating " + ("slowly" if speed == "slow" else "quickly"), suffix
        )
    return _compose(
        rng, ev, [*lengths, speed], _pick(rng, ("heartbeat", "pulsing heartbeat")), suffix
    )


def _phone(ev, rng):
    p = ev["params"]
    style = "old-fashioned" if p["style"] == "classic" else "electronic"
    if rng.random() < 0.5:
        return _compose(
            rng,
            ev,
            [style],
            _pick(rng, ("telephone", "phone")),
            f"ringing {times_word(p['rings'])}",
        )
    return _counted(rng, ev, p["rings"], "phone ring", "phone rings", [style])


def _trill(ev, rng):
    lengths, suffix = _length(ev, rng)
    return _compose(
        rng,
        ev,
        [
            *lengths,
            _pick(rng, ("rapid", "fast", "")),
            _pick(rng, ("high", "bird-like", "twittering")),
        ],
        _pick(rng, ("trill", "warbling trill")),
        suffix,
    )


def _melody(ev, rng):
    p = ev["params"]
    count = number_word(p["notes"])
    first = note_name(melody_pitches(p)[0])
    if p["contour"] == "arch":
        head = _pick(
            rng,
            (
                f"{count}-note melody that rises and then falls",
                f"{count}-note tune going up and back down",
            ),
        )
        return _compose(rng, ev, [], head)
    direction = _pick(
        rng, ("rising", "ascending") if p["contour"] == "rising" else ("falling", "descending")
    )
    if rng.random() < 0.5:
        return _compose(
            rng,
            ev,
            [direction, f"{count}-note"],
            _pick(rng, ("melody", "tune")),
            _pick(rng, ("", f"starting on {first}")),
        )
    going = "going up" if p["contour"] == "rising" else "going down"
    return _compose(rng, ev, [], f"melody of {count} notes {going}")


PHRASES = {
    "hum": _hum,
    "tone": _tone,
    "whistle": _whistle,
    "chord": _chord,
    "white_noise": _noise([("white noise", True), ("hiss", False), ("static-like hiss", False)]),
    "pink_noise": _noise(
        [("pink noise", True), ("rushing noise", False), ("waterfall-like rush", False)]
    ),
    "brown_noise": _noise(
        [("brown noise", True), ("deep rumbling noise", False), ("low rumble", False)]
    ),
    "chirp_up": _chirp("up"),
    "chirp_down": _chirp("down"),
    "clicks": _clicks,
    "beeps": _beeps,
    "siren": _siren,
    "tremolo": _tremolo,
    "vibrato": _vibrato,
    "bell": _bell,
    "drum": _drum,
    "rain": _rain,
    "wind": _wind,
    "buzz": _buzz,
    "engine": _engine,
    "heartbeat": _heartbeat,
    "phone": _phone,
    "trill": _trill,
    "melody": _melody,
}
assert set(PHRASES) == set(EVENT_KINDS), "every event kind needs a phrase writer"


def describe_event(ev: dict, rng: np.random.Generator) -> str:
    """One noun phrase for an event dict (`kind`, `level`, `duration`, `params`)."""
    return PHRASES[ev["kind"]](ev, rng)


# ---------------------------------------------------------------------------------------------
# sentences

# Each sequence template: (opening, connector, connector before the last item, closing); a
# connector is (plain, after a pause). "{}" is the first item's noun phrase, "{be}" agrees with it.
SEQUENCE_TEMPLATES = (
    ("{}", (", then ", ", then, after a pause, "), (", then ", ", then, after a pause, "), ""),
    (
        "{}",
        (", followed by ", ", followed after a short silence by "),
        (", and then ", ", and then, after a pause, "),
        "",
    ),
    (
        "First {}",
        (", then ", ", then, after a pause, "),
        (", and finally ", ", and finally, after a pause, "),
        "",
    ),
    (
        "{} {be} heard first",
        (", then ", ", then, after a silence, "),
        (", then ", ", then, after a silence, "),
        "",
    ),
    (
        "The clip starts with {}",
        (", continues with ", ", pauses, then continues with "),
        (" and ends with ", ", pauses and ends with "),
        "",
    ),
    ("{}", ("; after that, ", "; after a pause, "), ("; after that, ", "; after a pause, "), ""),
    (
        "There {be} {}",
        (", and then ", ", and after a pause "),
        (", and then ", ", and after a pause "),
        "",
    ),
    (
        "We hear {}",
        (" and then ", ", a pause, and then "),
        (" and then ", ", a pause, and then "),
        "",
    ),
)
SINGLE_TEMPLATES = (
    "{}",
    "{} can be heard",
    "There {be} {}",
    "A recording of {}",
    "The sound of {}",
    "{} {be} heard",
    "This clip contains {}",
    "We hear {}",
)
COMPANION_TEMPLATES = (
    "{} together with {}",
    "{} along with {}",
    "{} accompanied by {}",
    "{} at the same time as {}",
)
BED_SUFFIXES = (
    ", over {}",
    ", with {} in the background",
    ", while {} plays throughout",
    ", all over a background of {}",
    "; {} continues underneath",
)
OPENING_SILENCES = ("After a moment of silence, ", "After a short silence, ", "Following a pause, ")
CLOSING_SILENCES = (", then silence", ", followed by silence", ", and then it goes quiet")


def is_plural(phrase: str) -> bool:
    """Noun phrases are plural exactly when they start with a count of two or more."""
    return phrase.split(" ", 1)[0] in NUMBER_WORDS[2:]


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _sentence(plan: dict, template: int, rng: np.random.Generator) -> str:
    items = []
    for segment in plan["segments"]:
        phrase = describe_event(segment["main"], rng)
        if segment["companion"] is not None:
            phrase = _pick(rng, COMPANION_TEMPLATES).format(
                phrase, describe_event(segment["companion"], rng)
            )
        items.append(phrase)
    be = "are" if is_plural(items[0]) else "is"
    if len(items) == 1:
        text = SINGLE_TEMPLATES[template % len(SINGLE_TEMPLATES)].format(items[0], be=be)
    else:
        opening, middle, last, closing = SEQUENCE_TEMPLATES[template % len(SEQUENCE_TEMPLATES)]
        text = opening.format(items[0], be=be)
        for i, item in enumerate(items[1:], start=1):
            connector = last if i == len(items) - 1 else middle
            text += connector[int(plan["segments"][i]["pause_before"])] + item
        text += closing
    if plan["bed"] is not None:
        text += _pick(rng, BED_SUFFIXES).format(describe_event(plan["bed"], rng))
    if plan["silence_after"]:
        text += _pick(rng, CLOSING_SILENCES)
    if plan["silence_before"]:
        text = (
            _pick(rng, OPENING_SILENCES) + text[:1].lower() + text[1:]
        )  # no item starts with a name
    return _capitalise(text) + "."


def write_captions(plan: dict, rng: np.random.Generator, num_captions: int = 5) -> list[str]:
    """`num_captions` distinct paraphrases of a clip plan, each from a different template."""
    count = len(SINGLE_TEMPLATES) if len(plan["segments"]) == 1 else len(SEQUENCE_TEMPLATES)
    order = rng.permutation(count)
    captions: list[str] = []
    attempt = 0
    while len(captions) < num_captions and attempt < 20 * num_captions:
        caption = _sentence(plan, int(order[attempt % count]), rng)
        if caption not in captions:
            captions.append(caption)
        attempt += 1
    return captions
