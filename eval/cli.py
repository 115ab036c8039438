"""The `slap-eval` command: evaluate a SLAP checkpoint (SPEC §6) and write one results JSON + plots.

    slap-eval runs/micro/slap --captioner runs/micro/captioner --output-dir eval/micro
    slap-eval alice/slap-tiny --trust-remote-code --dataset data/clips --split test
    slap-eval runs/real/slap --dataset corpus/debian --split test --zero-shot-tasks category family
    python -m slap_audio.eval.cli runs/micro/slap --num-clips 32 --templates builtin --no-plots
    slap-eval runs/micro/slap --benchmark esc50 --data-dir ~/data/ESC-50-master

MODEL is a local folder or a Hub id of a `SlapModel` checkpoint with its processor (what
`slap-train` writes to `OUTPUT_DIR/slap`). The package's classes are registered, so a checkpoint
loads without remote code; `--trust-remote-code` runs the code shipped with it instead.

Steps (each with a progress bar): load the evaluation set (broken items are skipped and counted),
embed every clip and caption, retrieval metrics, zero-shot classification (the fast batched path,
checked against `transformers.pipeline("zero-shot-audio-classification")` on `--pipeline-check`
clips), zero-shot tasks by any field of the rows (`--zero-shot-tasks`: by default, on data whose rows
carry a `category` such as `slap-data debian`'s, the coarse category, instrument, instrument family,
drum instrument and spoken language, each beside chance; see `eval/zero_shot.py`), modality gap, a linear probe on the labels, and with `--captioner` captioning metrics
(beam search 3, at most 40 new tokens). The results JSON (`OUTPUT_DIR/results.json`, layout in
`eval/report.py`) is what `slap-push --metrics` puts into the model card; a table is printed at the
end. With `--benchmark esc50|us8k|clotho|audiocaps --data-dir DIR` it runs that benchmark's
published protocol on its public layout instead (`eval/benchmarks.py`; `--split` picks Clotho's and
AudioCaps' split): the same results JSON with the benchmark's one section, plus the confusion
matrix or the retrieval plots. In Python, `main([...])` returns the same dict; `console_main` is the
console-script entry (`sys.exit(main())` would print that dict and exit 1).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoModelForSpeechSeq2Seq, AutoProcessor, HfArgumentParser

from slap_audio.data.builtin_data import DEFAULT_NUM_CLIPS, LABELS, prompt_templates
from slap_audio.data.examples import attributes_of
from slap_audio.data.sources import METADATA_FILES, SkipStats, load_audio_text_dataset
from slap_audio.eval.benchmarks import (
    BENCHMARKS,
    BenchmarkLayoutError,
    benchmark_results,
    read_benchmark,
    run_benchmark,
)
from slap_audio.eval.caption_metrics import caption_metrics
from slap_audio.eval.embed import DEFAULT_BATCH_SECONDS, EmbeddedSet, embed_audio, embed_examples
from slap_audio.eval.report import (
    NUM_CAPTION_EXAMPLES,
    captioning_section,
    json_safe,
    plot_confusion_matrix,
    results_table,
    retrieval_section,
    versions,
    write_plots,
    write_results,
)
from slap_audio.eval.representation import linear_probe, modality_gap
from slap_audio.eval.retrieval import retrieval_metrics
from slap_audio.eval.zero_shot import (
    AUTO_TASKS,
    DEFAULT_TEMPLATE,
    ZeroShotResult,
    evaluate_zero_shot_tasks,
    pipeline_agreement,
    resolve_tasks,
    zero_shot_classify,
)
from slap_audio.modeling_slap import register_auto_classes

BUILTIN = "builtin"
BUILTIN_NAME = "slap-builtin"  # the dataset name the model card shows for the built-in data
CAPTION_BATCH = 8  # clips captioned per generate call (beam search runs them side by side)


@dataclass
class EvalArguments:
    """What to evaluate on and how (MODEL is the positional argument)."""

    dataset: str = field(default="builtin:test", metadata={"help": "builtin:<split>, an audio folder, a manifest, a saved dataset or a Hub id"})
    split: str = field(default="test", metadata={"help": "split of a folder / Hub dataset (built-in data: after the colon)"})
    num_clips: int | None = field(default=None, metadata={"help": f"clips to evaluate (default: {DEFAULT_NUM_CLIPS['test']} built-in test clips, every item of other sources)"})
    captioner: str | None = field(default=None, metadata={"help": "a SlapForConditionalGeneration checkpoint: adds captioning metrics"})
    output_dir: str = field(default="eval_results", metadata={"help": "where results.json and the plots go"})
    batch_seconds: float = field(default=DEFAULT_BATCH_SECONDS, metadata={"help": "audio seconds per packed forward pass"})
    templates: list[str] = field(default_factory=lambda: [DEFAULT_TEMPLATE], metadata={"help": "zero-shot prompt templates ({} = class name); several are averaged per class; 'builtin' = the built-in set's five"})
    zero_shot_tasks: list[str] = field(default_factory=lambda: [AUTO_TASKS], metadata={"help": "zero-shot tasks by field: 'auto' (category, instrument, family, drums, language, category_by_label when the rows carry a category), 'none', those names, or NAME=FIELD[@FIELD=VALUE] (e.g. gender=attributes.gender@category=speech; prompts: --templates)"})
    pipeline_check: int = field(default=16, metadata={"help": "clips classified through the transformers pipeline too (0: skip the check)"})
    probe_train: str | None = field(default=None, metadata={"help": "train the linear probe on this source (its train split, e.g. builtin:train) instead of half the evaluated clips"})
    probe_clips: int | None = field(default=None, metadata={"help": "clips of --probe-train (default: as many as are evaluated for built-in data, every item otherwise)"})
    num_beams: int = field(default=3, metadata={"help": "beam search width for captioning"})
    max_new_tokens: int = field(default=40, metadata={"help": "caption length limit in tokens"})
    caption_clips: int | None = field(default=None, metadata={"help": "caption only the first N clips (all by default)"})
    java_metrics: bool = field(default=True, metadata={"help": "METEOR (and SPICE) through Java where installed; --no-java-metrics skips them"})
    plots: bool = field(default=True, metadata={"help": "write the PNG plots (--no-plots: none)"})
    trust_remote_code: bool = field(default=False, metadata={"help": "run the model code shipped with the checkpoint"})
    device: str | None = field(default=None, metadata={"help": "torch device (default: cuda when available, else cpu)"})
    seed: int = field(default=0, metadata={"help": "seed of the samples: pipeline-check clips, probe split"})
    benchmark: str | None = field(default=None, metadata={"help": "run a standard benchmark's protocol on --data-dir instead (see eval/benchmarks.py)", "choices": sorted(BENCHMARKS)})
    data_dir: str | None = field(default=None, metadata={"help": "the --benchmark's folder in its public layout (ESC-50-master, UrbanSound8K, ...); --split picks Clotho's/AudioCaps' split"})


def parse_arguments(argv: Sequence[str] | None = None) -> tuple[str, EvalArguments]:
    parser = HfArgumentParser(EvalArguments, description=__doc__.split("\n\n")[0], prog="slap-eval")
    parser.add_argument("model", help="SlapModel checkpoint: a local folder or a Hub id")
    args, extra = parser.parse_args_into_dataclasses(args=list(sys.argv[1:] if argv is None else argv))
    if (args.benchmark is None) != (args.data_dir is None):
        parser.error("--benchmark and --data-dir go together")
    if args.templates == [BUILTIN]:
        args.templates = list(prompt_templates)
    try:  # malformed task specs fail now, not after embedding
        resolve_tasks(args.zero_shot_tasks, [], args.templates)
    except ValueError as err:
        parser.error(str(err))
    return extra.model, args


def is_builtin(source: str) -> bool:
    return source == BUILTIN or source.startswith(BUILTIN + ":")


# ---------------------------------------------------------------------------------------------
# loading


def load_model(name: str, device: str, trust_remote_code: bool = False, auto_class=AutoModel):
    """A checkpoint and its processor, in eval mode on `device`. The tokenizer's length limit is
    capped at the text tower's positions, so long captions are truncated, not fatal."""
    register_auto_classes()
    model = auto_class.from_pretrained(name, trust_remote_code=trust_remote_code).to(device).eval()
    processor = AutoProcessor.from_pretrained(name, trust_remote_code=trust_remote_code)
    text_config = getattr(model.config, "text_config", None)
    positions = getattr(text_config, "max_position_embeddings", None)
    if positions:
        processor.tokenizer.model_max_length = min(processor.tokenizer.model_max_length, positions)
    return model, processor


