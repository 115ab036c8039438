"""`slap-search`: find sounds in a folder by describing them, or by an example clip.

    slap-search index sounds/ --model runs/tiny/slap --out sounds.index
    slap-search query sounds.index "a dog barking" -k 5
    slap-search query sounds.index --audio clip.wav --json

`index` embeds every audio file under the folder (any format libsndfile or ffmpeg reads, any
length, rate and channels); running it again embeds only new or changed files and drops deleted
ones. Undecodable files are skipped, counted and listed (also in the index's manifest). `query`
prints the best `-k` files with their cosine similarity, using the model the index was built with
(its manifest names it; `--model` gives another location of the same weights). The Python API is
`slap_audio.search.SearchIndex`.
"""

from __future__ import annotations

import argparse
import json
import sys

from slap_audio.eval.embed import DEFAULT_BATCH_SECONDS
from slap_audio.search.index import BACKENDS, SearchHit, SearchIndex

MAX_LISTED_SKIPS = 20  # undecodable files printed after `index` (all are in the manifest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slap-search", description="Search a sound library with a SLAP model.")
    commands = parser.add_subparsers(dest="command", required=True)
    index = commands.add_parser(
        "index", help="embed the audio files of a folder",
        description="Embed every audio file under DIR into the index folder OUT; an existing index of "
        "DIR is updated (only new or changed files are embedded).",
    )
    index.add_argument("folder", metavar="DIR", help="the sound library (searched recursively)")
    index.add_argument("--model", required=True, help="a SLAP checkpoint folder or Hub id")
    index.add_argument("--out", required=True, metavar="INDEX", help="the index folder (created or updated)")
    index.add_argument("--rebuild", action="store_true", help="embed every file again (needed after changing model)")
    index.add_argument("--batch-seconds", type=float, default=DEFAULT_BATCH_SECONDS,
                       help="audio seconds per packed forward pass (default: %(default)s)")
    index.add_argument("--no-progress", action="store_true", help="no progress bar")

    query = commands.add_parser(
        "query", help="the files most similar to a text or a clip",
        description="Print the files of INDEX most similar to TEXT and/or to the clip given by --audio.",
    )
    query.add_argument("index", metavar="INDEX", help="an index folder written by `slap-search index`")
    query.add_argument("text", nargs="?", help='a description, e.g. "a dog barking"')
    query.add_argument("--audio", help="an audio file to search by example")
    query.add_argument("-k", type=int, default=10, help="number of results (default: %(default)s)")
    query.add_argument("--json", action="store_true", help="print the results as JSON")
    query.add_argument("--model", default=None, help="the index's model from another location (default: its manifest's)")
    query.add_argument("--backend", choices=BACKENDS, default="auto", help="faiss or numpy (default: faiss if installed)")

    for command in (index, query):
        command.add_argument("--trust-remote-code", action="store_true", help="run the model code shipped with the checkpoint")
        command.add_argument("--device", default=None, help="cpu, cuda... (default: cuda when available)")
    return parser


def index_folder(args: argparse.Namespace) -> int:
    index = SearchIndex.build(args.folder, args.model, args.out, rebuild=args.rebuild,
                              batch_seconds=args.batch_seconds, trust_remote_code=args.trust_remote_code,
                              device=args.device, progress=not args.no_progress)
    stats = index.stats
    for entry in index.skipped[:MAX_LISTED_SKIPS]:
        print(f"skipped {entry['path']}: {entry['reason']}", file=sys.stderr)
    if len(index.skipped) > MAX_LISTED_SKIPS:
        print(f"... and {len(index.skipped) - MAX_LISTED_SKIPS} more (manifest.json lists them all)", file=sys.stderr)
    rate = stats["embedded"] / stats["seconds"] if stats["seconds"] else 0.0
    print(f"{args.out}: {stats['files']} files ({stats['embedded']} embedded, {stats['reused']} unchanged, "
          f"{stats['removed']} removed, {stats['skipped']} skipped), {stats['audio_seconds']:.0f} audio seconds "
          f"embedded in {stats['seconds']:.1f} s ({rate:.1f} files/s)")
    return 0


def query_index(args: argparse.Namespace) -> int:
    if args.text is None and args.audio is None:
        print("slap-search query: give a TEXT, an --audio clip, or both", file=sys.stderr)
        return 2
    index = SearchIndex.load(args.index, args.model, trust_remote_code=args.trust_remote_code,
                             device=args.device, backend=args.backend)
    results = {}
    if args.text is not None:
        results["text"] = index.query_text(args.text, k=args.k)
    if args.audio is not None:
        results["audio"] = index.query_audio(args.audio, k=args.k)
    if args.json:
        print(json.dumps({kind: [_as_dict(rank, hit) for rank, hit in enumerate(hits, 1)]
                          for kind, hits in results.items()}, indent=1))
        return 0
    for kind, hits in results.items():
        print(f"{kind}: {args.text if kind == 'text' else args.audio}")
        for rank, hit in enumerate(hits, 1):
            print(f"{rank:4d}  {hit.score:7.4f}  {hit.path}  ({hit.metadata['duration']:.1f} s)")
    return 0


def _as_dict(rank: int, hit: SearchHit) -> dict:
    return {"rank": rank, "score": hit.score, **hit.metadata, "path": hit.path,
            "relative_path": hit.metadata["path"]}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"index": index_folder, "query": query_index}[args.command](args)
    except (ValueError, OSError) as error:  # ModelMismatch, UndecodableAudio, a missing folder or model
        print(f"slap-search: {error}", file=sys.stderr)
        return 1


def console_main() -> int:
    """Entry point of `slap-search`."""
    return main()


if __name__ == "__main__":
    sys.exit(main())
