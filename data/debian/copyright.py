"""The licence of a file, read from its package's machine-readable `debian/copyright` (DEP-5).

A DEP-5 file is a list of paragraphs; each `Files:` paragraph names glob patterns (paths of
the upstream source tree, `*` matching across `/`) and a `License:`. The last paragraph whose
pattern matches a path decides its licence. Short names are turned into SPDX-style ids
("GPL-2+" -> "GPL-2.0+", "free-art" -> "LAL-1.3", "A and B" -> "A AND B").
"""

from __future__ import annotations

import fnmatch
import functools
import re
from pathlib import Path

# Debian short licence names that differ from their SPDX id.
_SPDX = {
    "GPL-2": "GPL-2.0",
    "GPL-2+": "GPL-2.0+",
    "GPL-3": "GPL-3.0",
    "GPL-3+": "GPL-3.0+",
    "LGPL-2.1+": "LGPL-2.1+",
    "CDDL": "CDDL-1.1",
    "Expat": "MIT",
    "BSD-3-clause": "BSD-3-Clause",
    "free-art": "LAL-1.3",
    "public-domain": "public-domain",
    "CC0": "CC0-1.0",
}


def spdx(short_name: str) -> str:
    """An SPDX-style expression for a DEP-5 `License:` short name ("GPL-2+ or CDDL" -> ...)."""
    words = re.split(r"\s+(and|or)\s+", short_name.strip())
    return " ".join(
        word.upper() if word in ("and", "or") else _SPDX.get(word, word) for word in words
    )


@functools.cache
def _paragraphs(copyright_file: Path) -> tuple[tuple[tuple[str, ...], str], ...]:
    """((patterns, licence), ...) of the `Files:` paragraphs, in file order."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", copyright_file.read_text(encoding="utf-8")):
        fields: dict[str, str] = {}
        current = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and current is not None:
                fields[current] += "\n" + line.strip()
            elif ":" in line:
                current, value = line.split(":", 1)
                fields[current] = value.strip()
        if "Files" in fields and "License" in fields:
            licence = fields["License"].split("\n", 1)[0]  # the first line is the short name
            paragraphs.append((tuple(fields["Files"].split()), spdx(licence)))
    return tuple(paragraphs)


def file_licence(copyright_file: str | Path, upstream_path: str) -> str:
    """The SPDX-style licence the DEP-5 `copyright_file` gives `upstream_path`.

    Raises `LookupError` when no `Files:` paragraph matches (a copyright file without `*`)."""
    licence = None
    for patterns, paragraph_licence in _paragraphs(Path(copyright_file)):
        if any(fnmatch.fnmatchcase(upstream_path, pattern) for pattern in patterns):
            licence = paragraph_licence
    if licence is None:
        raise LookupError(f"{copyright_file} gives no licence for {upstream_path}")
    return licence