def load_examples(source: str, split: str, num_clips: int | None, desc: str = "load") -> tuple[list[dict], SkipStats]:
    """Decoded examples of a source (the first `num_clips`), broken items skipped and counted
    (those found at load time and those found when decoding)."""
    options = {"num_clips": num_clips} if is_builtin(source) else {}
    dataset = load_audio_text_dataset(source, split=split, **options)
    stats = SkipStats()
    stats.update(dataset.skip_stats)
    count = len(dataset) if num_clips is None else min(num_clips, len(dataset))
    examples = []
    for index in tqdm(range(count), desc=desc, unit="clip"):
        example = dataset[index]
        if example["audio"] is None:
            stats.add(example["skip_reason"], example["clip_id"])
        else:
            examples.append(example)
    return examples, stats


def vocabulary_rows(source: str, split: str) -> list[dict] | None:
    """Label, category and attributes of the rows of an audio folder's `train/` split (no audio is
    decoded): the names a model trained on it learned, for zero-shot tasks scored by members. `None`
    when the evaluated split is the training split, or the source is not a folder with one."""
    folder = Path(source, "train")
    if is_builtin(source) or split == "train" or not any((folder / name).is_file() for name in METADATA_FILES):
        return None
    rows = load_audio_text_dataset(folder, probe=False).rows
    columns = [name for name in ("label", "category", "attributes") if name in rows.column_names]
    return [{**row, "attributes": attributes_of(row)} for row in rows.select_columns(columns).to_list()]


