"""The standard benchmarks with their published protocols: ESC-50, UrbanSound8K, Clotho, AudioCaps.

    slap-eval runs/micro/slap --benchmark esc50 --data-dir ~/data/ESC-50-master
    slap-eval runs/micro/slap --benchmark clotho --data-dir ~/data/clotho --split evaluation

No data is downloaded: `--data-dir` is the benchmark's folder in its public layout.

**Zero-shot classification** (ESC-50, UrbanSound8K; LAION-CLAP's protocol): every clip is scored
against one prompt per class, "This is a sound of {label}." (`DEFAULT_TEMPLATE`), the label being
the metadata's class name with underscores as spaces ("dog_bark" → "dog bark"); several templates
are averaged per class. Zero-shot needs no training, so the folds are not train/test splits here:
each fold is only scored. Reported: top-1 accuracy per fold (`fold_top1`), their mean and
(population) standard deviation, and top-1 / top-5 over all clips pooled (`top1`, `top5`). The
layouts:

- ESC-50 (`esc50`): `meta/esc50.csv` with columns filename, fold, target, category, esc10,
  src_file, take (`target` is the class index, `category` its name) and `audio/<filename>`;
  5 folds, 50 classes.
- UrbanSound8K (`us8k`): `metadata/UrbanSound8K.csv` with columns slice_file_name, fsID, start,
  end, salience, fold, classID, class and `audio/fold<fold>/<slice_file_name>`; 10 folds, 10 classes.

**Retrieval** (Clotho, AudioCaps; the DCASE / CLAP protocol, `eval/retrieval.py`): every clip
against all captions of the split, 5 per clip. text→audio: each caption queries all clips;
audio→text: each clip queries all captions, a hit at k if any of its captions ranks within k.
Reported both ways: R@1, R@5, R@10, mAP@10 (average precision over all of a clip's captions in the
top 10; for text→audio 1 / rank) and MRR@10 (1 / rank of the first hit — the audio→text number
LAION-CLAP's tables label "mAP@10"; for text→audio it equals mAP@10). The layouts:

- Clotho v2 (`clotho`): `clotho_captions_<split>.csv` with columns file_name, caption_1 …
  caption_5 and the audio in `<split>/` (or `clotho_audio_<split>/`), split = evaluation
  (default; `--split test` means it too), validation or development.
- AudioCaps (`audiocaps`): `<split>.csv` (in DIR or DIR/dataset, as in the AudioCaps repository)
  with columns audiocap_id, youtube_id, start_time, caption, one row per caption (5 per test
  clip, grouped by youtube_id and start_time), split = test (default), val or train. Audio files
  are named by YouTube id; accepted names (stem), first match wins: `<youtube_id>_<start_time>`
  (aac-datasets), `<youtube_id>`, `Y<youtube_id>`, `Y<youtube_id>_<start>.000_<start+10>.000`
  (AudioSet), with extension .wav, .flac, .ogg or .mp3, in DIR/audio/<split>, DIR/<split>,
  DIR/audio or DIR.

Clips that are missing (AudioCaps clips removed from YouTube), undecodable or malformed rows are
skipped and counted, as everywhere in slap-eval; a missing metadata file, audio folder or column
is an error naming it (`BenchmarkLayoutError`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from slap_audio.data.examples import (
    BAD_METADATA,
    MISSING_FILE,
    NO_TEXT,
    SkippedItem,
    SkipStats,
    decode_audio,
)
from slap_audio.eval.embed import DEFAULT_BATCH_SECONDS, EmbeddedSet, embed_audio, embed_texts
from slap_audio.eval.report import json_safe, retrieval_section, versions
from slap_audio.eval.retrieval import flatten_captions, retrieval_metrics
from slap_audio.eval.zero_shot import (
    DEFAULT_TEMPLATE,
    ZeroShotResult,
    zero_shot_classify,
    zero_shot_metrics,
)

ZERO_SHOT, RETRIEVAL = "zero_shot", "retrieval"
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
AUDIOCAPS_CLIP_SECONDS = 10  # AudioSet segments: start_time .. start_time + 10 s


class BenchmarkLayoutError(ValueError):
    """The data folder is not in the benchmark's public layout; the message names what is missing."""


