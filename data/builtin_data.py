"""The built-in procedural audio–caption dataset (SPEC §7): deterministic clips with captions.

Every clip is a function of `(seed, split, index)` alone: the three numbers seed a
`numpy.random.SeedSequence`, whose children draw the clip plan, render the audio and write the
captions. Any clip can be generated on its own, in any order, in any process, and the same seed
gives the same float32 audio bytes and text. Audio samples lie on the 24-bit PCM grid, so FLOAT
and PCM_24 WAV files both store them exactly.

A clip (1–30 s, 16 kHz mono) is 1–4 *segments* in sequence, each one sound event (24 kinds, see
`sound_events.EVENT_KINDS`) at a loudness level, sometimes with a simultaneous companion event,
sometimes all over a quiet background *bed* (rain, hum, wind…), with short gaps, pauses and
leading/trailing silences. `captions.write_captions` describes it in several paraphrases.

Splits: `train`, `validation`, `test` share one distribution; `test_compositional` clips each
contain a pair of event kinds that never co-occur in the other splits (`HELD_OUT_PAIRS`: about one
pair in eight, chosen by a CRC-32 of the pair's names), to test composition.

Usage::

    from slap_audio.data.builtin_data import build_dataset, generate_clip, write_audiofolder
    clip = generate_clip(seed=0, split="test", index=3)   # dict: audio, captions, label, ...
    test = build_dataset("test")                          # datasets.Dataset, 250 clips
    write_audiofolder("data/builtin", {"train": 2000, "test": 250})
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import multiprocessing
import os
import sys
import zlib
from pathlib import Path

import numpy as np

from slap_audio.data.captions import write_captions
from slap_audio.data.sound_events import EVENT_KINDS, SAMPLING_RATE, frame_loudness, set_duration

SPLITS = ("train", "validation", "test", "test_compositional")
SPLIT_IDS = {"train": 0, "validation": 1, "test": 2, "test_compositional": 3}  # seed-stream ids
DEFAULT_NUM_CLIPS = {"train": 2000, "validation": 200, "test": 250, "test_compositional": 250}
# audiofolder's split detection maps any folder named "test_*" to the test split, so the
# compositional split is written to a folder whose name contains no split keyword
SPLIT_DIRS = {
    "train": "train",
    "validation": "validation",
    "test": "test",
    "test_compositional": "compositional",
}

KIND_NAMES = tuple(EVENT_KINDS)
LABELS = [EVENT_KINDS[k].label for k in KIND_NAMES]  # zero-shot class names, one per event kind
prompt_templates = [
    "This is a sound of {}.",
    "A recording of {}.",
    "The sound of {}.",
    "{} can be heard.",
    "An audio clip of {}.",
]
HELD_OUT_PAIRS = frozenset(
    pair
    for pair in itertools.combinations(sorted(KIND_NAMES), 2)
    if zlib.crc32("+".join(pair).encode()) % 8 == 0
)

LEVEL_RMS = {
    "quiet": 0.04,
    "moderate": 0.12,
    "loud": 0.35,
}  # loudest-20-ms-frame RMS: ~-28/-18/-9 dBFS
EVENT_PEAK = 0.9  # no single event peaks above this
NOISE_FLOOR_RMS = 3e-4  # -70 dBFS background so that "silence" is not digital zero
MIN_CLIP_SECONDS = 1.0
MIN_MAX_DURATION = 2.5  # shortest usable `max_duration`


def kind_pairs(kinds) -> set[tuple[str, str]]:
    """All unordered pairs (sorted tuples) of distinct event kinds."""
    return set(itertools.combinations(sorted(set(kinds)), 2))


def _seed_sequence(seed: int, split: str, index: int) -> np.random.SeedSequence:
    if split not in SPLIT_IDS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if index < 0 or seed < 0:
        raise ValueError("seed and index must be non-negative")
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(SPLIT_IDS[split], int(index)))


# ---------------------------------------------------------------------------------------------
# plan: which events, when, how loud


def _choose(rng: np.random.Generator, options) -> str:
    return str(options[int(rng.integers(len(options)))])


def _sample_kinds(rng, split, n_main, want_companion, want_bed):
    stretchable = [k for k in KIND_NAMES if EVENT_KINDS[k].stretchable]
    textures = [k for k in KIND_NAMES if EVENT_KINDS[k].texture]
    held_out = sorted(HELD_OUT_PAIRS)
    for _ in range(1000):
        if split == "test_compositional":  # plant one held-out pair among the main events
            pair = held_out[int(rng.integers(len(held_out)))]
            others = [k for k in KIND_NAMES if k not in pair]
            main = [str(k) for k in rng.choice(others, n_main - 2, replace=False)]
            for slot, kind in sorted(zip(rng.choice(n_main, 2, replace=False), pair, strict=True)):
                main.insert(int(slot), kind)
        else:
            main = [str(k) for k in rng.choice(KIND_NAMES, n_main, replace=False)]
        used = set(main)
        companions = []
        for want in want_companion:
            kind = _choose(rng, [k for k in stretchable if k not in used]) if want else None
            companions.append(kind)
            used.add(kind)
        bed = _choose(rng, [k for k in textures if k not in used]) if want_bed else None
        used = {k for k in used | {bed} if k is not None}
        if split == "test_compositional" or not kind_pairs(used) & HELD_OUT_PAIRS:
            return main, companions, bed
    raise RuntimeError("could not draw event kinds")  # pragma: no cover - probability ~0


def _event(kind: str, role: str, start: float, level: str, params: dict) -> dict:
    return {
        "kind": kind,
        "label": EVENT_KINDS[kind].label,
        "role": role,
        "start": round(start, 3),
        "duration": params["duration"],
        "level": level,
        "params": params,
    }


def clip_plan(seed: int, split: str, index: int, max_duration: float = 30.0) -> dict:
    """The clip's structure (events, times, levels, silences) without rendering audio — cheap."""
    if max_duration < MIN_MAX_DURATION:
        raise ValueError(f"max_duration must be at least {MIN_MAX_DURATION} s")
    rng = np.random.default_rng(_seed_sequence(seed, split, index).spawn(3)[0])
    levels, level_p = ("quiet", "moderate", "loud"), (0.3, 0.4, 0.3)
    while True:  # redraw the structure until its shortest realisation fits max_duration
        n_main = int(rng.choice([1, 2, 3, 4], p=[0.3, 0.35, 0.25, 0.1]))
        if split == "test_compositional":
            n_main = max(2, n_main)
        want_companion = list(rng.random(n_main) < 0.12)
        main, companions, bed = _sample_kinds(
            rng, split, n_main, want_companion, rng.random() < 0.3
        )
        silence_before, silence_after = bool(rng.random() < 0.1), bool(rng.random() < 0.1)
        lead_in = rng.uniform(1.0, 2.0) if silence_before else rng.uniform(0.05, 0.4)
        lead_out = rng.uniform(1.0, 2.0) if silence_after else rng.uniform(0.05, 0.4)
        pauses = [False] + [bool(p) for p in rng.random(n_main - 1) < 0.2]
        gaps = [rng.uniform(0.6, 2.0) if p else rng.uniform(0.05, 0.25) for p in pauses]
        gaps[0] = 0.0
        budget = max_duration - lead_in - lead_out - sum(gaps) - 0.01 * n_main
        mins = [EVENT_KINDS[k].min_duration for k in main]
        if budget >= sum(mins):
            break

    segments, events, t = [], [], lead_in
    for i, kind in enumerate(main):
        params = EVENT_KINDS[kind].sample(rng, budget - sum(mins[i + 1 :]))
        budget -= params["duration"]
        t += gaps[i]
        event = _event(kind, "main", t, str(rng.choice(levels, p=level_p)), params)
        companion = None
        if companions[i] is not None and params["duration"] >= 0.5:
            sampled = EVENT_KINDS[companions[i]].sample(
                rng, max(params["duration"], EVENT_KINDS[companions[i]].min_duration)
            )
            companion = _event(
                companions[i],
                "companion",
                t,
                str(rng.choice(levels, p=level_p)),
                set_duration(companions[i], sampled, params["duration"]),
            )
        segments.append({"main": event, "companion": companion, "pause_before": pauses[i]})
        events += [e for e in (event, companion) if e is not None]
        t += params["duration"]
    bed_event = None
    if bed is not None:
        sampled = EVENT_KINDS[bed].sample(rng, max_duration)
        bed_event = _event(
            bed,
            "background",
            lead_in,
            str(rng.choice(levels[:2], p=(0.6, 0.4))),
            set_duration(bed, sampled, t - lead_in),
        )
        events.append(bed_event)
    total_samples = int(round(max(t + lead_out, MIN_CLIP_SECONDS) * SAMPLING_RATE))
    return {
        "segments": segments,
        "bed": bed_event,
        "events": events,
        "silence_before": silence_before,
        "silence_after": silence_after,
        "num_samples": total_samples,
    }


