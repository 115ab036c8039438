"""Zero-shot audio classification with prompt templates (SPEC §6), fast and through the pipeline.

Two paths that must agree:

- the **fast batched path**: every clip is embedded once (`embed_audio`, packed by duration), every
  class prompt once (`class_embeddings`); scores = audio @ class_embeddings.T `(num_clips,
  num_classes)`. With several templates, a class's prompt embeddings are averaged and
  re-normalised (CLIP's prompt ensembling, LAION-CLAP's zero-shot protocol).
- the **real pipeline**, `transformers.pipeline("zero-shot-audio-classification")`, one clip at a
  time (`pipeline_agreement`): it runs `SlapModel.forward` on the clip and the prompts
  `hypothesis_template.format(label)` and ranks `logits_per_audio`. Its top-1 label must be the
  fast path's with the same single template.

Metrics (`zero_shot_metrics`), ties counted against the clip as in `retrieval.py`: the 0-based
position of the true class is `#{classes scoring > s_true} + #{other classes scoring == s_true}`,
so a constant model earns no free hits. top-k is reported only when k < num_classes (with k >=
num_classes every clip is a hit). The prediction behind per-class accuracy and the confusion
matrix is the best-scoring class, a tied wrong class taking precedence over the true one, so
`top1 == trace(confusion) / num_clips`.

Usage::

    from slap_audio.eval.zero_shot import zero_shot_classify
    result = zero_shot_classify(model, processor, waveforms, rates, labels, classes=LABELS,
                                templates=["This is a sound of {}."])
    print(result.top1, result.top5, result.per_class_accuracy, result.confusion)

Zero-shot **tasks** classify by any field of the examples, on a subset of them: a `ZeroShotTask`
names the field (`label`, `category`, `attributes.<key>`), the rows (`where`: category = speech),
the prompt templates and readable class names. `evaluate_zero_shot_tasks` scores each on the
fast path with the clips' embeddings computed once. `CORPUS_TASKS` are those of the Debian corpus
(`slap-data debian`), beside chance (1 / classes present):

- `category`: all clips; "This is a sound of {}." over `CATEGORY_NAMES` (instrument → "a musical
  instrument", drums → "drums", speech → "speech", environmental → "an environmental sound"; any
  other category is prompted as written);
- `instrument`: instrument clips, their `label` (the GM program name);
- `family`: instrument clips, `attributes.family` (the GM family: "piano", "brass"...);
- `drums`: drum clips, their `label` (the drum instrument);
- `language`: speech clips, `attributes.language` ("Italian"...);
- `category_by_label`: the category again, each scored by its best-matching **member**: the labels
  its clips carry in the training split (the names the model learned: "trumpet", "snare drum",
  "Italian speech", "rain"...), one prompt each — hierarchical zero-shot, the class names of an
  ontology instead of one name per category. No audio of any class is used, only names; a name
  found under two categories is left out, and without a `train/` split the task is skipped.

The `slap-eval` command (`eval/cli.py`) runs both paths on an evaluation set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import pipeline

from slap_audio.eval.embed import DEFAULT_BATCH_SECONDS, embed_audio, embed_texts
from slap_audio.modeling_slap.feature_extraction_slap import (
    resample_waveform,
    waveform_to_mono_float,
)

DEFAULT_TEMPLATE = "This is a sound of {}."  # the pipeline's default `hypothesis_template`
PIPELINE_TASK = "zero-shot-audio-classification"
AGREEMENT_TOLERANCE = 1e-5  # cosine; the two paths differ by float rounding (packing, padding)
AUTO_TASKS = "auto"  # `resolve_tasks`: `CORPUS_TASKS` when the examples carry a category
NO_TASKS = "none"


@dataclass
class ZeroShotResult:
    """Zero-shot scores and metrics of a labelled set of clips.

    Attributes:
        classes: class names, the columns of `scores` and of `confusion`.
        scores: (num_clips, num_classes) cosine similarities of clips and class embeddings.
        labels: the true class index of each clip (-1 for a label outside `classes`: an error).
        predictions: predicted class index of each clip (ties resolved against the clip).
        top1, top5: accuracies in [0, 1]; `None` when k >= num_classes (trivially 1).
        per_class_accuracy: top-1 accuracy of the clips of each class that has clips.
        confusion: (num_classes, num_classes) counts, rows = true class, columns = prediction.
    """

    classes: list[str]
    scores: torch.Tensor
    labels: np.ndarray
    predictions: np.ndarray
    top1: float | None
    top5: float | None
    per_class_accuracy: dict[str, float] = field(default_factory=dict)
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def format_prompts(classes: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Prompts class-major: `[t0(c0), t1(c0), ..., t0(c1), ...]` (`len(classes) * len(templates)`)."""
    if not templates:
        raise ValueError("at least one prompt template is needed")
    for template in templates:
        if "{}" not in template:
            raise ValueError(f"template {template!r} has no '{{}}' for the class name")
    return [template.format(name) for name in classes for template in templates]