@dataclass
class BenchmarkClip:
    """One clip of a benchmark: its file and what the protocol scores it against."""

    clip_id: str
    path: Path
    label: str | None = None  # zero-shot: the class name as prompted
    fold: int | None = None  # zero-shot: the fold it belongs to
    captions: list[str] = field(default_factory=list)  # retrieval: its reference captions


@dataclass
class Benchmark:
    """A benchmark split read from its public layout.

    Attributes:
        name: `esc50`, `us8k`, `clotho` or `audiocaps`.
        title: the name as papers print it ("ESC-50").
        split: what is evaluated ("all folds", "evaluation", "test").
        task: `ZERO_SHOT` or `RETRIEVAL`.
        clips: the usable rows, in metadata order.
        classes: zero-shot class names in class-index order (empty for retrieval).
        skipped: rows dropped while reading (missing files, malformed rows).
    """

    name: str
    title: str
    split: str
    task: str
    clips: list[BenchmarkClip]
    classes: list[str] = field(default_factory=list)
    skipped: SkipStats = field(default_factory=SkipStats)

    @property
    def protocol(self) -> str:
        """One line on how the benchmark is scored, for the results JSON."""
        if self.task == ZERO_SHOT:
            folds = len({clip.fold for clip in self.clips})
            return (f"zero-shot classification, top-1 accuracy per fold ({folds} folds, each only scored: zero-shot "
                    f"needs no training) and their mean; labels with underscores as spaces")
        return ("retrieval over all clips and captions of the split, R@1/5/10, mAP@10 and MRR@10 both ways; "
                "audio→text hit if any of the clip's captions ranks within k")


# ---------------------------------------------------------------------------------------------
# readers


def _read_csv(path: Path, required: Sequence[str], benchmark: str) -> list[dict[str, str]]:
    """The rows of a metadata CSV, checked for the columns the protocol reads."""
    if not path.is_file():
        raise BenchmarkLayoutError(f"{benchmark}: metadata file {path} not found")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [name.strip() for name in reader.fieldnames or []]
        missing = [name for name in required if name not in columns]
        if missing:
            raise BenchmarkLayoutError(f"{benchmark}: {path} has no column(s) {missing} (it has {columns})")
        return [{key.strip(): (value or "").strip() for key, value in row.items() if key} for row in reader]


def _folder(path: Path, benchmark: str) -> Path:
    if not path.is_dir():
        raise BenchmarkLayoutError(f"{benchmark}: audio folder {path} not found")
    return path


def _classification(name: str, title: str, rows: list[dict[str, str]], audio: Callable[[dict[str, str]], Path],
                    file_column: str, index_column: str, name_column: str) -> Benchmark:
    """Zero-shot rows → clips with their class name and fold; class names ordered by class index."""
    names: dict[int, str] = {}
    clips, skipped = [], SkipStats()
    for row in rows:
        clip_id = row[file_column]
        try:
            index, fold, label = int(row[index_column]), int(row["fold"]), row[name_column].replace("_", " ")
        except ValueError:
            skipped.add(BAD_METADATA, clip_id)
            continue
        if not label or names.setdefault(index, label) != label:
            skipped.add(BAD_METADATA, clip_id)  # no name, or another name for the same class index
            continue
        path = audio(row)
        if not path.is_file():
            skipped.add(MISSING_FILE, clip_id)
            continue
        clips.append(BenchmarkClip(clip_id, path, label=label, fold=fold))
    return Benchmark(name, title, "all folds", ZERO_SHOT, clips, [names[i] for i in sorted(names)], skipped)