def dominant_label(events: list[dict]) -> str:
    """Label of the event with the most energy (level RMS squared times duration); first wins ties."""
    energies = [LEVEL_RMS[e["level"]] ** 2 * e["duration"] for e in events]
    return events[int(np.argmax(energies))]["label"]


# ---------------------------------------------------------------------------------------------
# audio


def render_plan(plan: dict, seed_sequence: np.random.SeedSequence) -> np.ndarray:
    """Mix a plan's events into float32 audio on the 24-bit grid, peak at most 0.99."""
    n = plan["num_samples"]
    mix = np.zeros(n)
    children = seed_sequence.spawn(len(plan["events"]) + 1)
    for event, child in zip(plan["events"], children[:-1], strict=True):
        x = EVENT_KINDS[event["kind"]].render(event["params"], np.random.default_rng(child))
        loudness, peak = frame_loudness(x), float(np.max(np.abs(x)))
        gain = LEVEL_RMS[event["level"]] / loudness if loudness > 0 else 0.0
        gain = min(gain, EVENT_PEAK / peak) if peak > 0 else 0.0
        start = int(round(event["start"] * SAMPLING_RATE))
        stop = min(n, start + len(x))
        mix[start:stop] += gain * x[: stop - start]
    floor = np.random.default_rng(children[-1]).random(n)  # uniform noise: cheaper than Gaussian
    mix += (floor - 0.5) * (NOISE_FLOOR_RMS * np.sqrt(12.0))
    peak = float(np.max(np.abs(mix)))
    if peak > 0.99:  # overlapping loud events: scale the whole clip down
        mix *= 0.99 / peak
    mix *= 2.0**23  # onto the 24-bit grid, in place
    np.round(mix, out=mix)
    mix /= 2.0**23
    return mix.astype(np.float32)


