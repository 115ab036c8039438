"""`slap-data debian`: a real-audio corpus built from Debian 12's sound packages.

Sources (each a `records.Source`, yielding `records.Clip` / `records.Skipped`):
- `soundfonts`: the GM programs and drum kits of fluid-soundfont-gm and
  musescore-general-soundfont-small, rendered with fluidsynth;
- `samples`: lmms-common's instrument and drum samples, hydrogen-drumkits;
- `speech`: asterisk's recorded prompts, klettres and ktuberling, espeak-ng, flite, festival;
- `environment`: the sound effects of games and educational packages, named by a reviewed table.

The core: `packages` (apt-get download + dpkg-deb -x into a cache, never installed), `audio_io`
(decoding, 16 kHz mono), `captions` (keyword-to-caption templates), `splits` (held-out groups),
`corpus` (the resumable, deterministic writer). `data/cli.py` is `slap-data debian OUT`.
"""

from __future__ import annotations

from slap_audio.data.debian.records import CATEGORIES, SIZES, Clip, Skipped, Source

__all__ = ["CATEGORIES", "SIZES", "Clip", "Skipped", "Source", "all_sources"]


def all_sources() -> tuple[Source, ...]:
    """Every source of the corpus, in build order (imported here, on demand: they are heavy)."""
    from slap_audio.data.debian import environment, samples, soundfonts, speech

    return (*soundfonts.SOURCES, *samples.SOURCES, *speech.SOURCES, *environment.SOURCES)
