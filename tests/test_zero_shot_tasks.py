"""Zero-shot tasks by any field of the rows (category, attributes.family...) and `slap-eval`'s section.

    pytest tests/test_zero_shot_tasks.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

from slap_audio.data.sources import EXAMPLE_COLUMNS, load_audio_text_dataset
from slap_audio.eval.cli import main
from slap_audio.eval.zero_shot import (
    CATEGORY_NAMES,
    CORPUS_TASKS,
    DEFAULT_TEMPLATE,
    ZeroShotTask,
    class_embeddings,
    evaluate_zero_shot_tasks,
    resolve_tasks,
)

from conftest import tone

# (label, category, attributes) of the rows of a tiny corpus-like folder: two categories
ROWS = [
    ("acoustic grand piano", "instrument", {"family": "piano", "program": 0, "notes": [60]}),
    ("trumpet", "instrument", {"family": "brass", "program": 56}),
    ("violin", "instrument", {"family": "strings", "program": 40}),
    ("honky-tonk piano", "instrument", {"family": "piano", "program": 3}),
    ("English speech", "speech", {"language": "English", "gender": "female"}),
    ("French speech", "speech", {"language": "French", "gender": "male"}),
    ("English speech", "speech", {"language": "English", "gender": "male"}),
]
INSTRUMENT_ROWS, SPEECH_ROWS = [0, 1, 2, 3], [4, 5, 6]
# the training split's (label, category): the vocabulary `category_by_label` scores categories by
TRAIN_ROWS = [("cello", "instrument"), ("trumpet", "instrument"), ("German speech", "speech"), ("rain", "environmental")]
TASK_KEYS = ["top1", "top5", "chance", "num_clips", "num_classes", "templates"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """An audio folder laid out as `slap-data debian` writes it (`test/metadata.jsonl`), plus a
    row without category or attributes."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "test").mkdir()
    lines = []
    for index, (label, category, attributes) in enumerate(ROWS):
        soundfile.write(root / "test" / f"{index}.flac", tone(0.3, 200.0 + 60 * index, seed=index), 16000)
        lines.append({"file_name": f"{index}.flac", "captions": [f"{label}, clip {index}"], "label": label,
                      "category": category, "attributes": attributes, "source": "test"})
    soundfile.write(root / "test" / "plain.flac", tone(0.3, 900.0), 16000)
    lines.append({"file_name": "plain.flac", "captions": ["a plain tone"]})
    (root / "test" / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in lines))
    (root / "train").mkdir()
    train = [{"file_name": f"{i}.flac", "captions": [label], "label": label, "category": category}
             for i, (label, category) in enumerate(TRAIN_ROWS)]
    for i in range(len(TRAIN_ROWS)):
        soundfile.write(root / "train" / f"{i}.flac", tone(0.2, 300.0 + 50 * i, seed=i), 16000)
    (root / "train" / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in train))
    return root


@pytest.fixture(scope="module")
def examples(corpus):
    dataset = load_audio_text_dataset(corpus, split="test")
    return [dataset[i] for i in range(len(dataset))]


def test_examples_carry_category_and_attributes(corpus, examples):
    streamed = list(load_audio_text_dataset(corpus, split="test", streaming=True))
    for loaded in (examples, streamed):
        assert [e["category"] for e in loaded] == [row[1] for row in ROWS] + [None]
        assert [e["attributes"] for e in loaded] == [row[2] for row in ROWS] + [{}]
        assert all(set(e) == set(EXAMPLE_COLUMNS) and e["audio"] is not None for e in loaded)
    builtin = load_audio_text_dataset("builtin:test", num_clips=1)[0]
    assert set(builtin) == set(EXAMPLE_COLUMNS)
    assert builtin["category"] is None and builtin["attributes"] == {} and builtin["label"]


