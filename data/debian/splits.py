"""The train/test split of the Debian corpus, by source group, from a reviewed table.

Every clip names its `group`: the package it comes from, or `<package>:<sub>` for a soundfont,
a drum kit, a voice or a speaker. A group lies wholly in one split, so the test split holds
soundfonts, kits, voices, speakers and packages that training never heard: a test score measures
generalisation to new sources, not memory of a recording. The table below lists the test groups
(shell patterns) with the reason each was chosen; every other group is training data.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

SPLITS = ("train", "test")

# pattern → why it is held out. A pattern matches a group exactly, with its `:<sub>` suffix
# ("pkg" matches "pkg:x"), or as a shell pattern.
TEST_GROUPS: dict[str, str] = {
    "musescore-general-soundfont-small": "a second soundfont: every GM program and its drum kit, "
    "rendered by other samples than fluid-soundfont-gm (train)",
}


def _matches(group: str, pattern: str) -> bool:
    return group == pattern or group.startswith(pattern + ":") or fnmatchcase(group, pattern)


def split_of(group: str, test_groups: Mapping[str, str] | None = None) -> str:
    """The split of `group`: "test" if a pattern of `test_groups` (default `TEST_GROUPS`) matches it."""
    patterns = TEST_GROUPS if test_groups is None else test_groups
    return "test" if any(_matches(group, pattern) for pattern in patterns) else "train"
