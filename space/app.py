"""SLAP's demo app (a Gradio Space): zero-shot classification, text→audio search and captioning.

    python app.py                                   # the demo's model (examples/demo.py writes it)
    python app.py --model alice/slap-tiny           # any SLAP folder or Hub repo id
    python app.py --model runs/tiny/slap --index sounds.index --port 7860
    SLAP_MODEL=alice/slap-tiny python app.py

Three tabs, each the project's own path, so the app shows what the library computes:

- **Classify**: upload or record audio of any length, type free-text labels; the scores are those
  of `transformers.pipeline("zero-shot-audio-classification")` on the clip (decoded, down-mixed and
  resampled as `slap-eval` feeds the pipeline), shown as a bar chart and a table.
- **Search**: describe a sound, get the closest files of a library (`slap_audio.search.SearchIndex`)
  with players for the best hits. The library is an index built by `slap-search index` (`--index`),
  a folder of audio indexed at the first query (`--library`), or by default a few clips of the
  built-in procedural data written to a temporary folder.
- **Caption**: `SlapForConditionalGeneration.generate` (beam search) when a captioner is found:
  `--captioner`, the model itself when it is one, or the `captioner/` folder next to a local model
  (the layout `slap-train` writes). Otherwise the tab says that the model has no caption decoder.

The model is `--model`, else `SLAP_MODEL`, else the first `models` entry of the Space card
(README.md next to the script: what `slap-push --space` writes), else the demo's model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForSpeechSeq2Seq, PretrainedConfig, pipeline

from slap_audio.data.builtin_data import write_audiofolder
from slap_audio.data.debian.audio_io import UndecodableAudio, decode_audio
from slap_audio.eval.cli import generate_captions, load_model
from slap_audio.eval.zero_shot import DEFAULT_TEMPLATE, PIPELINE_TASK, pipeline_input
from slap_audio.search import SearchHit, SearchIndex

DEMO_MODEL = "outputs/demo/run/slap"  # examples/demo.py's SlapModel (its captioner is ../captioner)
EXAMPLE_LABELS = "a low hum, a siren, rain, three clicks, a rising chirp"
NUM_PLAYERS = 3  # search hits with an audio player (all k are listed in the table)


class SlapDemo:
    """The models behind the app and the three things it does, without any UI.

    Args:
        model: a `SlapModel` checkpoint (local folder or Hub repo id).
        captioner: a `SlapForConditionalGeneration` checkpoint; default: `model` when it is one,
            else the `captioner/` folder beside a local `model`, else none (captioning unavailable).
        index: a `slap-search` index folder to search; default: `library` indexed on first use.
        library: a folder of audio files to index; default: `library_clips` built-in clips.
        library_clips: size of the built-in example library.
        device: where the models run (default: CUDA when available, else CPU).
        trust_remote_code: load Hub checkpoints with their shipped code.
    """

    def __init__(self, model: str, *, captioner: str | None = None, index: str | None = None,
                 library: str | None = None, library_clips: int = 24, device: str | None = None,
                 trust_remote_code: bool = False):
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model_name, self.trust_remote_code = model, trust_remote_code
        self.model, self.processor = load_model(model, self.device, trust_remote_code)
        self.classifier = pipeline(PIPELINE_TASK, model=self.model, tokenizer=self.processor.tokenizer,
                                   feature_extractor=self.processor.feature_extractor, device=self.device)
        self.captioner_name = captioner or find_captioner(model)
        self._captioner = None
        self.index_path, self.library, self.library_clips = index, library, library_clips
        self._index: SearchIndex | None = None
        self._lock = threading.Lock()  # Gradio serves requests from several threads
        self._workdir = tempfile.TemporaryDirectory(prefix="slap-app-")
        if index:  # opened now: a wrong index or model is an error at start, not at the first query
            self._index = self._open_index()

    # ----------------------------------------------------------------------------- classification

    def classify(self, audio_path: str, labels: str | Sequence[str],
                 template: str = DEFAULT_TEMPLATE) -> dict[str, float]:
        """Zero-shot scores `{label: probability}` (best first) of an audio file, from the pipeline.

        `labels` is a comma- or newline-separated string or a list. Raises `ValueError` on no
        labels, a template without `{}`, or audio that cannot be decoded.
        """
        candidates = parse_labels(labels)
        if not candidates:
            raise ValueError("enter at least one label (comma- or newline-separated)")
        if "{}" not in template:
            raise ValueError(f"the prompt template must contain {{}} where the label goes, got {template!r}")
        audio, rate = read_clip(audio_path)
        clip = pipeline_input(audio, rate, self.processor.feature_extractor.sampling_rate)
        with self._lock, torch.no_grad():
            results = self.classifier(clip, candidate_labels=candidates, hypothesis_template=template)
        return {result["label"]: float(result["score"]) for result in results}

    # ----------------------------------------------------------------------------- search

    @property
    def index(self) -> SearchIndex:
        """The library's search index (built or updated at first use)."""
        with self._lock:
            if self._index is None:
                self._index = self._open_index()
            return self._index

    def _open_index(self) -> SearchIndex:
        if self.index_path:
            return SearchIndex.load(self.index_path, self.model, processor=self.processor, device=self.device)
        folder = self.library
        if folder is None:
            folder = write_audiofolder(Path(self._workdir.name) / "library", {"test": self.library_clips})["test"]
        return SearchIndex.build(folder, self.model, Path(self._workdir.name) / "index", processor=self.processor,
                                 device=self.device)

    def search(self, text: str, k: int = 10) -> list[SearchHit]:
        """The `k` library files closest to the description `text`, best first."""
        if not text.strip():
            raise ValueError("describe the sound to search for")
        index = self.index
        with self._lock, torch.no_grad():
            return index.query_text(text.strip(), k=k)

    # ----------------------------------------------------------------------------- captioning

    @property
    def can_caption(self) -> bool:
        return self.captioner_name is not None

    def caption(self, audio_path: str, num_beams: int = 3, max_new_tokens: int = 40) -> str:
        """A caption of an audio file; `RuntimeError` when there is no captioner."""
        if self.captioner_name is None:
            raise RuntimeError(no_captioner_message(self.model_name))
        audio, rate = read_clip(audio_path)
        with self._lock:
            if self._captioner is None:
                self._captioner = load_model(self.captioner_name, self.device, self.trust_remote_code,
                                             AutoModelForSpeechSeq2Seq)
            captioner, processor = self._captioner
            example = {"audio": {"array": audio, "sampling_rate": rate}}
            return generate_captions(captioner, processor, [example], num_beams, max_new_tokens)[0]