def read_esc50(data_dir: str | Path, split: str | None = None) -> Benchmark:
    """ESC-50: `meta/esc50.csv` + `audio/` (module docstring). `split` is unused (all 5 folds)."""
    root = Path(data_dir)
    rows = _read_csv(root / "meta" / "esc50.csv", ("filename", "fold", "target", "category"), "ESC-50")
    audio = _folder(root / "audio", "ESC-50")
    return _classification("esc50", "ESC-50", rows, lambda row: audio / row["filename"], "filename", "target",
                           "category")


def read_us8k(data_dir: str | Path, split: str | None = None) -> Benchmark:
    """UrbanSound8K: `metadata/UrbanSound8K.csv` + `audio/fold1..10/`. `split` is unused (all 10 folds)."""
    root = Path(data_dir)
    rows = _read_csv(root / "metadata" / "UrbanSound8K.csv", ("slice_file_name", "fold", "classID", "class"),
                     "UrbanSound8K")
    audio = _folder(root / "audio", "UrbanSound8K")
    return _classification("us8k", "UrbanSound8K", rows, lambda row: audio / f"fold{row['fold']}" / row["slice_file_name"],
                           "slice_file_name", "classID", "class")


CLOTHO_SPLITS = {"evaluation": "evaluation", "test": "evaluation", "validation": "validation",
                 "development": "development"}
CLOTHO_CAPTIONS = tuple(f"caption_{i}" for i in range(1, 6))


def read_clotho(data_dir: str | Path, split: str | None = None) -> Benchmark:
    """Clotho v2: `clotho_captions_<split>.csv` + `<split>/` audio (module docstring)."""
    if (split or "evaluation") not in CLOTHO_SPLITS:
        raise BenchmarkLayoutError(f"Clotho: split {split!r} is not one of {sorted(CLOTHO_SPLITS)}")
    split = CLOTHO_SPLITS[split or "evaluation"]
    root = Path(data_dir)
    rows = _read_csv(root / f"clotho_captions_{split}.csv", ("file_name", *CLOTHO_CAPTIONS), "Clotho")
    folders = [root / split, root / f"clotho_audio_{split}"]
    audio = next((f for f in folders if f.is_dir()), None)
    if audio is None:
        raise BenchmarkLayoutError(f"Clotho: audio folder {folders[0]} (or {folders[1].name}/) not found")
    clips, skipped = [], SkipStats()
    for row in rows:
        captions = [row[column] for column in CLOTHO_CAPTIONS if row[column]]
        if not captions:
            skipped.add(NO_TEXT, row["file_name"])
        elif not (audio / row["file_name"]).is_file():
            skipped.add(MISSING_FILE, row["file_name"])
        else:
            clips.append(BenchmarkClip(row["file_name"], audio / row["file_name"], captions=captions))
    return Benchmark("clotho", "Clotho", split, RETRIEVAL, clips, skipped=skipped)


AUDIOCAPS_SPLITS = ("test", "val", "train")


def audiocaps_stems(youtube_id: str, start_time: str) -> list[str]:
    """File-name stems an AudioCaps clip may have, in the order they are tried (module docstring)."""
    stems = [f"{youtube_id}_{start_time}", youtube_id, f"Y{youtube_id}"]
    try:
        start = float(start_time)
        stems.append(f"Y{youtube_id}_{start:.3f}_{start + AUDIOCAPS_CLIP_SECONDS:.3f}")
    except ValueError:
        pass
    return stems