def test_tasks_select_their_rows_and_classes(examples):
    tasks = resolve_tasks(["auto"], examples)
    assert [t.name for t in tasks] == ["category", "instrument", "family", "drums", "language", "category_by_label"]
    targets = {task.name: task.targets(examples) for task in tasks}
    assert targets["category"] == (INSTRUMENT_ROWS + SPEECH_ROWS,
                                   [CATEGORY_NAMES["instrument"]] * 4 + [CATEGORY_NAMES["speech"]] * 3)
    assert targets["instrument"] == (INSTRUMENT_ROWS, [ROWS[i][0] for i in INSTRUMENT_ROWS])
    assert targets["family"] == (INSTRUMENT_ROWS, ["piano", "brass", "strings", "piano"])
    assert targets["drums"] == ([], [])
    assert targets["language"] == (SPEECH_ROWS, ["English", "French", "English"])
    assert targets["category_by_label"] == targets["category"]

    # rows without a category (the built-in data) get no task by default; named ones still run
    plain = [e for e in examples if e["category"] is None]
    assert resolve_tasks(["auto"], plain) == [] and resolve_tasks(["none"], examples) == []
    custom = resolve_tasks(["gender=attributes.gender@category=speech", "family"], plain, ["A {} voice."])
    assert custom == [ZeroShotTask("gender", "attributes.gender", ("A {} voice.",), ("category", "speech")),
                      CORPUS_TASKS["family"]]
    assert custom[0].targets(examples) == (SPEECH_ROWS, ["female", "male", "male"])
    assert ZeroShotTask.parse("program=attributes.program").targets(examples)[1] == ["0", "56", "40", "3"]
    for bad in ("family=", "=label", "x=label@category", "x=label@=speech"):
        with pytest.raises(ValueError, match="expected NAME=FIELD"):
            resolve_tasks([bad], examples)
    with pytest.raises(ValueError, match="given twice"):
        resolve_tasks(["family", "family=label"], examples)


def _reference_top1(model, tokenizer, audio_embeds, labels, classes, templates) -> float:
    """Brute force: every prompt embedded alone, averaged per class, each clip's best class."""
    with torch.no_grad():
        prompts = [[model.get_text_features(**tokenizer(t.format(c), return_tensors="pt")).pooler_output[0]
                    for t in templates] for c in classes]
    text = torch.nn.functional.normalize(torch.stack([torch.stack(p).mean(0) for p in prompts]), dim=-1)
    best = [classes[int(row.argmax())] for row in audio_embeds @ text.T]
    return float(np.mean([b == label for b, label in zip(best, labels, strict=True)]))


def test_arranged_embeddings_score_perfectly_and_match_brute_force(micro_model, processor, examples):
    """Clip embeddings set to their own class's embedding score 1.0; other tasks agree with a
    brute-force reference; a task no clip belongs to is skipped with a message."""
    tasks = [CORPUS_TASKS[name] for name in ("category", "family", "drums", "language")]
    audio = torch.nn.functional.normalize(torch.randn(len(examples), micro_model.config.projection_dim,
                                                      generator=torch.Generator().manual_seed(0)), dim=-1)
    family = CORPUS_TASKS["family"]
    classes = ["brass", "piano", "strings"]
    arranged = class_embeddings(micro_model, processor.tokenizer, classes, family.templates)
    for index, label in zip(*family.targets(examples), strict=True):
        audio[index] = arranged[classes.index(label)]

    sections, skipped = evaluate_zero_shot_tasks(micro_model, processor, tasks, examples, audio)
    assert list(sections) == ["category", "family", "language"]
    assert skipped == ["zero-shot task 'drums' skipped: label of the clips with category = 'drums': no clip with it"]
    for section in sections.values():
        assert list(section) == TASK_KEYS and section["top5"] is None  # <= 5 classes
    assert sections["family"] == {"top1": 1.0, "top5": None, "chance": 1 / 3, "num_clips": 4, "num_classes": 3,
                                  "templates": list(family.templates)}
    assert sections["category"]["chance"] == sections["language"]["chance"] == 0.5
    assert (sections["category"]["num_clips"], sections["language"]["num_clips"]) == (7, 3)
    for name in ("category", "language"):
        task = CORPUS_TASKS[name]
        indices, labels = task.targets(examples)
        expected = _reference_top1(micro_model, processor.tokenizer, audio[indices], labels, sorted(set(labels)),
                                    task.templates)
        assert sections[name]["top1"] == pytest.approx(expected)

    single = [ZeroShotTask("one", "category", where=("category", "speech"))]
    assert evaluate_zero_shot_tasks(micro_model, processor, single, examples, audio) == (
        {}, ["zero-shot task 'one' skipped: category of the clips with category = 'speech': a single class ('speech')"])


