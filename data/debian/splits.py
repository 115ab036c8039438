"""The train/test split of the Debian corpus, by source group, from a reviewed table.

Every clip names its `group`: the package it comes from, or `<package>:<sub>` for a soundfont,
a drum kit, a voice or a speaker. A group lies wholly in one split, so the test split holds
soundfonts, kits, voices, speakers and packages that training never heard: a test score measures
generalisation to new sources, not memory of a recording. The table below lists the test groups
(shell patterns) with the reason each was chosen; every other group is training data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

SPLITS = ("train", "test")

# pattern → why it is held out. A pattern matches a group exactly, with its `:<sub>` suffix
# ("pkg" matches "pkg:x"), or as a shell pattern.
TEST_GROUPS: dict[str, str] = {
    # instruments and drums
    "musescore-general-soundfont-small": "the second soundfont, every GM program and its drum kit: "
    "other samples of the same instruments than fluid-soundfont-gm's (train)",
    "hydrogen-drumkits:ColomboAcousticDrumkit": "an acoustic Hydrogen kit (11 other kits: train; --size small: 1 of its 3)",
    "hydrogen-drumkits:HardElectro1": "an electronic Hydrogen kit",
    "hydrogen-drumkits:The Black Pearl 1.0": "a second acoustic Hydrogen kit",
    # recorded speech: one speaker of each source, their languages spoken in training by others
    # (not -es-: debian/copyright credits Allison Smith for the English and the Spanish prompts)
    "asterisk-core-sounds-it-wav": "asterisk's Italian voice, a man (Italian: espeak-ng, festival, ktuberling)",
    "klettres-data:de": "KLettres' German speaker (German: espeak-ng, ktuberling)",
    "klettres-data:ru": "KLettres' Russian speaker (Russian: asterisk, espeak-ng, festival)",
    "klettres-data:it": "KLettres' Italian speaker (Italian: asterisk, espeak-ng, festival)",
    "ktuberling-data:fr": "KTuberling's French speaker (French: asterisk, espeak-ng, klettres)",
    "ktuberling-data:nl": "KTuberling's Dutch speaker (Dutch: espeak-ng, klettres)",
    # synthesized speech: voices, not languages, are held out
    "espeak-ng:*+m3": "espeak-ng's male variant 3 in every language (other variants: train)",
    "espeak-ng:*+f2": "espeak-ng's female variant 2 in every language",
    "flite:awb": "flite's Scottish English male voice (other flite voices: train)",
    "festival:ked_diphone": "a festival US English male voice (kal_diphone: train)",
    "festival:pc_diphone": "festival's Italian male voice (lp_diphone: train)",
    # environmental: whole packages whose labels training also has
    "lugaru-data": "a game's sounds (footsteps, fire, wind, birds, dog...) recorded by others",
    "minetest-data": "a game's sounds (footsteps, water, doors, explosions...) recorded by others",
    "gcompris-qt-data:memory-sound": "GCompris' sound-memory recordings (dog, rain, train, "
    "applause, door...)",
}


def _matches(group: str, pattern: str) -> bool:
    return group == pattern or group.startswith(pattern + ":") or fnmatchcase(group, pattern)


def split_of(group: str, test_groups: Mapping[str, str] | None = None) -> str:
    """The split of `group`: "test" if a pattern of `test_groups` (default `TEST_GROUPS`) matches it."""
    patterns = TEST_GROUPS if test_groups is None else test_groups
    return "test" if any(_matches(group, pattern) for pattern in patterns) else "train"


def unmatched_patterns(groups: Iterable[str], test_groups: Mapping[str, str]) -> list[str]:
    """The patterns of `test_groups` that hold out none of `groups` (a renamed group, a typo)."""
    groups = set(groups)
    return [p for p in test_groups if not any(_matches(group, p) for group in groups)]