def clip_id(seed: int, split: str, index: int) -> str:
    return f"slap-{split}-s{seed}-{index:06d}"


def generate_clip(
    seed: int, split: str, index: int, *, max_duration: float = 30.0, num_captions: int = 5
) -> dict:
    """One clip: `audio` (float32, 16 kHz mono), `sampling_rate`, `captions` (distinct
    paraphrases), `label` (the dominant event's class, one of `LABELS`), `labels` (classes of
    all events, in order of appearance), `duration` (s), `events` (kind, label, role, start,
    duration, level, params), `clip_id`."""
    seed_sequence = _seed_sequence(seed, split, index)
    plan = clip_plan(seed, split, index, max_duration)
    _, audio_seeds, caption_seeds = seed_sequence.spawn(3)
    events = plan["events"]
    return {
        "audio": render_plan(plan, audio_seeds),
        "sampling_rate": SAMPLING_RATE,
        "captions": write_captions(plan, np.random.default_rng(caption_seeds), num_captions),
        "label": dominant_label(events),
        "labels": list(dict.fromkeys(e["label"] for e in sorted(events, key=lambda e: e["start"]))),
        "duration": plan["num_samples"] / SAMPLING_RATE,
        "events": events,
        "clip_id": clip_id(seed, split, index),
    }