@torch.no_grad()
def class_embeddings(
    model, tokenizer, classes: Sequence[str], templates: Sequence[str] = (DEFAULT_TEMPLATE,), batch_size: int = 64
) -> torch.Tensor:
    """L2-normalised class embeddings `(num_classes, dim)`: each class's prompt embeddings (one per
    template) averaged, then re-normalised. One template gives that prompt's embedding."""
    prompts = format_prompts(classes, templates)
    text = embed_texts(model, tokenizer, prompts, batch_size=batch_size)  # (classes * templates, dim)
    text = text.reshape(len(classes), len(templates), -1).mean(1)
    return torch.nn.functional.normalize(text, dim=-1)


def label_indices(labels: Sequence[str | None], classes: Sequence[str]) -> np.ndarray:
    """Class index of each label; -1 for a label that is not a class (scored as an error)."""
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index.get(label, -1) for label in labels], dtype=np.int64)


def zero_shot_metrics(scores, labels: Sequence[str | None], classes: Sequence[str]) -> ZeroShotResult:
    """top-1 / top-5 accuracy, per-class accuracy and confusion matrix from `(num_clips,
    num_classes)` scores and each clip's true label (pessimistic ties, see the module docstring)."""
    scores = torch.as_tensor(scores).detach().float().cpu()
    classes = list(classes)
    if scores.ndim != 2 or scores.shape != (len(labels), len(classes)):
        raise ValueError(f"scores must be (num_clips, num_classes) = ({len(labels)}, {len(classes)}), "
                         f"got {tuple(scores.shape)}")
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("non-finite zero-shot scores")
    target = torch.as_tensor(label_indices(labels, classes))  # (N,), -1 for an unknown label
    known = target >= 0
    true_score = scores.gather(1, target.clamp(min=0)[:, None])  # (N, 1)
    others = torch.ones_like(scores, dtype=torch.bool)  # (N, C): False at each clip's true class
    others[torch.nonzero(known)[:, 0], target[known]] = False
    position = (scores > true_score).sum(1) + ((scores == true_score) & others).sum(1)
    position = torch.where(known, position, torch.full_like(position, len(classes)))  # unknown: a miss

    # prediction: the best class; among tied best classes a wrong one before the true one
    is_best = scores == scores.max(1, keepdim=True).values
    tied_wrong = is_best & others
    predictions = torch.where(tied_wrong.any(1), tied_wrong.float().argmax(1), is_best.float().argmax(1))

    def accuracy(k: int) -> float | None:
        if k >= len(classes) or not len(target):
            return None
        return float((position < k).double().mean())

    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (target[known].numpy(), predictions[known].numpy()), 1)
    per_class = {classes[c]: float(confusion[c, c] / confusion[c].sum()) for c in range(len(classes))
                 if confusion[c].sum()}
    return ZeroShotResult(classes, scores, target.numpy(), predictions.numpy(), accuracy(1), accuracy(5),
                          per_class, confusion)


def zero_shot_classify(
    model,
    processor,
    waveforms: Sequence[np.ndarray],
    sampling_rates: Sequence[int],
    labels: Sequence[str | None],
    classes: Sequence[str] | None = None,
    templates: Sequence[str] = (DEFAULT_TEMPLATE,),
    *,
    audio_embeds: torch.Tensor | None = None,
    batch_seconds: float = DEFAULT_BATCH_SECONDS,
    progress: bool = False,
) -> ZeroShotResult:
    """The fast batched path end to end: embed the clips (unless `audio_embeds` are given) and
    the class prompts once, score, and compute `zero_shot_metrics`.

    `classes` defaults to the sorted distinct labels. Pass `audio_embeds` (e.g. from
    `embed_examples`) to reuse embeddings of the same clips.
    """
    if classes is None:
        classes = sorted({label for label in labels if label is not None})
    was_training = model.training
    model.eval()
    try:
        if audio_embeds is None:
            audio_embeds = embed_audio(model, processor.feature_extractor, waveforms, sampling_rates,
                                       batch_seconds=batch_seconds, progress=progress)
        classes_embeds = class_embeddings(model, processor.tokenizer, classes, templates)
    finally:
        model.train(was_training)
    return zero_shot_metrics(audio_embeds @ classes_embeds.T, labels, classes)