# ---------------------------------------------------------------------------------------------
# helpers


def parse_labels(labels: str | Sequence[str]) -> list[str]:
    """Labels from a comma- or newline-separated string (or a list): stripped, empty ones and
    repeats dropped, order kept."""
    parts = labels.replace("\n", ",").split(",") if isinstance(labels, str) else labels
    return list(dict.fromkeys(part.strip() for part in parts if part.strip()))


def read_clip(path: str | os.PathLike | None) -> tuple[np.ndarray, int]:
    """Decode an uploaded or recorded file (any format libsndfile or ffmpeg reads) at its own rate."""
    if not path:
        raise ValueError("upload or record a sound first")
    try:
        return decode_audio(path)
    except (UndecodableAudio, OSError) as error:
        raise ValueError(f"cannot decode the audio: {error}") from error


def _architectures(name: str) -> list[str]:
    try:
        return PretrainedConfig.get_config_dict(name)[0].get("architectures") or []
    except (OSError, ValueError):
        return []


def find_captioner(model: str) -> str | None:
    """`model` if it is a `SlapForConditionalGeneration`, else a captioner folder beside a local
    `model` (`run/slap` → `run/captioner`), else None."""
    if "SlapForConditionalGeneration" in _architectures(model):
        return model
    sibling = Path(model).parent / "captioner"
    if Path(model).is_dir() and "SlapForConditionalGeneration" in _architectures(str(sibling)):
        return str(sibling)
    return None


def no_captioner_message(model: str) -> str:
    return (f"{model} has no caption decoder (it is a SlapModel: audio and text encoders only). "
            "Start the app with --captioner pointing to a SlapForConditionalGeneration checkpoint "
            "(slap-train writes one as `captioner/` when the captioning loss is on).")


def space_card_model(folder: Path) -> str | None:
    """The first `models` entry of the Space card `folder/README.md`, if there is one."""
    from huggingface_hub import SpaceCard

    card = folder / "README.md"
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    if not text.startswith("---"):  # no metadata: not a Space card (e.g. the project's README)
        return None
    models = SpaceCard(text).data.get("models") or []
    return models[0] if models else None


def default_model() -> str:
    """`SLAP_MODEL`, else the Space card's model, else the demo's model."""
    return os.environ.get("SLAP_MODEL") or space_card_model(Path(sys.argv[0]).resolve().parent) or DEMO_MODEL


def table_cell(text: object) -> str:
    """Text as one Markdown table cell: a `|` or a line break in a label, a file name or a caption
    would otherwise split the row."""
    return " ".join(str(text).split()).replace("\\", "\\\\").replace("|", "\\|")


def scores_table(scores: dict[str, float]) -> str:
    """The scores as a Markdown table (4 decimals), best first."""
    rows = "\n".join(f"| {table_cell(label)} | {score:.4f} |" for label, score in scores.items())
    return "| label | score |\n|---|---|\n" + rows


def hits_table(hits: Sequence[SearchHit], root: Path) -> str:
    """Search hits as a Markdown table: rank, score, file (relative to the library), caption."""
    captions = library_captions(root)
    rows = []
    for rank, hit in enumerate(hits, 1):
        name = hit.metadata.get("path") or Path(hit.path).name
        rows.append(f"| {rank} | {hit.score:.4f} | {table_cell(name)} | {table_cell(captions.get(name, ''))} |")
    return "| # | score | file | caption |\n|---|---|---|---|\n" + "\n".join(rows)