# ---------------------------------------------------------------------------------------------
# many clips: process pool (results do not depend on the number of workers)


def _default_workers(num_clips: int) -> int:
    cpus = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    return 1 if num_clips < 32 else max(1, min(cpus, 8))


def _map_chunks(function, split, indices, seed, num_workers, **kwargs):
    """Yield function(seed, split, chunk, **kwargs) for consecutive chunks of indices, in order."""
    indices = list(indices)
    num_workers = _default_workers(len(indices)) if num_workers is None else num_workers
    size = max(1, min(16, len(indices) // (4 * max(1, num_workers)) or 1))
    chunks = [indices[i : i + size] for i in range(0, len(indices), size)]
    if num_workers <= 1:
        for chunk in chunks:
            yield function(seed, split, chunk, **kwargs)
        return
    # fork like torch's DataLoader on Linux (fast, no re-import of __main__); spawn elsewhere
    method = "fork" if sys.platform == "linux" else "spawn"
    with concurrent.futures.ProcessPoolExecutor(
        num_workers, mp_context=multiprocessing.get_context(method)
    ) as pool:
        futures = [pool.submit(function, seed, split, chunk, **kwargs) for chunk in chunks]
        for future in futures:
            yield future.result()


def _generate_chunk(seed, split, indices, **kwargs):
    return [generate_clip(seed, split, i, **kwargs) for i in indices]


def generate_clips(
    split: str,
    num_clips: int,
    seed: int = 0,
    *,
    num_workers: int | None = None,
    max_duration: float = 30.0,
    num_captions: int = 5,
):
    """Yield `generate_clip(seed, split, i)` for i in range(num_clips), in order, in parallel."""
    for chunk in _map_chunks(
        _generate_chunk,
        split,
        range(num_clips),
        seed,
        num_workers,
        max_duration=max_duration,
        num_captions=num_captions,
    ):
        yield from chunk


def dataset_features():
    import datasets

    return datasets.Features(
        {
            "audio": {
                "array": datasets.List(datasets.Value("float32")),
                "sampling_rate": datasets.Value("int32"),
            },
            "captions": datasets.List(datasets.Value("string")),
            "label": datasets.Value("string"),
            "labels": datasets.List(datasets.Value("string")),
            "duration": datasets.Value("float32"),
            "clip_id": datasets.Value("string"),
            "events": datasets.Value("string"),  # JSON list of event dicts
        }
    )


def _clips_to_table(clips: list[dict]):
    """Arrow table of clips (audio converted without a round trip through Python lists)."""
    import pyarrow as pa

    lengths = np.array([len(c["audio"]) for c in clips], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    if offsets[-1] >= 2**31:
        raise ValueError("too much audio in one table slice")
    values = pa.array(
        np.concatenate([c["audio"] for c in clips]) if clips else np.zeros(0, np.float32)
    )
    audio = pa.StructArray.from_arrays(
        [
            pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values),
            pa.array(np.array([c["sampling_rate"] for c in clips], dtype=np.int32)),
        ],
        names=["array", "sampling_rate"],
    )
    strings = pa.list_(pa.string())
    return pa.table(
        {
            "audio": audio,
            "captions": pa.array([c["captions"] for c in clips], strings),
            "label": pa.array([c["label"] for c in clips], pa.string()),
            "labels": pa.array([c["labels"] for c in clips], strings),
            "duration": pa.array(np.array([c["duration"] for c in clips], dtype=np.float32)),
            "clip_id": pa.array([c["clip_id"] for c in clips], pa.string()),
            "events": pa.array([json.dumps(c["events"]) for c in clips], pa.string()),
        }
    )


def build_dataset(
    split: str,
    num_clips: int | None = None,
    seed: int = 0,
    *,
    num_workers: int | None = None,
    max_duration: float = 30.0,
    num_captions: int = 5,
):
    """A `datasets.Dataset` of `num_clips` clips (default `DEFAULT_NUM_CLIPS[split]`).

    Columns: audio ({"array": float32 list, "sampling_rate": 16000} — plain arrays, not the
    `Audio` feature, which needs torchcodec), captions, label, labels, duration, clip_id, events
    (JSON). Use `.with_format("numpy")` to read audio arrays as numpy."""
    import datasets
    import pyarrow as pa

    num_clips = DEFAULT_NUM_CLIPS[split] if num_clips is None else num_clips
    features = dataset_features()
    tables, clips = [], []
    for clip in generate_clips(
        split,
        num_clips,
        seed,
        num_workers=num_workers,
        max_duration=max_duration,
        num_captions=num_captions,
    ):
        clips.append(clip)
        if len(clips) == 256:  # convert in slices so that audio is never held twice in full
            tables.append(_clips_to_table(clips))
            clips = []
    if clips or not tables:
        tables.append(_clips_to_table(clips))
    table = pa.concat_tables(tables).cast(features.arrow_schema)
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=features))


