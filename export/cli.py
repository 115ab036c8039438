"""`slap-export`: deployable copies of a SLAP model.

    slap-export onnx MODEL OUT [--opset 18]

writes the audio and text encoders of MODEL (a SLAP folder or Hub id) as `OUT/audio_encoder.onnx`
and `OUT/text_encoder.onnx`, with the processor, a manifest and a README (see `onnx_export.py`),
after checking them with ONNX Runtime against PyTorch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from slap_audio.export.onnx_export import DEFAULT_OPSET, MANIFEST_NAME, TOLERANCE, export_onnx


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slap-export", description="Export a SLAP model for deployment.")
    commands = parser.add_subparsers(dest="command", required=True)
    onnx = commands.add_parser(
        "onnx",
        help="the audio and text encoders as two ONNX graphs",
        description="Export the audio encoder (packed log-mel frames + clip lengths → embeddings) and the "
        f"text encoder (token ids + mask → embeddings) to ONNX, checked against PyTorch (≤ {TOLERANCE:g}).",
    )
    onnx.add_argument("model", help="a SLAP model folder or Hub id (with its processor files)")
    onnx.add_argument("out", help="the folder to write (created if missing; exported files are replaced)")
    onnx.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset version (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the command; the export's manifest."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        manifest = export_onnx(args.model, args.out, opset=args.opset)
    except (ValueError, OSError) as err:
        parser.exit(2, f"slap-export: error: {err}\n")
    for graph in manifest["graphs"].values():
        print(
            f"{args.out}/{graph['file']}: {graph['size_bytes'] / 1e6:.1f} MB, "
            f"max abs diff vs PyTorch {graph['max_abs_diff_vs_pytorch']:.1e}"
        )
    print(f"{args.out}/{MANIFEST_NAME}, {args.out}/README.md: opset {manifest['opset']}, how to run")
    return manifest


def console_main() -> int:
    """Console-script entry point: `main()` with the process's arguments, exit status 0."""
    main(sys.argv[1:])
    return 0


if __name__ == "__main__":
    console_main()