def read_audiocaps(data_dir: str | Path, split: str | None = None) -> Benchmark:
    """AudioCaps: `<split>.csv` (one row per caption) + audio named by YouTube id (module docstring)."""
    split = split or "test"
    if split not in AUDIOCAPS_SPLITS:
        raise BenchmarkLayoutError(f"AudioCaps: split {split!r} is not one of {list(AUDIOCAPS_SPLITS)}")
    root = Path(data_dir)
    metadata = next((p for p in (root / f"{split}.csv", root / "dataset" / f"{split}.csv") if p.is_file()),
                    root / f"{split}.csv")
    rows = _read_csv(metadata, ("audiocap_id", "youtube_id", "start_time", "caption"), "AudioCaps")
    files: dict[str, Path] = {}  # stem -> file, the earlier folder winning
    for folder in (root / "audio" / split, root / split, root / "audio", root):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file():
                    files.setdefault(path.stem, path)
    groups: dict[tuple[str, str], list[str]] = {}  # (youtube_id, start_time) -> captions, in file order
    skipped = SkipStats()
    for row in rows:
        if not row["youtube_id"]:
            skipped.add(BAD_METADATA, row["audiocap_id"])
        elif not row["caption"]:
            skipped.add(NO_TEXT, row["audiocap_id"])
        else:
            groups.setdefault((row["youtube_id"], row["start_time"]), []).append(row["caption"])
    clips = []
    for (youtube_id, start_time), captions in groups.items():
        path = next((files[s] for s in audiocaps_stems(youtube_id, start_time) if s in files), None)
        if path is None:
            skipped.add(MISSING_FILE, f"{youtube_id}_{start_time}")
        else:
            clips.append(BenchmarkClip(f"{youtube_id}_{start_time}", path, captions=captions))
    return Benchmark("audiocaps", "AudioCaps", split, RETRIEVAL, clips, skipped=skipped)


BENCHMARKS: dict[str, Callable[[str | Path, str | None], Benchmark]] = {
    "esc50": read_esc50, "us8k": read_us8k, "clotho": read_clotho, "audiocaps": read_audiocaps,
}