# ---------------------------------------------------------------------------------------------
# audio folder on disk


def _write_chunk(seed, split, indices, out_dir, subtype, **kwargs):
    import soundfile

    rows = []
    for i in indices:
        clip = generate_clip(seed, split, i, **kwargs)
        file_name = f"{clip['clip_id']}.wav"
        soundfile.write(
            os.path.join(out_dir, file_name), clip["audio"], clip["sampling_rate"], subtype=subtype
        )
        rows.append(
            {
                "file_name": file_name,
                "clip_id": clip["clip_id"],
                "caption": clip["captions"][0],
                "captions": clip["captions"],
                "label": clip["label"],
                "labels": clip["labels"],
                "duration": clip["duration"],
                "events": json.dumps(clip["events"]),
            }
        )
    return rows


def write_audiofolder(
    out_dir: str | os.PathLike,
    splits: dict[str, int] | None = None,
    seed: int = 0,
    *,
    num_workers: int | None = None,
    max_duration: float = 30.0,
    num_captions: int = 5,
    subtype: str = "FLOAT",
) -> dict[str, Path]:
    """Write WAV files plus one `metadata.jsonl` per split; return {split: folder}.

    Layout: `out_dir/<SPLIT_DIRS[split]>/<clip_id>.wav` and `.../metadata.jsonl` with one JSON
    object per line: file_name, clip_id, caption (the first caption), captions, label, labels,
    duration, events (JSON string). That is the Hugging Face `audiofolder` layout and a plain
    JSONL manifest. `subtype="FLOAT"` (default) or `"PCM_24"` store the audio exactly."""
    splits = dict(DEFAULT_NUM_CLIPS) if splits is None else splits
    folders = {}
    for split, num_clips in splits.items():
        if split not in SPLIT_DIRS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        folder = Path(out_dir) / SPLIT_DIRS[split]
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "metadata.jsonl", "w", encoding="utf-8") as manifest:
            for rows in _map_chunks(
                _write_chunk,
                split,
                range(num_clips),
                seed,
                num_workers,
                out_dir=str(folder),
                subtype=subtype,
                max_duration=max_duration,
                num_captions=num_captions,
            ):
                for row in rows:
                    manifest.write(json.dumps(row) + "\n")
        folders[split] = folder
    return folders


def read_audiofolder(folder: str | os.PathLike) -> list[dict]:
    """Read one split folder written by `write_audiofolder`: metadata rows plus `audio` arrays."""
    import soundfile

    folder = Path(folder)
    rows = []
    with open(folder / "metadata.jsonl", encoding="utf-8") as manifest:
        for line in manifest:
            row = json.loads(line)
            row["audio"], row["sampling_rate"] = soundfile.read(
                folder / row["file_name"], dtype="float32"
            )
            rows.append(row)
    return rows