def pipeline_input(waveform: np.ndarray, sampling_rate: int, target_rate: int) -> np.ndarray:
    """A clip as the pipeline takes it: float32 mono at the feature extractor's rate (the pipeline
    cannot resample or downmix), converted exactly as the feature extractor would."""
    mono = waveform_to_mono_float(waveform, 0)
    return resample_waveform(mono, int(sampling_rate), int(target_rate)).numpy()


def pipeline_predictions(
    model,
    waveforms: Sequence[np.ndarray],
    sampling_rates: Sequence[int],
    classes: Sequence[str],
    template: str = DEFAULT_TEMPLATE,
    *,
    tokenizer=None,
    feature_extractor=None,
    trust_remote_code: bool = False,
    device: str | int | torch.device | None = None,
    progress: bool = False,
) -> list[str]:
    """Top-1 label of each clip from `transformers.pipeline("zero-shot-audio-classification")`.

    `model` is a loaded `SlapModel` (then pass `tokenizer` and `feature_extractor`) or a
    checkpoint path / Hub id the pipeline loads itself.
    """
    classifier = pipeline(PIPELINE_TASK, model=model, tokenizer=tokenizer, feature_extractor=feature_extractor,
                          trust_remote_code=trust_remote_code, device=device)
    rate = classifier.feature_extractor.sampling_rate
    top = []
    for waveform, sampling_rate in tqdm(list(zip(waveforms, sampling_rates, strict=True)), desc="pipeline",
                                        disable=not progress):
        result = classifier(pipeline_input(waveform, sampling_rate, rate), candidate_labels=list(classes),
                            hypothesis_template=template)
        top.append(result[0]["label"])
    return top


def agreement_rate(scores, predicted: Sequence[str], classes: Sequence[str],
                   tolerance: float = AGREEMENT_TOLERANCE) -> float:
    """Fraction of clips whose `predicted` label is the fast path's best class: its fast score is
    within `tolerance` of the clip's best score (exact float ties and rounding-level near-ties
    cannot be ordered consistently by two computations)."""
    scores = torch.as_tensor(scores).float()
    if len(predicted) != scores.shape[0]:
        raise ValueError("one predicted label per clip is needed")
    if not len(predicted):
        return float("nan")
    column = torch.as_tensor(label_indices(predicted, classes))  # -1: not a class, never agrees
    chosen = scores.gather(1, column.clamp(min=0)[:, None])[:, 0]
    agree = (column >= 0) & (chosen >= scores.max(1).values - tolerance)
    return float(agree.double().mean())


def pipeline_agreement(
    model,
    processor,
    waveforms: Sequence[np.ndarray],
    sampling_rates: Sequence[int],
    classes: Sequence[str],
    template: str = DEFAULT_TEMPLATE,
    *,
    audio_embeds: torch.Tensor | None = None,
    device: str | int | torch.device | None = None,
    progress: bool = False,
) -> float:
    """Agreement in [0, 1] of the pipeline's top-1 labels with the fast path's, with the same
    single `template` (the pipeline's `hypothesis_template`), on the given clips.

    `audio_embeds` (the fast path's embeddings of these clips) are computed when not given.
    """
    fast = zero_shot_classify(model, processor, waveforms, sampling_rates, [None] * len(waveforms), classes,
                              [template], audio_embeds=audio_embeds)
    predicted = pipeline_predictions(model, waveforms, sampling_rates, classes, template,
                                     tokenizer=processor.tokenizer, feature_extractor=processor.feature_extractor,
                                     device=device, progress=progress)
    return agreement_rate(fast.scores, predicted, classes)


# ---------------------------------------------------------------------------------------------
# zero-shot tasks: classification by any field, on a subset of the clips