def library_captions(root: Path) -> dict[str, str]:
    """Captions of an audio folder in the `audiofolder` layout (`metadata.jsonl`: file_name, caption)."""
    captions = {}
    for manifest in sorted(root.rglob("metadata.jsonl")):
        prefix = manifest.parent.relative_to(root)
        for line in manifest.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and "file_name" in row:
                captions[(prefix / row["file_name"]).as_posix()] = str(row.get("caption", ""))
    return captions


# ---------------------------------------------------------------------------------------------
# the interface


def build_interface(demo: SlapDemo):
    """The Gradio Blocks of the app (three tabs) around `demo`."""
    import gradio as gr

    def classify(audio_path, labels, template):
        try:
            scores = demo.classify(audio_path, labels, template)
        except ValueError as error:
            raise gr.Error(str(error)) from error
        frame = pd.DataFrame({"label": list(scores), "score": list(scores.values())})
        return frame, scores_table(scores)

    def search(text, k):
        try:
            hits = demo.search(text, int(k))
        except ValueError as error:
            raise gr.Error(str(error)) from error
        players = [gr.update(value=hit.path, label=f"#{i + 1}  {hit.score:.4f}  {Path(hit.path).name}",
                             visible=True) for i, hit in enumerate(hits[:NUM_PLAYERS])]
        players += [gr.update(value=None, visible=False)] * (NUM_PLAYERS - len(players))
        return [hits_table(hits, demo.index.root), *players]

    def caption(audio_path, num_beams):
        try:
            return demo.caption(audio_path, int(num_beams))
        except ValueError as error:
            raise gr.Error(str(error)) from error

    with gr.Blocks(title="SLAP", analytics_enabled=False) as blocks:
        gr.Markdown(f"# SLAP: language–audio model\n`{demo.model_name}`: clips of any length are kept whole.")
        with gr.Tab("Classify"):
            with gr.Row():
                with gr.Column():
                    audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Audio",
                                     elem_id="classify-audio")
                    labels = gr.Textbox(value=EXAMPLE_LABELS, label="Labels (comma-separated)", lines=2,
                                        elem_id="labels")
                    template = gr.Textbox(value=DEFAULT_TEMPLATE, label="Prompt template", elem_id="template")
                    button = gr.Button("Classify", variant="primary", elem_id="classify")
                with gr.Column():
                    chart = gr.BarPlot(x="label", y="score", sort="-y", y_lim=[0, 1], label="Scores",
                                       elem_id="chart")
                    table = gr.Markdown(elem_id="scores")
            button.click(classify, [audio, labels, template], [chart, table])
        with gr.Tab("Search"):
            with gr.Row():
                query = gr.Textbox(label="Describe a sound", value="a rising chirp", elem_id="query", scale=4)
                k = gr.Slider(1, 50, value=10, step=1, label="Results", scale=1)
            search_button = gr.Button("Search", variant="primary", elem_id="search")
            hits = gr.Markdown(elem_id="hits")
            players = [gr.Audio(type="filepath", interactive=False, visible=False) for _ in range(NUM_PLAYERS)]
            search_button.click(search, [query, k], [hits, *players])
        with gr.Tab("Caption"):
            if demo.can_caption:
                caption_audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Audio")
                beams = gr.Slider(1, 8, value=3, step=1, label="Beam width")
                caption_button = gr.Button("Caption", variant="primary", elem_id="caption")
                caption_text = gr.Textbox(label="Caption", elem_id="caption-text")
                caption_button.click(caption, [caption_audio, beams], caption_text)
            else:
                gr.Markdown(no_captioner_message(demo.model_name), elem_id="no-captioner")
    return blocks


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="app.py")
    parser.add_argument("--model", default=None, help=f"SlapModel folder or repo id (default: SLAP_MODEL, the "
                        f"Space card's model, else {DEMO_MODEL})")
    parser.add_argument("--captioner", default=os.environ.get("SLAP_CAPTIONER"),
                        help="SlapForConditionalGeneration folder or repo id (default: SLAP_CAPTIONER, "
                        "or captioner/ beside a local model)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--index", help="a slap-search index folder to search")
    source.add_argument("--library", help="a folder of audio files to index and search")
    parser.add_argument("--library-clips", type=int, default=24, help="built-in clips in the default library")
    parser.add_argument("--device", default=None, help="cpu, cuda... (default: cuda when available)")
    parser.add_argument("--trust-remote-code", action="store_true", help="run the checkpoint's shipped code")
    parser.add_argument("--host", default=None, help="address to serve on (default: Gradio's, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    model = args.model or default_model()
    if not Path(model).exists() and model == DEMO_MODEL:
        sys.exit(f"app.py: no model at {DEMO_MODEL}: run `./run demo` first, or pass --model PATH_OR_REPO_ID")
    demo = SlapDemo(model, captioner=args.captioner, index=args.index, library=args.library,
                    library_clips=args.library_clips, device=args.device, trust_remote_code=args.trust_remote_code)
    library = args.library or (args.index and str(demo.index.root))  # hits are served from there
    build_interface(demo).launch(server_name=args.host, server_port=args.port,
                                 allowed_paths=[library] if library else None)


if __name__ == "__main__":
    main()