def _audio(examples: Sequence[dict]) -> tuple[list[np.ndarray], list[int]]:
    return ([np.asarray(e["audio"]["array"], dtype=np.float32) for e in examples],
            [int(e["audio"]["sampling_rate"]) for e in examples])


# ---------------------------------------------------------------------------------------------
# steps


def probe_split(labels: Sequence[str], seed: int) -> tuple[list[int], list[int]]:
    """Deterministic stratified halves: each class's clips in a seeded order, the first half
    (rounded up) to training, the rest to testing."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for name in sorted(set(labels)):
        members = [i for i, label in enumerate(labels) if label == name]
        members = [members[j] for j in rng.permutation(len(members))]
        half = (len(members) + 1) // 2
        train += members[:half]
        test += members[half:]
    return sorted(train), sorted(test)


def generate_captions(captioner, processor, examples: Sequence[dict], num_beams: int = 3,
                      max_new_tokens: int = 40) -> list[str]:
    """One caption per clip (beam search, `CAPTION_BATCH` clips per call), without special tokens.

    The prompt is the BOS token alone, so `max_new_tokens` new tokens are a `max_length` of one
    more, capped at the decoder's positions (given as `max_length`: captioners saved before
    December 2026 set one in their generation config, and transformers warns on every call when
    both are set)."""
    device = next(captioner.parameters()).device
    max_length = 1 + min(max_new_tokens, captioner.config.decoder_config.max_position_embeddings)
    waveforms, rates = _audio(examples)
    batches = [list(range(start, min(start + CAPTION_BATCH, len(waveforms))))
               for start in range(0, len(waveforms), CAPTION_BATCH)]
    captions = []
    for batch in tqdm(batches, desc="captions", unit="batch"):
        groups = {}
        for i in batch:  # one feature-extractor call per sampling rate
            groups.setdefault(rates[i], []).append(i)
        decoded = {}
        for rate, members in groups.items():
            inputs = processor.feature_extractor([waveforms[i] for i in members], sampling_rate=rate,
                                                 return_tensors="pt").to(device)
            with torch.no_grad():
                ids = captioner.generate(**inputs, num_beams=num_beams, max_length=max_length)
            texts = processor.tokenizer.batch_decode(ids, skip_special_tokens=True)
            decoded.update({i: text.strip() for i, text in zip(members, texts, strict=True)})
        captions += [decoded[i] for i in batch]
    return captions


def evaluate_zero_shot(model, processor, examples: Sequence[dict], embedded: EmbeddedSet, classes: Sequence[str],
                       args: EvalArguments) -> tuple[dict[str, Any], ZeroShotResult]:
    """The zero-shot section: the fast path on the labelled clips, then the pipeline on a seeded
    sample of them with the first template alone (the pipeline takes one `hypothesis_template`)."""
    labelled = [i for i, label in enumerate(embedded.labels) if label is not None]
    waveforms, rates = _audio([examples[i] for i in labelled])
    result = zero_shot_classify(model, processor, waveforms, rates, [embedded.labels[i] for i in labelled], classes,
                                args.templates, audio_embeds=embedded.audio[labelled])
    agreement = None
    if args.pipeline_check > 0:
        rng = np.random.default_rng(args.seed)
        sample = sorted(rng.choice(len(labelled), min(args.pipeline_check, len(labelled)), replace=False).tolist())
        agreement = pipeline_agreement(
            model, processor, [waveforms[i] for i in sample], [rates[i] for i in sample], classes, args.templates[0],
            audio_embeds=embedded.audio[[labelled[i] for i in sample]], device=model.device, progress=True)
    section = {"top1": result.top1, "top5": result.top5, "pipeline_agreement": agreement,
               "num_classes": result.num_classes}
    return section, result


def evaluate_linear_probe(model, processor, embedded: EmbeddedSet, args: EvalArguments) -> dict[str, float] | None:
    """The linear-probe section: trained on a stratified half of the labelled evaluated clips and
    tested on the other half, or trained on `--probe-train` and tested on all of them. `None`
    when either side has no labelled clip."""
    labelled = [i for i, label in enumerate(embedded.labels) if label is not None]
    labels = [embedded.labels[i] for i in labelled]
    if args.probe_train:
        count = args.probe_clips or (len(embedded.labels) if is_builtin(args.probe_train) else None)
        probe_examples, _ = load_examples(args.probe_train, "train", count, desc="probe data")
        probe_examples = [e for e in probe_examples if e.get("label") is not None]
        if not probe_examples or not labelled:
            return None
        train_x = embed_audio(model, processor.feature_extractor, *_audio(probe_examples),
                              batch_seconds=args.batch_seconds, progress=True)
        train_y, test_x, test_y = [e["label"] for e in probe_examples], embedded.audio[labelled], labels
    else:
        train, test = probe_split(labels, args.seed)
        if not train or not test:
            return None
        train_x, train_y = embedded.audio[[labelled[i] for i in train]], [labels[i] for i in train]
        test_x, test_y = embedded.audio[[labelled[i] for i in test]], [labels[i] for i in test]
    return {"accuracy": linear_probe(train_x, train_y, test_x, test_y)["accuracy"]}


def evaluate_captioning(examples: Sequence[dict], args: EvalArguments, device: str) -> tuple[dict[str, Any], list[dict]]:
    """The captioning section and the first generated captions next to their references."""
    captioner, processor = load_model(args.captioner, device, args.trust_remote_code, AutoModelForSpeechSeq2Seq)
    examples = examples[: args.caption_clips] if args.caption_clips else examples
    generated = generate_captions(captioner, processor, examples, args.num_beams, args.max_new_tokens)
    references = [list(e["captions"]) for e in examples]
    shown = [{"clip_id": e["clip_id"], "generated": g, "references": r}
             for e, g, r in zip(examples[:NUM_CAPTION_EXAMPLES], generated, references, strict=False)]
    scores = caption_metrics(generated, references, java_metrics=args.java_metrics)
    return {**captioning_section(scores), "tokenizer": scores["tokenizer"]}, shown


@contextmanager
def _step(bar: tqdm, name: str) -> Iterator[None]:
    bar.set_postfix_str(name)
    yield
    bar.update()


def evaluate_benchmark(model_name: str, args: EvalArguments, device: str) -> dict[str, Any]:
    """`--benchmark`: read the benchmark (a bad layout fails before the model loads), run its
    protocol, plot; the results dict (without `elapsed_seconds`)."""
    try:
        benchmark = read_benchmark(args.benchmark, args.data_dir, args.split)
    except BenchmarkLayoutError as err:
        raise SystemExit(f"slap-eval: {err}") from err
    if benchmark.skipped.total:
        tqdm.write(f"slap-eval: {benchmark.title}: {benchmark.skipped.summary()}")
    model, processor = load_model(model_name, device, args.trust_remote_code)
    try:
        result = run_benchmark(model, processor, benchmark, args.templates, args.batch_seconds, progress=True)
    except BenchmarkLayoutError as err:
        raise SystemExit(f"slap-eval: {err}") from err
    results = benchmark_results(model_name, benchmark, result)
    if args.plots and result.zero_shot is not None:
        plot_confusion_matrix(result.zero_shot.confusion, result.zero_shot.classes,
                              f"{args.output_dir}/confusion_matrix.png", title=f"{benchmark.title} zero-shot")
    elif args.plots:
        write_plots(args.output_dir, result.embedded, [c.clip_id for c in result.clips], results["metrics"])
    return results


def _finish(results: dict[str, Any], output_dir: str, start: float) -> dict[str, Any]:
    """Stamp the run time, write `OUTPUT_DIR/results.json`, print the table and the path."""
    results["elapsed_seconds"] = round(time.perf_counter() - start, 3)
    path = write_results(results, output_dir)
    print(results_table(results))
    print(f"results: {path}")
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the evaluation; returns the results dict that is written to `OUTPUT_DIR/results.json`."""
    start = time.perf_counter()
    model_name, args = parse_arguments(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.benchmark:
        return _finish(evaluate_benchmark(model_name, args, device), args.output_dir, start)
    builtin = is_builtin(args.dataset)
    split = (args.dataset.partition(":")[2] or args.split) if builtin else args.split
    steps = tqdm(total=8 + bool(args.captioner) + args.plots, desc="slap-eval", unit="step")

    with _step(steps, "model"):
        model, processor = load_model(model_name, device, args.trust_remote_code)
    with _step(steps, "data"):
        examples, skipped = load_examples(args.dataset, split, args.num_clips)
        if not examples:
            raise SystemExit(f"slap-eval: no usable clips in {args.dataset} ({skipped.summary()})")
        if skipped.total:
            tqdm.write(f"slap-eval: {skipped.summary()}")
    with _step(steps, "embed"):
        embedded = embed_examples(model, processor, examples, batch_seconds=args.batch_seconds, progress=True)
    metrics: dict[str, Any] = {}
    with _step(steps, "retrieval"):
        metrics["retrieval"] = retrieval_section(
            retrieval_metrics(embedded.audio, embedded.text, embedded.caption_to_audio))
    zero_shot = None
    with _step(steps, "zero-shot"):
        labels = sorted({label for label in embedded.labels if label is not None})
        if labels:  # built-in data: all its classes, whichever the evaluated clips hold
            metrics["zero_shot"], zero_shot = evaluate_zero_shot(
                model, processor, examples, embedded, LABELS if builtin else labels, args)
    with _step(steps, "zero-shot tasks"):
        tasks = resolve_tasks(args.zero_shot_tasks, examples, args.templates)
        vocabulary = vocabulary_rows(args.dataset, split) if any(t.members_field for t in tasks) else None
        sections, skipped_tasks = evaluate_zero_shot_tasks(model, processor, tasks, examples, embedded.audio,
                                                           vocabulary)
        for message in skipped_tasks:
            tqdm.write(f"slap-eval: {message}")
        if sections:
            metrics["zero_shot_tasks"] = sections
    with _step(steps, "modality gap"):
        metrics["modality_gap"] = modality_gap(embedded.audio, embedded.text)
    with _step(steps, "linear probe"):
        probe = evaluate_linear_probe(model, processor, embedded, args)
        if probe is not None:
            metrics["linear_probe"] = probe
    caption_examples: list[dict] = []
    if args.captioner:
        with _step(steps, "captioning"):
            metrics["captioning"], caption_examples = evaluate_captioning(examples, args, device)

    order = ("retrieval", "zero_shot", "zero_shot_tasks", "captioning", "modality_gap", "linear_probe")  # the JSON's layout
    results = json_safe({
        "model": model_name,
        "dataset": {"name": BUILTIN_NAME if builtin else args.dataset, "split": split,
                    "num_clips": len(examples), "skipped": skipped.as_dict()},
        "metrics": {key: metrics[key] for key in order if key in metrics},
        "examples": {"captions": caption_examples},
        "versions": versions(),
    })
    if args.plots:
        with _step(steps, "plots"):
            write_plots(args.output_dir, embedded, [e["clip_id"] for e in examples], results["metrics"], zero_shot)
    steps.close()
    return _finish(results, args.output_dir, start)


def console_main() -> int:
    """Console-script entry point: `main()` with the process's arguments, exit status 0.

    (`sys.exit(main())`, which console scripts do, would print the returned dict and exit 1.)"""
    main()
    return 0


if __name__ == "__main__":
    console_main()