def example_field(example: Mapping[str, Any], path: str) -> str | None:
    """The value of `path` in an example as text: a top-level key (`label`, `category`) or a dotted
    path into a dict (`attributes.family`). `None` when missing, empty, or a list / dict."""
    value: Any = example
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    if value is None or isinstance(value, (Mapping, list, tuple)) or not str(value).strip():
        return None
    return str(value).strip()


@dataclass
class ZeroShotTask:
    """A zero-shot classification task over one field of the examples, on the rows it selects.

    Args:
        name: the task's key in the results (`category`, `family`...).
        label_field: where each clip's class is: `label`, `category` or `attributes.<key>` (`example_field`).
        templates: prompt templates (`{}` = class name), averaged per class.
        where: `(field, value)`: only clips whose `field` has this value (`None`: every clip).
        class_names: class value → the text put into the templates (a value not listed is used as is).
        members_field: score each class by its best member instead of its own name: the values of
            this field (e.g. `label`) among the vocabulary rows of that class (`class_members`).
    """

    name: str
    label_field: str
    templates: tuple[str, ...] = (DEFAULT_TEMPLATE,)
    where: tuple[str, str] | None = None
    class_names: Mapping[str, str] = field(default_factory=dict)
    members_field: str | None = None

    @classmethod
    def parse(cls, spec: str, templates: Sequence[str] = (DEFAULT_TEMPLATE,)) -> ZeroShotTask:
        """A task from `NAME=FIELD` or `NAME=FIELD@WHERE_FIELD=VALUE`, e.g.
        `gender=attributes.gender@category=speech`, with the given templates."""
        name, _, rest = spec.partition("=")
        target, _, where = rest.partition("@")
        where_field, _, where_value = where.partition("=")
        if not name.strip() or not target.strip() or (where and not (where_field.strip() and where_value.strip())):
            raise ValueError(f"zero-shot task {spec!r}: expected NAME=FIELD or NAME=FIELD@FIELD=VALUE, or one of "
                             f"{[AUTO_TASKS, NO_TASKS, *CORPUS_TASKS]}")
        return cls(name.strip(), target.strip(), tuple(templates),
                   (where_field.strip(), where_value.strip()) if where else None)

    def describe(self) -> str:
        where = f" of the clips with {self.where[0]} = {self.where[1]!r}" if self.where else ""
        return f"{self.label_field}{where}"

    def targets(self, examples: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[str]]:
        """Indices of the clips the task covers (selected by `where`, with a value of `label_field`) and
        their classes as prompt text."""
        indices, classes = [], []
        for index, example in enumerate(examples):
            if self.where is not None and example_field(example, self.where[0]) != self.where[1]:
                continue
            value = example_field(example, self.label_field)
            if value is not None:
                indices.append(index)
                classes.append(self.class_names.get(value, value))
        return indices, classes

    def class_members(self, rows: Sequence[Mapping[str, Any]], classes: Sequence[str]) -> dict[str, list[str]]:
        """Each class's members: the distinct `members_field` values of the rows of that class
        (sorted). A name found under several classes (a "whistle" both instrument and drum) tells
        them apart from no clip and is left out; a class left without names is its own single member."""
        indices, row_classes = self.targets(rows)
        members: dict[str, set[str]] = {name: set() for name in classes}
        owners: dict[str, set[str]] = {}
        for index, name in zip(indices, row_classes, strict=True):
            member = example_field(rows[index], self.members_field)
            if member is not None:
                owners.setdefault(member, set()).add(name)
                if name in members:
                    members[name].add(member)
        shared = {member for member, found in owners.items() if len(found) > 1}
        return {name: sorted(found - shared) or [name] for name, found in members.items()}


def member_scores(model, tokenizer, audio_embeds: torch.Tensor, members: Mapping[str, Sequence[str]],
                  templates: Sequence[str]) -> torch.Tensor:
    """`(num_clips, num_classes)` scores, a class's being its best member's (the members' prompt
    embeddings from `class_embeddings`; classes in the order of `members`)."""
    names = [member for found in members.values() for member in found]
    text = class_embeddings(model, tokenizer, names, templates)
    scores = audio_embeds @ text.T
    bounds = np.cumsum([0, *(len(found) for found in members.values())])
    return torch.stack([scores[:, start:end].max(1).values for start, end in zip(bounds[:-1], bounds[1:], strict=True)], 1)