def read_benchmark(name: str, data_dir: str | Path, split: str | None = None) -> Benchmark:
    """The benchmark `name` (a key of `BENCHMARKS`) read from `data_dir`."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    if not Path(data_dir).is_dir():
        raise BenchmarkLayoutError(f"{name}: data folder {data_dir} not found")
    return BENCHMARKS[name](data_dir, split)


# ---------------------------------------------------------------------------------------------
# protocols


@torch.no_grad()
def embed_clip_files(model, feature_extractor, clips: Sequence[BenchmarkClip],
                     batch_seconds: float = DEFAULT_BATCH_SECONDS,
                     progress: bool = False) -> tuple[torch.Tensor, list[int], SkipStats]:
    """Embeddings `(kept, dim)` of the clips whose files decode, the indices of those clips, and the
    others counted by reason. Files are decoded about `batch_seconds` of audio at a time, so a
    benchmark never sits in memory whole (an embedding does not depend on its batch)."""
    embeds, kept, skipped = [], [], SkipStats()
    waveforms, rates, seconds = [], [], 0.0

    def flush() -> None:
        if waveforms:
            embeds.append(embed_audio(model, feature_extractor, waveforms, rates, batch_seconds=batch_seconds))
            waveforms.clear()
            rates.clear()

    for index, clip in enumerate(tqdm(clips, desc="audio", unit="clip", disable=not progress)):
        try:
            array, rate = decode_audio(str(clip.path))
        except SkippedItem as error:
            skipped.add(error.reason, clip.clip_id)
            continue
        waveforms.append(array)
        rates.append(rate)
        kept.append(index)
        seconds += len(array) / rate
        if seconds >= batch_seconds:
            flush()
            seconds = 0.0
    flush()
    return (torch.cat(embeds) if embeds else torch.empty(0, 0)), kept, skipped


def fold_accuracies(result: ZeroShotResult, labels: Sequence[str], folds: Sequence[int]) -> dict[str, float]:
    """Top-1 accuracy of each fold's clips (`zero_shot_metrics` on that fold's rows of the scores)."""
    accuracies = {}
    for fold in sorted(set(folds)):
        rows = [i for i, f in enumerate(folds) if f == fold]
        accuracies[str(fold)] = zero_shot_metrics(result.scores[rows], [labels[i] for i in rows], result.classes).top1
    return accuracies


@dataclass
class BenchmarkResult:
    """What `run_benchmark` measured.

    Attributes:
        section: the results JSON's metrics section (`zero_shot` or `retrieval`, module docstring).
        clips: the clips scored (those that decoded), in metadata order.
        skipped: rows and files skipped, while reading and while decoding.
        zero_shot: the pooled `ZeroShotResult` (classification benchmarks).
        embedded: the clips' and captions' embeddings (retrieval benchmarks), for `report.write_plots`.
    """

    section: dict[str, Any]
    clips: list[BenchmarkClip]
    skipped: SkipStats
    zero_shot: ZeroShotResult | None = None
    embedded: EmbeddedSet | None = None


def _zero_shot_section(result: ZeroShotResult, clips: Sequence[BenchmarkClip], templates: Sequence[str]) -> dict:
    per_fold = fold_accuracies(result, [c.label for c in clips], [c.fold for c in clips])
    values = list(per_fold.values())
    mean = sum(values) / len(values)
    return {"top1": result.top1, "top5": result.top5, "fold_top1": per_fold, "fold_top1_mean": mean,
            "fold_top1_std": math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)),
            "num_folds": len(values), "num_classes": result.num_classes, "templates": list(templates)}


def run_benchmark(model, processor, benchmark: Benchmark, templates: Sequence[str] = (DEFAULT_TEMPLATE,),
                  batch_seconds: float = DEFAULT_BATCH_SECONDS, progress: bool = False) -> BenchmarkResult:
    """Embed the benchmark's clips (and captions) and score them by its protocol (module docstring).
    `templates` are the zero-shot prompts (`{}` = class name)."""
    was_training = model.training
    model.eval()
    try:
        audio, kept, skipped = embed_clip_files(model, processor.feature_extractor, benchmark.clips,
                                                batch_seconds, progress)
        skipped.update(benchmark.skipped)
        clips = [benchmark.clips[i] for i in kept]
        if not clips:
            raise BenchmarkLayoutError(f"{benchmark.title}: no usable clip ({skipped.summary()})")
        if benchmark.task == ZERO_SHOT:
            result = zero_shot_classify(model, processor, (), (), [c.label for c in clips], benchmark.classes,
                                        templates, audio_embeds=audio)
            return BenchmarkResult(_zero_shot_section(result, clips, templates), clips, skipped, zero_shot=result)
        captions, caption_to_audio = flatten_captions([clip.captions for clip in clips])
        text = embed_texts(model, processor.tokenizer, captions, progress=progress)
    finally:
        model.train(was_training)
    flat = retrieval_metrics(audio, text, caption_to_audio)
    section: dict[str, Any] = retrieval_section(flat)
    for direction in section:
        section[direction]["MRR@10"] = flat[f"{direction}/MRR@10"]
    embedded = EmbeddedSet(audio, text, caption_to_audio, captions, [None] * len(clips))
    return BenchmarkResult(section, clips, skipped, embedded=embedded)


def benchmark_results(model_name: str, benchmark: Benchmark, result: BenchmarkResult) -> dict[str, Any]:
    """The results JSON of a benchmark run, laid out as slap-eval's (`eval/report.py`): the
    dataset names the benchmark, its split and protocol; one metrics section."""
    dataset = {"name": benchmark.title, "benchmark": benchmark.name, "split": benchmark.split,
               "num_clips": len(result.clips), "skipped": result.skipped.as_dict(), "protocol": benchmark.protocol}
    if result.embedded is not None:
        dataset["num_captions"] = len(result.embedded.captions)
    return json_safe({"model": model_name, "dataset": dataset, "metrics": {benchmark.task: result.section},
                      "versions": versions()})
