"""`slap-data`: build audio–caption corpora.

    slap-data debian OUT [--size small|default|full] [--cache DIR] [--sources NAME,...] [--jobs N]
    slap-data shards SOURCE OUT [--format tar|parquet] [--clips-per-shard N]

builds the real-audio corpus of Debian 12's sound packages into OUT (see `data/debian/`):
packages are fetched with `apt-get download` into the cache and unpacked, never installed;
the rendering tools (fluidsynth, espeak-ng, flite, festival, ffmpeg) must be installed
(`./run` installs them). Rerunning the same command after an interruption continues the build.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

from slap_audio.data.debian.packages import DEFAULT_CACHE
from slap_audio.data.debian.records import SIZES

# decode_audio's fallback (WavPack, Opus...): without it the corpus would differ
DECODERS = ("ffmpeg", "ffprobe")
TOOL_PACKAGES = {"ffprobe": "ffmpeg"}  # the Debian package of each tool, where the names differ


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slap-data", description="Build SLAP's audio–caption corpora."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    debian = commands.add_parser(
        "debian",
        help="the real-audio corpus of Debian 12's sound packages",
        description="Build the real-audio corpus of Debian 12's sound packages into OUT "
        "(OUT/train, OUT/test, OUT/corpus.json, OUT/README.md). Rerun the same command to continue "
        "an interrupted build.",
    )
    debian.add_argument(
        "out",
        nargs="?",
        help="the corpus folder (new or empty, or an interrupted build of the same command)",
    )
    debian.add_argument(
        "--size",
        choices=SIZES,
        default="default",
        help="small: a quick check (~1/10); full: everything",
    )
    debian.add_argument(
        "--cache",
        default=str(DEFAULT_CACHE),
        help="where .deb files are downloaded and unpacked (default: %(default)s)",
    )
    debian.add_argument(
        "--sources", default=None, help="comma-separated source names (default: all; see --list)"
    )
    debian.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="sources staged at once"
    )
    debian.add_argument(
        "--list", action="store_true", help="list the sources and their packages, then exit"
    )
    debian.add_argument("--no-progress", action="store_true", help="no progress bars")
    shards = commands.add_parser(
        "shards",
        help="write an audio folder or manifest as tar (WebDataset) or parquet shards",
        description="Write the clips of SOURCE (an audio folder with metadata.jsonl/csv, or a manifest) "
        "as shards in OUT, for slap-train --streaming. Items that cannot be used are left out and counted.",
    )
    shards.add_argument("source", help="an audio folder or a JSONL/CSV manifest")
    shards.add_argument("out", help="a new or empty folder for the shards")
    shards.add_argument("--format", choices=("tar", "parquet"), default="tar", help="default: %(default)s")
    shards.add_argument("--clips-per-shard", type=int, default=1000, help="default: %(default)s")
    shards.add_argument("--split", default="train", help="the split subfolder of SOURCE (default: %(default)s)")
    return parser


def write_shards_command(args: argparse.Namespace) -> int:
    from slap_audio.data.shards import write_shards

    report = write_shards(args.source, args.out, format=args.format, clips_per_shard=args.clips_per_shard,
                          split=args.split)
    print(f"{report.clips} clips in {len(report.shards)} {args.format} shards in {args.out}; "
          f"{report.skip_stats.summary()}")
    return 0


def debian_corpus(args: argparse.Namespace) -> int:
    from slap_audio.data.debian import all_sources
    from slap_audio.data.debian.corpus import CorpusMismatch, build_corpus, report
    from slap_audio.data.debian.packages import AptUnavailable, fetch_packages, tool_versions

    sources = all_sources()
    if args.list:
        for source in sources:
            packages = ", ".join(source.packages) or "no package"
            print(f"{source.name}: {packages}; tools: {', '.join(source.tools) or 'none'}")
        return 0
    if args.sources:
        wanted = [name.strip() for name in args.sources.split(",") if name.strip()]
        unknown = sorted(set(wanted) - {s.name for s in sources})
        if unknown:
            print(
                f"slap-data: unknown sources {unknown}; see `slap-data debian --list`",
                file=sys.stderr,
            )
            return 2
        sources = tuple(s for s in sources if s.name in wanted)
    tools = {tool for s in sources for tool in s.tools} | set(DECODERS)
    missing = sorted(tool for tool in tools if shutil.which(tool) is None)
    if missing:
        print(
            f"slap-data: missing tools {missing}: `apt-get install --no-install-recommends "
            f"{' '.join(sorted({TOOL_PACKAGES.get(t, t) for t in missing}))}` (./run installs them)",
            file=sys.stderr,
        )
        return 1
    start = time.monotonic()
    try:
        packages = fetch_packages({p for s in sources for p in s.packages}, args.cache)
    except AptUnavailable as error:
        print(f"slap-data: {error}", file=sys.stderr)
        return 1
    try:
        summary = build_corpus(
            args.out,
            sources,
            {name: package.root for name, package in packages.items()},
            size=args.size,
            versions={
                **tool_versions(t for s in sources for t in s.tools),
                **{name: package.version for name, package in packages.items()},
            },
            jobs=args.jobs,
            progress=not args.no_progress,
        )
    except CorpusMismatch as error:
        print(f"slap-data: {error}", file=sys.stderr)
        return 1
    report(summary)
    print(
        f"{summary['clips']} clips, {summary['hours']} h in {args.out} ({time.monotonic() - start:.0f} s)",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "debian" and args.out is None and not args.list:
        parser.error("slap-data debian: the corpus folder OUT is required")
    return {"debian": debian_corpus, "shards": write_shards_command}[args.command](args)


def console_main() -> int:
    """Entry point of `slap-data`."""
    return main()


if __name__ == "__main__":
    sys.exit(main())
