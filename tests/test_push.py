"""Publishing SLAP to the Hub (`slap_audio.hub_cards.push`) against the local Hub server.

The round trips share one fresh interpreter (`child`, with `slap_audio` blocked) that loads every
repository pushed by the module's fixtures, so they cost one interpreter start.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import HfApi, ModelCard, constants
from huggingface_hub.errors import RepositoryNotFoundError
from peft import get_peft_model

from slap_audio.hub_cards import PushError, push_adapter, push_model
from slap_audio.hub_cards.push import checked_endpoint
from slap_audio.hub_cards.staging import check_staged, model_code_files, stage_model
from slap_audio.modeling_slap import SlapConfig, SlapModel
from slap_audio.training.lora import slap_lora_config

from conftest import tone
from fresh_process import run_python
from hubserver import HubServer

ALICE = "hf_push_alice_0123456789abcdef"
BOB = "hf_push_bob_fedcba9876543210"
REPO, ADAPTER_REPO, NATIVE_REPO = "alice/slap-micro", "alice/slap-micro-lora", "alice/slap-native"
LABELS = ["low hum", "siren", "rain", "three clicks"]
PROMPTS = [f"This is a sound of {label}." for label in LABELS]
CLIPS = [tone(1.5, 300.0), tone(0.4, 900.0, seed=2), tone(4.0, 120.0, seed=3)]
METRICS = {
    "model": "slap-micro",
    "dataset": {"name": "slap-builtin", "split": "test"},
    "metrics": {"retrieval": {"text_to_audio": {"R@1": 0.25, "R@10": 0.75}}, "zero_shot": {"top1": 0.5}},
}


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def hub():
    with HubServer(tokens={ALICE: "alice", BOB: "bob"}) as server:
        yield server
        assert server.errors == []


@pytest.fixture
def alice(hub, tmp_path):
    """This process talks to the local hub as alice; yields an `HfApi`."""
    with hub.client(token=ALICE, hf_home=tmp_path / "hf_home"):
        yield HfApi()


@pytest.fixture(scope="module")
def big_model() -> SlapModel:
    """`micro` with a wider audio encoder: 13.8 MB of weights, over the Hub's 10 MB LFS threshold."""
    audio = dict(hidden_size=256, num_hidden_layers=3, num_attention_heads=4, intermediate_size=1024,
                 local_window=4, pooling_heads=4)  # fmt: skip
    torch.manual_seed(1)
    return SlapModel(SlapConfig.from_size("micro", audio_config=audio)).eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A metrics JSON and a PNG plot, as the eval suite writes them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = tmp_path_factory.mktemp("files")
    (root / "results.json").write_text(json.dumps(METRICS))
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.imshow(np.eye(4))
    fig.savefig(root / "similarity matrix.png")
    plt.close(fig)
    return {"metrics": root / "results.json", "plot": root / "similarity matrix.png"}


@pytest.fixture(scope="module")
def micro_dir(tmp_path_factory, micro_model, processor) -> Path:
    """A training output folder: the checkpoint plus files that must never be uploaded."""
    folder = tmp_path_factory.mktemp("run")
    micro_model.save_pretrained(folder)
    processor.save_pretrained(folder)
    for junk in ("optimizer.pt", "pytorch_model.bin", "trainer_state.json", "rng_state.pth"):
        (folder / junk).write_bytes(b"junk")
    (folder / "checkpoint-10").mkdir()
    (folder / "checkpoint-10" / "model.safetensors").write_bytes(b"old")
    return folder


@pytest.fixture(scope="module")
def pushed(hub, big_model, processor, files, tmp_path_factory):
    with hub.client(token=ALICE, hf_home=tmp_path_factory.mktemp("home")):
        return push_model(
            big_model, REPO, processor=processor, metrics_json=files["metrics"], plots=[files["plot"]],
            training_config={"size": "micro", "learning_rate": 3e-4}, commit_message="First SLAP push",
        )  # fmt: skip


@pytest.fixture(scope="module")
def adapter(big_model, pushed, hub, tmp_path_factory):
    """A LoRA adapter on the pushed model, with non-zero B matrices (so it changes the outputs)."""
    peft_model = get_peft_model(copy.deepcopy(big_model), slap_lora_config(big_model)).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    with hub.client(token=ALICE, hf_home=tmp_path_factory.mktemp("home")):
        push_model(peft_model, ADAPTER_REPO, base_model=REPO)  # a PeftModel goes to push_adapter
    return peft_model


