"""The demo app's core (`slap_audio.space.app.SlapDemo`) and its Space (`slap-push --space`).

The browser test (test_app_browser.py) drives the page; here: captioning through the captioner
found beside a model (and the clear message when there is none), the search tab's library and
table, bad input, and a Space published to the local Hub server whose `app.py`, run from a
download of the Space in a fresh process, finds the model through its card and classifies a clip
exactly as the pipeline does.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from huggingface_hub import HfApi, SpaceCard, snapshot_download
from transformers import pipeline

from slap_audio.eval.cli import generate_captions
from slap_audio.eval.zero_shot import pipeline_input
from slap_audio.hub_cards.push import main as push_main
from slap_audio.modeling_slap import SlapConfig, SlapForConditionalGeneration
from slap_audio.search import SearchIndex
from slap_audio.space.app import SlapDemo, hits_table, parse_labels, scores_table

from conftest import tone
from fresh_process import run_python
from hubserver import HubServer

ALICE = "hf_app_alice_0123456789abcdef"
LABELS = ["low hum", "siren", "rain"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, micro_model, processor) -> Path:
    """What slap-train writes: `slap/` (a SlapModel) and `captioner/` beside it."""
    root = tmp_path_factory.mktemp("run")
    micro_model.save_pretrained(root / "slap")
    processor.save_pretrained(root / "slap")
    torch.manual_seed(1)
    captioner = SlapForConditionalGeneration(SlapConfig.from_size("micro")).eval()
    captioner.save_pretrained(root / "captioner")
    processor.save_pretrained(root / "captioner")
    return root


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "clip.wav"
    soundfile.write(path, np.stack([tone(1.8, 250.0, 44100), tone(1.8, 700.0, 44100, seed=4)], axis=1), 44100)
    return path


def _pipeline_scores(model, wav: Path) -> dict[str, float]:
    audio, rate = soundfile.read(wav, dtype="float32")
    classifier = pipeline("zero-shot-audio-classification", model=model)
    clip = pipeline_input(audio, rate, classifier.feature_extractor.sampling_rate)
    return {r["label"]: r["score"] for r in classifier(clip, candidate_labels=LABELS)}


def test_labels_are_parsed_like_a_person_types_them():
    assert parse_labels(" a dog ,rain\n\nsiren, rain ,, ") == ["a dog", "rain", "siren"]
    assert parse_labels(["x", " x ", "y"]) == ["x", "y"]


def test_classify_equals_the_pipeline_and_refuses_bad_input(run_dir, wav, tmp_path):
    demo = SlapDemo(str(run_dir / "slap"), library_clips=2)
    scores = demo.classify(str(wav), ", ".join(LABELS))
    assert scores == pytest.approx(_pipeline_scores(str(run_dir / "slap"), wav), abs=1e-6)
    assert list(scores) == sorted(scores, key=scores.get, reverse=True)
    with pytest.raises(ValueError, match="at least one label"):
        demo.classify(str(wav), " , ")
    with pytest.raises(ValueError, match="must contain"):
        demo.classify(str(wav), "rain", template="This is a sound of rain.")
    (tmp_path / "broken.wav").write_bytes(b"RIFF not audio")
    with pytest.raises(ValueError, match="cannot decode the audio"):
        demo.classify(str(tmp_path / "broken.wav"), "rain")
    with pytest.raises(ValueError, match="upload or record"):
        demo.classify(None, "rain")


def test_caption_uses_the_captioner_beside_the_model(run_dir, wav, processor):
    demo = SlapDemo(str(run_dir / "slap"))
    assert demo.captioner_name == str(run_dir / "captioner")
    caption = demo.caption(str(wav), num_beams=2, max_new_tokens=8)
    captioner = SlapForConditionalGeneration.from_pretrained(run_dir / "captioner").eval()
    audio, rate = soundfile.read(wav, dtype="float32")
    example = {"audio": {"array": audio, "sampling_rate": rate}}
    assert caption == generate_captions(captioner, processor, [example], num_beams=2, max_new_tokens=8)[0]


def test_a_model_without_decoder_says_so(run_dir, micro_model, processor, tmp_path, wav):
    micro_model.save_pretrained(tmp_path / "alone")
    processor.save_pretrained(tmp_path / "alone")
    demo = SlapDemo(str(tmp_path / "alone"))
    assert not demo.can_caption
    with pytest.raises(RuntimeError, match="has no caption decoder.*--captioner"):
        demo.caption(str(wav))
    assert SlapDemo(str(run_dir / "captioner")).captioner_name == str(run_dir / "captioner")  # a captioner itself


def test_search_ranks_the_library_like_its_index(run_dir, tmp_path):
    from slap_audio.data.builtin_data import write_audiofolder

    folder = write_audiofolder(tmp_path / "sounds", {"test": 3})["test"]
    demo = SlapDemo(str(run_dir / "slap"), library=str(folder))
    hits = demo.search("  a siren wailing ", k=3)
    reference = SearchIndex.build(folder, str(run_dir / "slap"), tmp_path / "index").query_text("a siren wailing", k=3)
    assert [(h.path, round(h.score, 5)) for h in hits] == [(h.path, round(h.score, 5)) for h in reference]
    table = hits_table(hits, demo.index.root)
    rows = {json.loads(line)["file_name"]: json.loads(line)["caption"]
            for line in (folder / "metadata.jsonl").read_text().splitlines()}  # fmt: skip
    for rank, hit in enumerate(hits, 1):  # each hit with its caption from the folder's metadata.jsonl
        name = Path(hit.path).name
        assert f"| {rank} | {hit.score:.4f} | {name} | {rows[name]} |" in table
    with pytest.raises(ValueError, match="describe the sound"):
        demo.search("   ")
    # an index built by slap-search, opened at start
    from_index = SlapDemo(str(run_dir / "slap"), index=str(tmp_path / "index")).search("a siren wailing", k=3)
    assert [(h.path, round(h.score, 5)) for h in from_index] == [(h.path, round(h.score, 5)) for h in reference]


def test_default_model_env_then_space_card_then_demo(tmp_path, monkeypatch):
    from slap_audio.space import app

    monkeypatch.delenv("SLAP_MODEL", raising=False)
    monkeypatch.setattr("sys.argv", [str(tmp_path / "app.py")])
    (tmp_path / "README.md").write_text("# a project README, no metadata\n")
    assert app.default_model() == app.DEMO_MODEL
    (tmp_path / "README.md").write_text("---\nsdk: gradio\nmodels:\n- alice/slap-tiny\n---\n# demo\n")
    assert app.default_model() == "alice/slap-tiny"
    monkeypatch.setenv("SLAP_MODEL", "bob/slap-base")
    assert app.default_model() == "bob/slap-base"


def test_slap_push_space_publishes_an_app_that_serves_the_model(run_dir, wav, tmp_path):
    with HubServer(tokens={ALICE: "alice"}) as hub:
        env = hub.env(token=ALICE, hf_home=tmp_path / "home")
        result = run_python("from slap_audio.hub_cards.push import main; raise SystemExit(main())",
                            str(run_dir / "slap"), "alice/slap-micro", "--space", "alice/slap-micro-demo",
                            cwd=tmp_path, env=env)  # fmt: skip
        with hub.client(token=ALICE, hf_home=tmp_path / "home"):
            api = HfApi()
            model_commit, space_commit = result.stdout.split()
            assert space_commit.endswith(api.list_repo_commits("alice/slap-micro-demo", repo_type="space")[0].commit_id)
            assert model_commit.endswith(api.list_repo_commits("alice/slap-micro")[0].commit_id)
            assert sorted(api.list_repo_files("alice/slap-micro-demo", repo_type="space")) == [
                ".gitattributes", "README.md", "app.py", "requirements.txt"]
            space = Path(snapshot_download("alice/slap-micro-demo", repo_type="space",
                                           local_dir=tmp_path / "space"))  # fmt: skip
        card = SpaceCard.load(space / "README.md")
        assert (card.data.sdk, card.data.app_file, card.data.models) == ("gradio", "app.py", ["alice/slap-micro"])
        module = importlib.util.find_spec("slap_audio.space.app").origin
        assert (space / "app.py").read_bytes() == Path(module).read_bytes()
        assert (space / "requirements.txt").read_text().startswith("slap-audio[app,eval]==")
        # the Space as the Hub runs it: its app.py from its own folder, the model by repo id
        script = f"""
            import json, runpy, sys
            sys.argv = ["app.py"]
            app = runpy.run_path("app.py")
            model = app["default_model"]()
            demo = app["SlapDemo"](model)
            print(json.dumps({{"model": model, "scores": demo.classify({str(wav)!r}, {LABELS!r}),
                               "caption": demo.can_caption}}))
        """
        env.pop("SLAP_MODEL", None)
        child = json.loads(run_python(script, cwd=space, env=env).stdout.strip().splitlines()[-1])
    assert child["model"] == "alice/slap-micro" and child["caption"] is False
    assert child["scores"] == pytest.approx(_pipeline_scores(str(run_dir / "slap"), wav), abs=1e-6)


def test_space_push_of_an_adapter_folder_is_refused(tmp_path, capsys):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        push_main([str(tmp_path), "alice/x", "--space", "alice/x-demo"])
    assert exit_info.value.code == 2
    assert "--space publishes an app that serves a full model" in capsys.readouterr().err


def test_tables_keep_one_row_per_entry_whatever_the_text():
    table = scores_table({"rock | metal": 0.75, "two\nlines": 0.25, "C:\\path\\": 0.0})
    rows = table.splitlines()
    assert len(rows) == 5  # header, rule, three entries: the line break did not split a row
    cells = [re.split(r"(?<!\\)\|", row)[1:-1] for row in rows[2:]]  # split on unescaped bars only
    assert [len(row) for row in cells] == [2, 2, 2]
    assert [row[0].strip() for row in cells] == ["rock \\| metal", "two lines", "C:\\\\path\\\\"]
