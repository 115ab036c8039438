"""The built-in procedural audio–caption data (data/builtin_data.py, sound_events.py, captions.py)."""

import collections
import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from slap_audio.data.builtin_data import (
    DEFAULT_NUM_CLIPS,
    HELD_OUT_PAIRS,
    KIND_NAMES,
    LABELS,
    SPLIT_DIRS,
    SPLITS,
    build_dataset,
    clip_plan,
    generate_clip,
    generate_clips,
    kind_pairs,
    prompt_templates,
    read_audiofolder,
    write_audiofolder,
)
from slap_audio.data.captions import is_plural, number_word, times_word, with_article
from slap_audio.data.sound_events import EVENT_KINDS, SAMPLING_RATE, note_name

SHORT = 8.0  # max_duration for tests that render audio, to keep them fast


@pytest.fixture(scope="module")
def train_plans():
    return [clip_plan(0, "train", i) for i in range(300)]


def _kinds(plan):
    return [e["kind"] for e in plan["events"]]


def test_same_seed_gives_identical_bytes_and_text():
    a, b = generate_clip(0, "test", 3), generate_clip(0, "test", 3)
    assert a["audio"].dtype == np.float32 and a["audio"].ndim == 1
    assert a["audio"].tobytes() == b["audio"].tobytes()
    assert (
        a["captions"] == b["captions"] and a["events"] == b["events"] and a["label"] == b["label"]
    )