@pytest.fixture(scope="module")
def native(hub, micro_model, processor, tmp_path_factory):
    """`transformers`' own `push_to_hub` (the package registered its Auto classes in conftest)."""
    with hub.client(token=ALICE, hf_home=tmp_path_factory.mktemp("home")):
        micro_model.push_to_hub(NATIVE_REPO)
        processor.push_to_hub(NATIVE_REPO)


@pytest.fixture(scope="module")
def child(hub, pushed, adapter, native, tmp_path_factory) -> dict:
    """Load every pushed repository by id in a fresh interpreter that cannot import slap_audio."""
    tmp = tmp_path_factory.mktemp("child")
    np.savez(tmp / "clips.npz", *CLIPS)
    script = f"""
        import json, numpy as np, torch
        from peft import PeftModel
        from transformers import AutoModel, AutoProcessor, pipeline
        archive = np.load({str(tmp / "clips.npz")!r})
        clips = [archive[f"arr_{{i}}"] for i in range(len(archive.files))]
        out = {{}}
        with torch.no_grad():
            model = AutoModel.from_pretrained({REPO!r}, trust_remote_code=True).eval()
            processor = AutoProcessor.from_pretrained({REPO!r}, trust_remote_code=True)
            out["module"] = type(model).__module__
            out["emb"] = model.get_audio_features(**processor(audio=clips, sampling_rate=16000)).pooler_output.tolist()
            classifier = pipeline("zero-shot-audio-classification", model={REPO!r}, trust_remote_code=True)
            out["scores"] = {{r["label"]: r["score"] for r in classifier(clips[0], candidate_labels={LABELS!r})}}
            adapted = PeftModel.from_pretrained(model, {ADAPTER_REPO!r}).eval()
            inputs = processor(text={PROMPTS!r}, audio=clips, sampling_rate=16000)
            out["adapter_logits"] = adapted(**inputs).logits_per_audio.tolist()
            native = AutoModel.from_pretrained({NATIVE_REPO!r}, trust_remote_code=True).eval()
            native_processor = AutoProcessor.from_pretrained({NATIVE_REPO!r}, trust_remote_code=True)
            out["native_emb"] = native.get_audio_features(
                **native_processor(audio=clips, sampling_rate=16000)).pooler_output.tolist()
        print(json.dumps(out))
    """
    env = hub.env(token=ALICE, hf_home=tmp / "hf_home")
    env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    result = run_python(script, cwd=tmp, hide_package=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _audio_embeds(model, processor) -> torch.Tensor:
    with torch.no_grad():
        return model.get_audio_features(**processor(audio=CLIPS, sampling_rate=16000)).pooler_output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- the happy path


def test_push_is_one_commit_of_checked_files(hub, pushed, alice, files):
    files_in_repo = alice.list_repo_files(REPO)
    code = [f for f in files_in_repo if f.endswith(".py")]  # complete: the fresh process loads from it
    assert {"configuration_slap.py", "modeling_slap.py", "feature_extraction_slap.py", "processing_slap.py"} <= set(code)
    assert sorted(set(files_in_repo) - set(code)) == [
        ".gitattributes", "README.md", "config.json", "model.safetensors", "plots/similarity_matrix.png",
        "processor_config.json", "tokenizer.json", "tokenizer_config.json",
    ]  # fmt: skip
    commits = alice.list_repo_commits(REPO)
    assert [c.title for c in commits] == ["First SLAP push", "initial commit"]
    assert commits[0].commit_id == pushed.oid
    # weights over 10 MB went through LFS (basic transfer, pre-signed PUT)
    info = alice.model_info(REPO, files_metadata=True)
    weights = next(s for s in info.siblings if s.rfilename == "model.safetensors")
    assert weights.lfs is not None and weights.size > 10 * 1024 * 1024
    assert "/info/lfs/objects/batch 200" in hub.log_text and "PUT /_lfs/upload/" in hub.log_text
    config = json.loads(Path(alice.hf_hub_download(REPO, "config.json")).read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_slap.SlapModel"
    plot = alice.hf_hub_download(REPO, "plots/similarity_matrix.png")
    assert Path(plot).read_bytes() == files["plot"].read_bytes()
    # the card: metadata the Hub indexes, model-index values equal to the metrics JSON
    assert info.pipeline_tag == "zero-shot-audio-classification" and info.library_name == "transformers"
    card = ModelCard.load(REPO)
    assert card.data.license == "apache-2.0" and "slap" in card.data.tags
    got = {(r.task_type, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert got == {
        ("text-to-audio-retrieval", "R@1"): 0.25, ("text-to-audio-retrieval", "R@10"): 0.75,
        ("zero-shot-audio-classification", "top-1 accuracy"): 0.5,
    }  # fmt: skip
    assert "![Similarity matrix](plots/similarity_matrix.png)" in card.text
    assert "learning_rate: 0.0003" in card.text and "**Parameters**: 3.5 M." in card.text


def test_fresh_process_gets_the_same_model(child, big_model, processor):
    assert child["module"].startswith("transformers_modules.")
    torch.testing.assert_close(torch.tensor(child["emb"]), _audio_embeds(big_model, processor), rtol=0, atol=1e-6)
    with torch.no_grad():
        logits = big_model(**processor(text=PROMPTS, audio=CLIPS[:1], sampling_rate=16000)).logits_per_audio[0]
    expected = dict(zip(LABELS, logits.softmax(-1).tolist(), strict=True))
    assert child["scores"].keys() == expected.keys()
    for label, score in child["scores"].items():
        assert score == pytest.approx(expected[label], abs=1e-6)


def test_fresh_process_applies_the_pushed_adapter(child, adapter, big_model, processor):
    inputs = processor(text=PROMPTS, audio=CLIPS, sampling_rate=16000)
    with torch.no_grad():
        expected = adapter(**inputs).logits_per_audio
        base = big_model(**inputs).logits_per_audio
    assert (expected - base).abs().max() > 1e-3  # the adapter does something
    torch.testing.assert_close(torch.tensor(child["adapter_logits"]), expected, rtol=0, atol=1e-5)


def test_adapter_repo(alice, adapter):
    assert sorted(alice.list_repo_files(ADAPTER_REPO)) == [
        ".gitattributes", "README.md", "adapter_config.json", "adapter_model.safetensors",
    ]  # fmt: skip
    config = json.loads(Path(alice.hf_hub_download(ADAPTER_REPO, "adapter_config.json")).read_text())
    assert config["base_model_name_or_path"] == REPO and config["peft_type"] == "LORA"
    card = ModelCard.load(ADAPTER_REPO)
    assert card.data.library_name == "peft" and card.data.base_model == REPO


def test_transformers_push_to_hub_round_trip(child, micro_model, processor):
    torch.testing.assert_close(torch.tensor(child["native_emb"]), _audio_embeds(micro_model, processor), rtol=0, atol=1e-6)


def test_card_usage_snippet_runs_against_the_repo(pushed, alice, big_model, processor):
    text = ModelCard.load(REPO).text
    snippet = next(block for block in text.split("```python\n")[1:] if "get_audio_features" in block)
    namespace: dict = {}
    exec(snippet.split("```")[0], namespace)  # noqa: S102 - our own card's code
    assert namespace["similarity"].shape == (2, 2)
    assert torch.allclose(namespace["audio_embeds"].norm(dim=-1), torch.ones(2), atol=1e-5)


def test_cli_pushes_a_run_folder_and_never_shows_the_token(hub, micro_dir, files, alice, tmp_path):
    (tmp_path / "train.yaml").write_text("size: micro\nmax_tokens: 4096\n")
    env = hub.env(token=ALICE, hf_home=tmp_path / "cli_home")
    env["HF_DEBUG"] = "1"  # huggingface_hub logs every request it makes
    args = [
        str(micro_dir), "alice/slap-cli", "--metrics", str(files["metrics"]), "--plots", str(files["plot"]),
        "--training-config", str(tmp_path / "train.yaml"), "--dataset", "alice/sounds",
        "--commit-message", "Release v1",
    ]  # fmt: skip
    result = run_python("from slap_audio.hub_cards.push import main; raise SystemExit(main())", *args,
                        cwd=tmp_path, env=env)
    assert result.stdout.strip().endswith(alice.list_repo_commits("alice/slap-cli")[0].commit_id)
    assert "Not uploaded from" in result.stderr and "optimizer.pt" in result.stderr
    assert "api/whoami-v2" in result.stderr  # HF_DEBUG did log the requests (with the token hidden)
    for text in (result.stdout, result.stderr, hub.log_text):
        assert ALICE not in text
    uploaded = alice.list_repo_files("alice/slap-cli")
    assert not [f for f in uploaded if f.endswith((".bin", ".pt", ".pth")) or "checkpoint" in f or "trainer" in f]
    card = ModelCard.load("alice/slap-cli")
    assert card.data.datasets == ["alice/sounds"] and "max_tokens: 4096" in card.text
    assert alice.list_repo_commits("alice/slap-cli")[0].title == "Release v1"


# ----------------------------------------------------------------------------- refusals and failures


def test_no_token_is_a_clear_error_and_creates_nothing(hub, micro_dir, tmp_path, alice):
    requests = len(hub.log_lines)
    with hub.client(token=None, hf_home=tmp_path / "empty_home"):
        with pytest.raises(PushError, match="no Hugging Face token found.*hf auth login.*HF_TOKEN"):
            push_model(micro_dir, "alice/no-token")
    assert len(hub.log_lines) == requests  # not a single request
    with pytest.raises(RepositoryNotFoundError):
        alice.repo_info("alice/no-token")


def test_bad_or_foreign_tokens_are_clear_errors(micro_dir, pushed, alice):
    with pytest.raises(PushError, match="rejected the token.*hf auth login"):
        push_model(micro_dir, "alice/wrong-token", token="hf_not_a_valid_token")
    with pytest.raises(PushError, match=f"no write access to {REPO}"):
        push_model(micro_dir, REPO, token=BOB)
    assert alice.repo_info(REPO).sha == pushed.oid


def test_foreign_repo_is_refused_and_left_unchanged(micro_dir, alice):
    alice.create_repo("alice/foreign")
    alice.upload_file(path_or_fileobj=b'{"model_type": "bert"}', path_in_repo="config.json", repo_id="alice/foreign")
    alice.upload_file(path_or_fileobj=b"a,b\n", path_in_repo="data.csv", repo_id="alice/foreign")
    head = alice.repo_info("alice/foreign").sha
    with pytest.raises(PushError, match=r"data\.csv.*model_type 'bert', not 'slap'.*--overwrite") as err:
        push_model(micro_dir, "alice/foreign")
    assert "Nothing was uploaded" in str(err.value)
    assert alice.repo_info("alice/foreign").sha == head
    # with allow_overwrite the repository becomes exactly the pushed model
    push_model(micro_dir, "alice/foreign", allow_overwrite=True)
    files = alice.list_repo_files("alice/foreign")
    assert "data.csv" not in files and "model.safetensors" in files
    assert json.loads(Path(alice.hf_hub_download("alice/foreign", "config.json")).read_text())["model_type"] == "slap"
    # a second push of our own model needs no flag
    push_model(micro_dir, "alice/foreign", commit_message="Update", metrics_json=METRICS)
    assert alice.list_repo_commits("alice/foreign")[0].title == "Update"


def test_unreachable_endpoint_and_offline_mode(hub, micro_dir, alice, monkeypatch):
    endpoint = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(PushError, match=f"cannot reach the Hub at {endpoint}"):
        push_model(micro_dir, "alice/unreachable", endpoint=endpoint)
    with pytest.raises(RepositoryNotFoundError):
        alice.repo_info("alice/unreachable")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PushError, match="HF_HUB_OFFLINE"):
        push_model(micro_dir, "alice/offline")


def test_private_repo_is_invisible_without_the_token(micro_dir, alice):
    push_model(micro_dir, "alice/slap-private", private=True)
    assert alice.model_info("alice/slap-private").private is True
    for api in (HfApi(token=False), HfApi(token=BOB)):
        with pytest.raises(RepositoryNotFoundError):
            api.model_info("alice/slap-private")
    alice.create_repo("alice/slap-public")
    with pytest.raises(PushError, match="exists and is public"):
        push_model(micro_dir, "alice/slap-public", private=True)
    assert alice.list_repo_files("alice/slap-public") == [".gitattributes"]


def test_revision_creates_the_branch_and_leaves_main(micro_dir, alice):
    push_model(micro_dir, "alice/slap-branchy")
    main_head = alice.repo_info("alice/slap-branchy").sha
    commit = push_model(micro_dir, "alice/slap-branchy", revision="experiment", commit_message="Try",
                        metrics_json=METRICS)  # fmt: skip
    assert alice.repo_info("alice/slap-branchy").sha == main_head
    assert alice.repo_info("alice/slap-branchy", revision="experiment").sha == commit.oid
    assert alice.list_repo_commits("alice/slap-branchy", revision="experiment")[0].title == "Try"
    again = push_model(micro_dir, "alice/slap-branchy", revision="experiment", commit_message="Again",
                       training_config={"note": "second try"})  # fmt: skip
    assert alice.repo_info("alice/slap-branchy", revision="experiment").sha == again.oid
    assert alice.repo_info("alice/slap-branchy").sha == main_head


def test_invalid_card_is_refused_before_anything_is_created(hub, micro_dir, alice):
    requests = len(hub.log_lines)
    for card in ("---\nlicense: [apache\n---\n# x\n", "# no metadata\n",
                 "---\nlibrary_name: transformers\nlicense: mit\n---\n"):  # fmt: skip
        with pytest.raises(PushError, match="metadata does not parse|no YAML front matter|`pipeline_tag` is missing"):
            push_model(micro_dir, "alice/bad-card", card=card)
    assert len(hub.log_lines) == requests


def test_failed_commit_removes_what_the_push_created(micro_dir, alice, monkeypatch):
    push_model(micro_dir, "alice/slap-rollback")

    def broken_commit(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(HfApi, "create_commit", broken_commit)
    with pytest.raises(RuntimeError, match="disk full"):
        push_model(micro_dir, "alice/slap-new-and-broken")
    with pytest.raises(RuntimeError, match="disk full"):
        push_model(micro_dir, "alice/slap-rollback", revision="broken-branch")
    monkeypatch.undo()
    with pytest.raises(RepositoryNotFoundError):
        alice.repo_info("alice/slap-new-and-broken")
    assert [b.name for b in alice.list_repo_refs("alice/slap-rollback").branches] == ["main"]


def test_staged_folder_checks(micro_dir, tmp_path):
    stage = tmp_path / "stage"
    stage.mkdir()
    for name in ("config.json", "modeling_slap.py", "model.safetensors"):
        (stage / name).write_bytes((micro_dir / name).read_bytes())
    (stage / "train.py").write_text("print('my training script')\n")
    (stage / "tokenizer.json").symlink_to(micro_dir / "tokenizer.json")
    config = json.loads((stage / "config.json").read_text())
    config["auto_map"].pop("AutoModel")
    (stage / "config.json").write_text(json.dumps(config))
    (stage / "pytorch_model.bin").write_bytes(b"pickle")
    (stage / "notes.txt").write_text("hi")
    (stage / "README.md").write_text(
        "---\nlibrary_name: transformers\npipeline_tag: zero-shot-audio-classification\nlicense: mit\n---\n"
        "![plot](plots/missing.png)\n"
    )
    with pytest.raises(PushError) as err:
        check_staged(stage, "model")
    message = str(err.value)
    for problem in (
        "config.json has no auto_map for AutoConfig/AutoModel",
        "configuration_slap.py is needed by auto_map but missing",
        "pytorch_model.bin is a pickle-based file",
        "notes.txt is not a file a SLAP model repository holds",
        "no processor files",
        "README.md links to plots/missing.png, which is not uploaded",
        "train.py is not model code: no auto_map names it",
        "tokenizer.json is a symbolic link",
    ):
        assert problem in message, problem


def test_adapter_needs_a_hub_base_model(big_model, micro_dir):
    peft_model = get_peft_model(copy.deepcopy(big_model), slap_lora_config(big_model, towers=("audio",)))
    with pytest.raises(PushError, match="base_model='namespace/name'"):
        push_adapter(peft_model, "alice/orphan-adapter", token=ALICE)
    with pytest.raises(PushError, match="base_model='namespace/name'"):
        push_adapter(peft_model, "alice/orphan-adapter", base_model=str(micro_dir), token=ALICE)


# ----------------------------------------------------------------------------- what is sent, where


def _listener_off_loopback() -> socket.socket:
    """A listening TCP socket on this machine's non-loopback address (all interfaces if none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # UDP connect: picks the outgoing interface, sends nothing
            address = probe.getsockname()[0]
        except OSError:
            address = "0.0.0.0"
    if address.startswith("127."):
        address = "0.0.0.0"
    listener = socket.socket()
    listener.bind((address, 0))
    listener.listen()
    listener.setblocking(False)
    return listener


def test_token_goes_only_to_https_or_loopback(hub, micro_dir, monkeypatch):
    requests = len(hub.log_lines)
    with _listener_off_loopback() as listener:
        host, port = listener.getsockname()
        for endpoint in ("http://example.com", f"http://{host}:{port}", "http://localhost.example.com",
                         "ftp://127.0.0.1", "https://"):  # fmt: skip
            with pytest.raises(PushError, match="refusing to send the Hub token.*Nothing was sent"):
                push_model(micro_dir, "alice/leak", endpoint=endpoint, token=ALICE)
        monkeypatch.setattr(constants, "ENDPOINT", "http://example.com")  # HF_ENDPOINT, read at import
        with pytest.raises(PushError, match="refusing to send the Hub token to 'http://example.com'"):
            push_adapter(micro_dir, "alice/leak", base_model=REPO, token=ALICE)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected: not a byte, let alone the token, was sent
    assert len(hub.log_lines) == requests
    for endpoint in ("https://huggingface.co/", "http://127.0.0.1:8080", "http://127.4.5.6", "http://[::1]:99",
                     "http://LOCALHOST:3000"):  # fmt: skip
        assert checked_endpoint(endpoint) == endpoint.rstrip("/")


def test_a_commit_that_landed_is_kept_when_its_answer_is_lost(micro_dir, alice, monkeypatch, caplog):
    alice.create_repo("alice/slap-kept-branch")
    real_commit = HfApi.create_commit

    def commit_then_time_out(self, *args, **kwargs):
        real_commit(self, *args, **kwargs)
        raise TimeoutError("the read timed out")

    monkeypatch.setattr(HfApi, "create_commit", commit_then_time_out)
    with caplog.at_level(logging.WARNING, logger="slap_audio.hub_cards"):
        with pytest.raises(PushError, match="cannot reach the Hub.*TimeoutError"):
            push_model(micro_dir, "alice/slap-kept", commit_message="Landed")
        with pytest.raises(PushError, match="cannot reach the Hub.*TimeoutError"):
            push_model(micro_dir, "alice/slap-kept-branch", revision="v2", commit_message="Landed on v2")
    monkeypatch.undo()
    assert [c.title for c in alice.list_repo_commits("alice/slap-kept")] == ["Landed", "initial commit"]
    assert "model.safetensors" in alice.list_repo_files("alice/slap-kept")
    assert alice.list_repo_commits("alice/slap-kept-branch", revision="v2")[0].title == "Landed on v2"
    assert sum("created by this push is kept" in r.getMessage() for r in caplog.records) == 2


def test_only_the_model_code_is_staged(micro_dir, tmp_path, alice):
    folder = tmp_path / "run"
    shutil.copytree(micro_dir, folder)
    code = {p.name for p in micro_dir.glob("*.py")}  # what save_pretrained copied
    assert model_code_files(folder) == code and "modeling_slap.py" in code
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("TOKEN = 'do not publish'\n")
    (outside / "weights.safetensors").write_bytes((micro_dir / "model.safetensors").read_bytes())
    (folder / "train.py").write_text("import slap_audio  # the user's training script\n")
    (folder / "helpers.py").symlink_to(outside / "secret.py")
    (folder / "extra.safetensors").symlink_to(outside / "weights.safetensors")
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    stage = tmp_path / "stage"
    stage.mkdir()
    stage_model(folder, stage)
    staged = {p.name for p in stage.iterdir()}
    assert {p for p in staged if p.endswith(".py")} == code
    assert not {"train.py", "helpers.py", "extra.safetensors", "linked"} & staged
    assert not [p for p in stage.rglob("*") if p.is_symlink()]
    push_model(folder, "alice/slap-clean-code")  # the push itself uploads the same set
    pushed = alice.list_repo_files("alice/slap-clean-code")
    assert {f for f in pushed if f.endswith(".py")} == code and "extra.safetensors" not in pushed