def test_categories_scored_by_their_members(micro_model, processor, corpus, examples):
    """`category_by_label`: a category scores as its best-matching training label ("cello" or
    "trumpet" for the instruments); clips set to one member's prompt embedding score 1.0, and the
    scores equal a brute-force max over each category's members."""
    from slap_audio.eval.cli import vocabulary_rows
    from slap_audio.eval.zero_shot import member_scores

    task = CORPUS_TASKS["category_by_label"]
    vocabulary = vocabulary_rows(str(corpus), "test")
    assert [(row["label"], row["category"]) for row in vocabulary] == TRAIN_ROWS
    assert vocabulary_rows(str(corpus), "train") is None and vocabulary_rows("builtin:test", "test") is None
    classes = [CATEGORY_NAMES["instrument"], CATEGORY_NAMES["speech"]]
    members = task.class_members(vocabulary, classes)
    assert members == {classes[0]: ["cello", "trumpet"], classes[1]: ["German speech"]}
    assert task.class_members(examples, classes)[classes[1]] == ["English speech", "French speech"]
    assert task.class_members([], classes) == {name: [name] for name in classes}  # no member: the name itself
    shared = [*vocabulary, {"label": "cello", "category": "speech"}]  # a name under two classes tells none apart
    assert task.class_members(shared, classes) == {classes[0]: ["trumpet"], classes[1]: ["German speech"]}

    audio = torch.nn.functional.normalize(torch.randn(len(examples), micro_model.config.projection_dim,
                                                      generator=torch.Generator().manual_seed(1)), dim=-1)
    prompts = class_embeddings(micro_model, processor.tokenizer, ["trumpet", "German speech"], task.templates)
    indices, labels = task.targets(examples)
    for index, label in zip(indices, labels, strict=True):
        audio[index] = prompts[classes.index(label)]
    sections, _ = evaluate_zero_shot_tasks(micro_model, processor, [task], examples, audio, vocabulary)
    assert sections["category_by_label"] == {
        "top1": 1.0, "top5": None, "chance": 0.5, "num_clips": 7, "num_classes": 2, "templates": [DEFAULT_TEMPLATE],
        "num_members": 3}
    assert evaluate_zero_shot_tasks(micro_model, processor, [task], examples, audio) == ({}, [
        "zero-shot task 'category_by_label' skipped: no training-split metadata names the classes' labels "
        "(it needs an audio folder with train/metadata)"])  # never the evaluated clips' own labels
    with torch.no_grad():
        scores = member_scores(micro_model, processor.tokenizer, audio[indices], members, task.templates)
        brute = [[max(float(audio[i] @ class_embeddings(micro_model, processor.tokenizer, [m], task.templates)[0])
                      for m in members[name]) for name in classes] for i in indices]
    torch.testing.assert_close(scores, torch.tensor(brute), atol=1e-5, rtol=1e-5)


def test_slap_eval_in_a_fresh_process_writes_the_tasks_section(micro_checkpoint, corpus, tmp_path):
    out = tmp_path / "eval"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "slap_audio.eval.cli", str(micro_checkpoint), "--dataset", str(corpus),
                          "--split", "test", "--output-dir", str(out), "--pipeline-check", "0", "--no-plots"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["num_clips"] == len(ROWS) + 1
    metrics = results["metrics"]
    assert list(metrics)[:3] == ["retrieval", "zero_shot", "zero_shot_tasks"]
    tasks = metrics["zero_shot_tasks"]
    assert list(tasks) == ["category", "instrument", "family", "language", "category_by_label"]
    assert {name: (t["num_clips"], t["num_classes"], t["chance"]) for name, t in tasks.items()} == {
        "category": (7, 2, 0.5), "instrument": (4, 4, 0.25), "family": (4, 3, 1 / 3), "language": (3, 2, 0.5),
        "category_by_label": (7, 2, 0.5)}
    assert all(list(t)[:6] == TASK_KEYS and 0.0 <= t["top1"] <= 1.0 for t in tasks.values())
    assert tasks["category_by_label"]["num_members"] == 3
    assert tasks["language"]["templates"] == list(CORPUS_TASKS["language"].templates)
    assert "slap-eval: zero-shot task 'drums' skipped: label of the clips with category" in run.stdout
    lines = run.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.split()[:3] == ["zero-shot", "task", "top1"]):]
    assert [line.split()[0] for line in table[1:6]] == list(tasks)
    assert table[3].split()[1:] == [f"{tasks['family']['top1']:.4f}", "-", "0.3333", "4", "3"]


def test_task_specs_on_the_command_line(micro_checkpoint, corpus, tmp_path):
    results = main([str(micro_checkpoint), "--dataset", str(corpus), "--split", "test", "--output-dir", str(tmp_path),
                    "--pipeline-check", "0", "--no-plots", "--zero-shot-tasks", "gender=attributes.gender@category=speech",
                    "drums", "--templates", "A {} voice."])
    assert list(results["metrics"]["zero_shot_tasks"]) == ["gender"]
    assert results["metrics"]["zero_shot_tasks"]["gender"]["templates"] == ["A {} voice."]
    none = main([str(micro_checkpoint), "--dataset", str(corpus), "--split", "test", "--output-dir", str(tmp_path),
                 "--pipeline-check", "0", "--no-plots", "--zero-shot-tasks", "none"])
    assert "zero_shot_tasks" not in none["metrics"]
    with pytest.raises(SystemExit) as exit_info:  # a malformed spec stops before any model is loaded
        main([str(tmp_path / "no-such-model"), "--zero-shot-tasks", "gender=attributes.gender@speech"])
    assert exit_info.value.code == 2