def test_fresh_interpreter_gives_the_same_bytes():
    script = (
        "import hashlib, json; from slap_audio.data.builtin_data import generate_clip; "
        "c = generate_clip(0, 'train', 5, max_duration=8.0); "
        "print(hashlib.sha256(c['audio'].tobytes()).hexdigest(), json.dumps(c['captions']))"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    clip = generate_clip(0, "train", 5, max_duration=SHORT)
    digest, captions = output.strip().split(" ", 1)
    assert digest == hashlib.sha256(clip["audio"].tobytes()).hexdigest()
    assert json.loads(captions) == clip["captions"]


def test_any_clip_differs_by_index_split_and_seed():
    base = generate_clip(0, "train", 0, max_duration=SHORT)
    for other in (
        generate_clip(0, "train", 1, max_duration=SHORT),
        generate_clip(0, "validation", 0, max_duration=SHORT),
        generate_clip(1, "train", 0, max_duration=SHORT),
    ):
        assert base["audio"].tobytes() != other["audio"].tobytes()
        assert base["captions"] != other["captions"]


def test_clip_does_not_depend_on_worker_count():
    serial = [generate_clip(0, "validation", i, max_duration=SHORT) for i in range(6)]
    parallel = list(generate_clips("validation", 6, 0, num_workers=2, max_duration=SHORT))
    assert [c["clip_id"] for c in parallel] == [c["clip_id"] for c in serial]
    for s, p in zip(serial, parallel, strict=True):
        assert s["audio"].tobytes() == p["audio"].tobytes() and s["captions"] == p["captions"]


def test_audio_is_well_formed_and_matches_its_plan():
    for i in range(12):
        clip = generate_clip(0, "train", i, max_duration=SHORT)
        audio = clip["audio"]
        assert clip["sampling_rate"] == SAMPLING_RATE == 16000
        assert len(audio) == round(clip["duration"] * SAMPLING_RATE)
        assert np.isfinite(audio).all() and np.abs(audio).max() <= 0.99
        assert np.array_equal(
            np.round(audio.astype(np.float64) * 2**23), audio.astype(np.float64) * 2**23
        )  # 24-bit grid
        assert np.abs(audio).max() > 0.01  # something audible
        for event in clip["events"]:  # every event fits inside the clip
            assert (
                0 <= event["start"]
                and event["start"] + event["duration"] <= clip["duration"] + 1e-3
            )


def test_loud_events_are_louder_than_quiet_ones():
    # single-event clips of one kind, level set in the plan: measure RMS of the event span
    rms = collections.defaultdict(list)
    for i in range(200):
        plan = clip_plan(0, "train", i)
        if len(plan["events"]) == 1 and plan["events"][0]["kind"] in (
            "tone",
            "hum",
            "white_noise",
            "pink_noise",
        ):
            clip = generate_clip(0, "train", i)
            event = clip["events"][0]
            start = int(event["start"] * SAMPLING_RATE)
            span = clip["audio"][start : start + int(event["duration"] * SAMPLING_RATE)]
            rms[event["level"]].append(float(np.sqrt(np.mean(span.astype(np.float64) ** 2))))
    assert rms["quiet"] and rms["loud"]
    assert max(rms["quiet"]) < min(rms["loud"])


def test_durations_span_one_to_thirty_seconds(train_plans):
    durations = np.array([p["num_samples"] / SAMPLING_RATE for p in train_plans])
    assert durations.min() >= 1.0 and durations.max() <= 30.0
    assert (
        np.percentile(durations, 10) < 3.0 and np.percentile(durations, 90) > 15.0
    )  # a real 1–30 s mix
    short = [
        clip_plan(0, "train", i, max_duration=4.0)["num_samples"] / SAMPLING_RATE
        for i in range(100)
    ]
    assert max(short) <= 4.0


def test_at_least_twenty_event_kinds_are_used(train_plans):
    assert len(EVENT_KINDS) >= 20 and len(set(LABELS)) == len(LABELS) == len(KIND_NAMES)
    used = collections.Counter(k for p in train_plans for k in _kinds(p))
    assert len(used) >= 20
    assert sum(len(p["segments"]) > 1 for p in train_plans) > 100  # sequences ("then")
    assert any(p["bed"] is not None for p in train_plans)  # overlap ("over")
    assert any(
        s["companion"] is not None for p in train_plans for s in p["segments"]
    )  # overlap ("with")
    assert any(s["pause_before"] for p in train_plans for s in p["segments"])  # silence gaps
    assert {e["level"] for p in train_plans for e in p["events"]} == {"quiet", "moderate", "loud"}


def test_order_matters_same_kinds_appear_in_different_orders(train_plans):
    orders = collections.defaultdict(set)
    for p in train_plans:
        sequence = tuple(s["main"]["kind"] for s in p["segments"])
        orders[frozenset(sequence)].add(sequence)
    assert sum(len(v) > 1 for v in orders.values()) >= 3


def test_compositional_split_holds_pairs_never_seen_in_other_splits(train_plans):
    assert 10 <= len(HELD_OUT_PAIRS) <= 60
    seen = set()
    for split in ("validation", "test"):
        for i in range(100):
            seen |= kind_pairs(_kinds(clip_plan(0, split, i)))
    for p in train_plans:
        seen |= kind_pairs(_kinds(p))
    assert not seen & HELD_OUT_PAIRS
    assert {k for p in train_plans for k in _kinds(p)} == set(
        KIND_NAMES
    )  # every kind itself is seen
    for i in range(100):
        held_out = kind_pairs(_kinds(clip_plan(0, "test_compositional", i))) & HELD_OUT_PAIRS
        assert held_out and held_out.isdisjoint(seen)


def _count(event):
    """How many times a counted event sounds (None for continuous events)."""
    p = event["params"]
    if event["kind"] in ("beeps", "drum", "chirp_up", "chirp_down") or (
        event["kind"] == "clicks" and p["mode"] == "count"
    ):
        return p["count"]
    return p.get("strikes") or p.get("rings") or p.get("notes")


def test_several_distinct_captions_per_clip_naming_counts_and_loudness():
    for i in range(40):
        clip = generate_clip(0, "test", i, max_duration=SHORT)
        captions = clip["captions"]
        assert len(captions) == 5 and len(set(captions)) == 5
        assert all(c[0].isupper() and c.endswith(".") for c in captions)
        for event in clip["events"]:
            p = event["params"]
            count = _count(event)
            if count and count > 1:  # every caption says how many
                assert all(
                    number_word(count) in c.lower() or times_word(count) in c for c in captions
                ), (event, captions)
            if event["kind"] == "chord":  # every caption names the chord
                assert all(
                    f"{note_name(p['root'])[:-1]} {p['quality']}" in c
                    or f"{p['quality']} chord rooted on" in c
                    for c in captions
                )
        if len(clip["events"]) == 1 and clip["events"][0]["level"] != "moderate":
            words = {
                "quiet": ("quiet", "faint", "soft", "low volume"),
                "loud": ("loud", "strong", "powerful", "high volume"),
            }
            assert all(
                any(w in c.lower() for w in words[clip["events"][0]["level"]]) for c in captions
            )


def test_captions_share_vocabulary_across_clips():
    captions = [
        c
        for i in range(60)
        for c in generate_clip(0, "validation", i, max_duration=SHORT)["captions"]
    ]
    words = collections.Counter(w.strip(".,;").lower() for c in captions for w in c.split())
    assert len(words) < 400  # a small shared vocabulary: keywords alone cannot identify a clip
    assert sum(words[w] for w in ("then", "a", "and")) > len(captions)


def test_labels_and_prompts():
    assert len(LABELS) >= 20 and all(t.count("{}") == 1 for t in prompt_templates)
    for i in range(20):
        clip = generate_clip(0, "test", i, max_duration=SHORT)
        assert clip["label"] in LABELS and clip["label"] in clip["labels"]
        assert set(clip["labels"]) <= set(LABELS)
        assert clip["labels"] == list(
            dict.fromkeys(e["label"] for e in sorted(clip["events"], key=lambda e: e["start"]))
        )


def test_captions_are_pinned():
    # the dataset is part of the benchmark: a change to the generator must be deliberate
    clip = generate_clip(0, "test", 0, max_duration=SHORT)
    assert [e["kind"] for e in clip["events"]] == ["chirp_up", "tone", "tremolo", "brown_noise"]
    assert clip["captions"][4] == (
        "One strong rising chirp along with a pure tone at F4; after that, a medium-volume "
        "mid-pitched tremolo tone with a slow pulse, over brown noise."
    )
    assert len(clip["audio"]) == 45078
    assert (
        with_article("A4 tone") == "an A4 tone"
        and with_article("C major chord") == "a C major chord"
    )
    assert with_article("eight") == "an eight" and with_article("loud hum") == "a loud hum"
    assert (
        is_plural("five thumps")
        and not is_plural("one thump")
        and not is_plural("a beep repeated five times")
    )


def test_default_sizes_and_unknown_split():
    assert DEFAULT_NUM_CLIPS["test"] >= 200  # chance R@1 <= 0.5 %
    assert set(DEFAULT_NUM_CLIPS) == set(SPLITS) == set(SPLIT_DIRS)
    with pytest.raises(ValueError):
        generate_clip(0, "dev", 0)
    with pytest.raises(ValueError):
        clip_plan(0, "train", 0, max_duration=1.0)


def test_build_dataset_columns_match_generate_clip():
    ds = build_dataset("test", 3, seed=0, num_workers=1, max_duration=SHORT)
    assert ds.num_rows == 3
    assert set(ds.column_names) == {
        "audio",
        "captions",
        "label",
        "labels",
        "duration",
        "clip_id",
        "events",
    }
    rows = ds.with_format("numpy")
    for i in range(3):
        clip = generate_clip(0, "test", i, max_duration=SHORT)
        row = rows[i]
        assert row["audio"]["array"].dtype == np.float32
        assert (
            np.array_equal(row["audio"]["array"], clip["audio"])
            and row["audio"]["sampling_rate"] == 16000
        )
        assert list(ds[i]["captions"]) == clip["captions"] and ds[i]["label"] == clip["label"]
        assert ds[i]["clip_id"] == clip["clip_id"] and json.loads(ds[i]["events"]) == clip["events"]
    assert build_dataset("test", 0).num_rows == 0


@pytest.mark.parametrize("subtype", ["FLOAT", "PCM_24"])
def test_audiofolder_round_trip_is_exact(tmp_path, subtype):
    folders = write_audiofolder(
        tmp_path,
        {"train": 2, "test_compositional": 1},
        seed=0,
        num_workers=1,
        max_duration=SHORT,
        subtype=subtype,
    )
    assert (
        folders["test_compositional"].name == "compositional"
    )  # not folded into "test" by audiofolder
    for split, count in (("train", 2), ("test_compositional", 1)):
        rows = read_audiofolder(folders[split])
        assert len(rows) == count
        for i, row in enumerate(rows):
            clip = generate_clip(0, split, i, max_duration=SHORT)
            assert (
                row["file_name"] == f"{clip['clip_id']}.wav" and row["captions"] == clip["captions"]
            )
            assert row["caption"] == clip["captions"][0] and row["label"] == clip["label"]
            assert row["sampling_rate"] == 16000 and np.array_equal(row["audio"], clip["audio"])
            assert soundfile.info(str(folders[split] / row["file_name"])).subtype == subtype


def test_short_clips_render_when_a_beat_lands_past_the_end():
    """Jittered rhythmic clicks may put the last onset past a short clip's end (it crashed once)."""
    from slap_audio.data.sound_events import SAMPLING_RATE, _place

    placed = _place(100, [0.0, 99 / SAMPLING_RATE, 150 / SAMPLING_RATE], np.ones(5))
    assert placed.tolist() == [1.0] * 5 + [0.0] * 94 + [1.0]