# Readable names of the Debian corpus's categories in the prompts.
CATEGORY_NAMES = {"instrument": "a musical instrument", "drums": "drums", "speech": "speech",
                  "environmental": "an environmental sound"}
CORPUS_TASKS = {task.name: task for task in (
    ZeroShotTask("category", "category", (DEFAULT_TEMPLATE,), class_names=CATEGORY_NAMES),
    ZeroShotTask("instrument", "label", (DEFAULT_TEMPLATE,), ("category", "instrument")),
    ZeroShotTask("family", "attributes.family",
                 ("This is a sound of {} music.", "This is the sound of a {} instrument."), ("category", "instrument")),
    ZeroShotTask("drums", "label", (DEFAULT_TEMPLATE,), ("category", "drums")),
    ZeroShotTask("language", "attributes.language", ("This is speech in {}.", "Someone speaking {}."),
                 ("category", "speech")),
    ZeroShotTask("category_by_label", "category", (DEFAULT_TEMPLATE,), class_names=CATEGORY_NAMES,
                 members_field="label"),
)}


def resolve_tasks(specs: Sequence[str], examples: Sequence[Mapping[str, Any]],
                  templates: Sequence[str] = (DEFAULT_TEMPLATE,)) -> list[ZeroShotTask]:
    """Tasks from command-line specs: `auto` (`CORPUS_TASKS` when any example has a `category`,
    none otherwise), `none`, a name of `CORPUS_TASKS`, or `NAME=FIELD[@FIELD=VALUE]` (with
    `templates`). Raises `ValueError` on a malformed spec or a name given twice."""
    tasks: list[ZeroShotTask] = []
    for spec in specs:
        if spec == AUTO_TASKS:
            if any(example_field(e, "category") is not None for e in examples):
                tasks += CORPUS_TASKS.values()
        elif spec in CORPUS_TASKS:
            tasks.append(CORPUS_TASKS[spec])
        elif spec != NO_TASKS:
            tasks.append(ZeroShotTask.parse(spec, templates))
    names = [task.name for task in tasks]
    if len(set(names)) < len(names):
        raise ValueError(f"zero-shot task names given twice: {names}")
    return tasks


def evaluate_zero_shot_tasks(model, processor, tasks: Sequence[ZeroShotTask], examples: Sequence[Mapping[str, Any]],
                             audio_embeds: torch.Tensor, vocabulary: Sequence[Mapping[str, Any]] | None = None,
                             ) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Score each task on the fast path with the clips' embeddings `audio_embeds` `(num_clips,
    dim)`, computed once for all tasks: by class names (`zero_shot_classify`), or, for a task with a
    `members_field`, by its classes' members found in the `vocabulary` rows (the training split's
    metadata; `member_scores`).

    Returns:
        {task name: {"top1", "top5", "chance", "num_clips", "num_classes", "templates"}} with
        chance = 1 / the number of classes present (member tasks add "num_members", the names
        prompted), and one message per task skipped: no clip has its field, a single class, or a
        member task without vocabulary rows that name its classes (the evaluated clips' own labels
        are never used: they would be the test's answers).
    """
    sections, skipped = {}, []
    for task in tasks:
        indices, labels = task.targets(examples)
        classes = sorted(set(labels))
        if len(classes) < 2:
            found = f"a single class ({classes[0]!r})" if classes else "no clip with it"
            skipped.append(f"zero-shot task {task.name!r} skipped: {task.describe()}: {found}")
            continue
        section: dict[str, Any] = {}
        if task.members_field is None:
            result = zero_shot_classify(model, processor, (), (), labels, classes, task.templates,
                                        audio_embeds=audio_embeds[indices])
        else:
            members = task.class_members(vocabulary or [], classes)
            if all(found == [name] for name, found in members.items()):
                skipped.append(f"zero-shot task {task.name!r} skipped: no training-split metadata names the "
                               f"classes' {task.members_field}s (it needs an audio folder with train/metadata)")
                continue
            with torch.no_grad():
                scores = member_scores(model, processor.tokenizer, audio_embeds[indices], members, task.templates)
            result = zero_shot_metrics(scores, labels, classes)
            section = {"num_members": sum(map(len, members.values()))}
        sections[task.name] = {"top1": result.top1, "top5": result.top5, "chance": 1.0 / len(classes),
                               "num_clips": len(indices), "num_classes": len(classes),
                               "templates": list(task.templates), **section}
    return sections, skipped
