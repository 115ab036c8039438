"""The local Hub (`tests/hubserver`) against the real `huggingface_hub` and `transformers` clients.

`hubserver` is imported as a top-level package: `tests/` has no `__init__.py`, so pytest puts
`tests/` itself on `sys.path` (its default "prepend" import mode).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hubserver import HubServer

ALICE = "hf_test_alice_0123456789abcdef"
BOB = "hf_test_bob_fedcba9876543210"
PAYLOAD = {
    "README.md": b"---\nlibrary_name: transformers\ntags: [audio]\n---\n# test\n",
    "notes/hello.txt": b"hello hub\n",
    "model.safetensors": os.urandom(4096),  # LFS through .gitattributes
    "big.dat": os.urandom(30 * 1024 * 1024),  # LFS through size (>= 10 MiB)
}


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    with HubServer(tokens={ALICE: "alice", BOB: "bob"}) as server:
        yield server
        assert server.errors == []  # no handler crashed during the module


@pytest.fixture
def client(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HfApi]:
    """This process talks to `hub` as alice, from a suite that otherwise runs offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with hub.client(token=ALICE, hf_home=tmp_path / "hf_home"):
        yield HfApi()


@pytest.fixture(scope="module")
def payload_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("payload")
    for name, data in PAYLOAD.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.fixture(scope="module")
def uploaded(hub: HubServer, payload_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`alice/payload` with PAYLOAD committed on main by `upload_folder`; returns the commit id."""
    with hub.client(token=ALICE, hf_home=tmp_path_factory.mktemp("hf_home")):
        api = HfApi()
        api.create_repo("alice/payload")
        info = api.upload_folder(
            repo_id="alice/payload", folder_path=payload_dir, commit_message="Add payload"
        )
    return info.oid


def _assert_same_files(folder: str | Path) -> None:
    for name, data in PAYLOAD.items():
        assert Path(folder, name).read_bytes() == data, name


def test_whoami_ok_and_401(client: HfApi) -> None:
    assert client.whoami()["name"] == "alice"
    assert HfApi(token=BOB).whoami()["name"] == "bob"
    with pytest.raises(HfHubHTTPError, match="Invalid user token") as err:
        HfApi(token="hf_not_a_real_token").whoami()
    assert err.value.response.status_code == 401


def test_upload_uses_lfs_basic_transfer_not_xet(
    hub: HubServer, uploaded: str, client: HfApi
) -> None:
    assert len(uploaded) == 40 and int(uploaded, 16) >= 0
    info = client.model_info("alice/payload", files_metadata=True)
    assert info.sha == uploaded
    assert info.card_data is not None and info.card_data.library_name == "transformers"
    lfs = {s.rfilename: s.lfs is not None for s in info.siblings}
    assert lfs == {
        ".gitattributes": False,
        "README.md": False,
        "notes/hello.txt": False,
        "model.safetensors": True,
        "big.dat": True,
    }
    big = next(s for s in info.siblings if s.rfilename == "big.dat")
    assert big.lfs.sha256 == hashlib.sha256(PAYLOAD["big.dat"]).hexdigest()
    assert big.size == len(PAYLOAD["big.dat"])
    assert sorted(client.list_repo_files("alice/payload")) == sorted([".gitattributes", *PAYLOAD])
    log = hub.log_text
    assert "xet" not in log.lower()
    assert "/info/lfs/objects/batch 200" in log and "PUT /_lfs/upload/" in log


def test_snapshot_download_in_process(uploaded: str, client: HfApi) -> None:
    folder = snapshot_download("alice/payload")
    assert Path(folder).name == uploaded
    _assert_same_files(folder)
    path = hf_hub_download("alice/payload", "notes/hello.txt", revision=uploaded)
    assert Path(path).read_bytes() == PAYLOAD["notes/hello.txt"]


def test_snapshot_download_in_fresh_subprocess(
    hub: HubServer, uploaded: str, tmp_path: Path
) -> None:
    env = hub.env(token=ALICE, hf_home=tmp_path / "child_home")
    env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    script = (
        "from huggingface_hub import snapshot_download; print(snapshot_download('alice/payload'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    folder = Path(out.stdout.strip().splitlines()[-1])
    assert folder.is_relative_to(tmp_path / "child_home") and folder.name == uploaded
    _assert_same_files(folder)


def test_branch_commit_is_isolated(client: HfApi) -> None:
    client.create_repo("alice/branchy")
    main_head = client.upload_file(
        path_or_fileobj=b"v1", path_in_repo="weights.txt", repo_id="alice/branchy",
        commit_message="v1 on main",
    ).oid  # fmt: skip
    client.create_branch("alice/branchy", branch="dev")
    dev = client.upload_file(
        path_or_fileobj=b"dev only", path_in_repo="dev.txt", repo_id="alice/branchy",
        revision="dev", commit_message="Dev-only commit", commit_description="details",
    )  # fmt: skip
    assert dev.oid != main_head
    assert client.file_exists("alice/branchy", "dev.txt", revision="dev")
    assert not client.file_exists("alice/branchy", "dev.txt")
    assert client.repo_info("alice/branchy").sha == main_head
    assert client.repo_info("alice/branchy", revision="dev").sha == dev.oid
    assert sorted(client.list_repo_files("alice/branchy", revision="dev")) == [
        ".gitattributes", "dev.txt", "weights.txt",
    ]  # fmt: skip
    commits = client.list_repo_commits("alice/branchy", revision="dev")
    assert [c.title for c in commits] == ["Dev-only commit", "v1 on main", "initial commit"]
    assert commits[0].message == "details" and commits[0].commit_id == dev.oid
    refs = {b.name: b.target_commit for b in client.list_repo_refs("alice/branchy").branches}
    assert refs == {"main": main_head, "dev": dev.oid}
    path = hf_hub_download("alice/branchy", "dev.txt", revision="dev")
    assert Path(path).read_bytes() == b"dev only"
    # An old commit stays addressable after main moves on.
    client.upload_file(path_or_fileobj=b"v2", path_in_repo="weights.txt", repo_id="alice/branchy",
                       commit_message="v2")  # fmt: skip
    old = hf_hub_download("alice/branchy", "weights.txt", revision=main_head)
    assert Path(old).read_bytes() == b"v1"
    assert Path(hf_hub_download("alice/branchy", "weights.txt")).read_bytes() == b"v2"


def test_private_repo_needs_owner_token(client: HfApi, tmp_path: Path) -> None:
    client.create_repo("alice/secret", private=True)
    client.upload_file(path_or_fileobj=b"s3cret", path_in_repo="s.txt", repo_id="alice/secret",
                       commit_message="secret")  # fmt: skip
    assert client.model_info("alice/secret").private is True
    for api in (HfApi(token=False), HfApi(token=BOB)):
        with pytest.raises(RepositoryNotFoundError):
            api.model_info("alice/secret")
        assert not api.file_exists("alice/secret", "s.txt")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/secret", "s.txt", token=False, cache_dir=tmp_path / "anon")
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("alice/secret", token=BOB, cache_dir=tmp_path / "bob")
    assert Path(hf_hub_download("alice/secret", "s.txt")).read_bytes() == b"s3cret"
    # Bob may not write to alice's namespace, public repo or not.
    client.create_repo("alice/public")
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(token=BOB).upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="alice/public")
    assert err.value.response.status_code == 403


def test_missing_things(client: HfApi, uploaded: str) -> None:
    assert not client.file_exists("alice/payload", "nope.txt")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("alice/payload", "nope.txt")
    with pytest.raises(RepositoryNotFoundError):
        client.repo_info("alice/does-not-exist")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/does-not-exist", "config.json")
    with pytest.raises(RevisionNotFoundError):
        client.repo_info("alice/payload", revision="no-such-branch")
    assert not client.file_exists("alice/payload", "README.md", revision="no-such-branch")


def test_resolve_headers_and_range(hub: HubServer, uploaded: str) -> None:
    url = f"{hub.endpoint}/alice/payload/resolve/main/big.dat"
    auth = {"Authorization": f"Bearer {ALICE}"}
    head = httpx2.head(url, headers=auth)
    assert head.status_code == 200
    assert head.headers["X-Repo-Commit"] == uploaded
    sha = hashlib.sha256(PAYLOAD["big.dat"]).hexdigest()
    assert head.headers["X-Linked-Etag"] == f'"{sha}"'
    assert (
        int(head.headers["X-Linked-Size"])
        == int(head.headers["Content-Length"])
        == len(PAYLOAD["big.dat"])
    )
    part = httpx2.get(url, headers={**auth, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == PAYLOAD["big.dat"][100:200]
    missing = httpx2.head(f"{hub.endpoint}/alice/payload/resolve/main/nope", headers=auth)
    assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "EntryNotFound"


def test_lfs_upload_url_is_signed_and_content_checked(hub: HubServer, client: HfApi) -> None:
    client.create_repo("alice/raw-lfs", exist_ok=True)
    data = os.urandom(3 * 1024 * 1024 + 17)
    oid = hashlib.sha256(data).hexdigest()
    auth = {"Authorization": f"Bearer {ALICE}"}
    batch = httpx2.post(
        f"{hub.endpoint}/alice/raw-lfs.git/info/lfs/objects/batch",
        headers=auth,
        json={
            "operation": "upload",
            "transfers": ["basic"],
            "objects": [{"oid": oid, "size": len(data)}],
        },
    ).json()
    assert batch["transfer"] == "basic"
    actions = batch["objects"][0]["actions"]
    href, verify = actions["upload"]["href"], actions["verify"]["href"]
    assert ALICE not in href
    assert httpx2.put(href.replace("sig=", "sig=0"), content=data).status_code == 403
    assert httpx2.put(href, content=data[:-1] + b"!").status_code == 400  # wrong content
    assert (
        httpx2.post(verify, headers=auth, json={"oid": oid, "size": len(data)}).status_code == 404
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for start in range(0, len(data), 1 << 20):
            yield data[start : start + (1 << 20)]

    assert httpx2.put(href, content=chunks()).status_code == 200
    assert (
        httpx2.post(verify, headers=auth, json={"oid": oid, "size": len(data)}).status_code == 200
    )
    again = httpx2.post(
        f"{hub.endpoint}/alice/raw-lfs.git/info/lfs/objects/batch",
        headers=auth,
        json={"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]},
    ).json()
    assert "actions" not in again["objects"][0]  # already stored: nothing to upload


def test_create_exist_ok_and_delete(client: HfApi) -> None:
    url = client.create_repo("alice/temp")
    assert url.repo_id == "alice/temp" and url.startswith(constants.ENDPOINT)
    with pytest.raises(HfHubHTTPError) as err:
        client.create_repo("alice/temp")
    assert err.value.response.status_code == 409
    assert client.create_repo("alice/temp", exist_ok=True).repo_id == "alice/temp"
    client.delete_repo("alice/temp")
    with pytest.raises(RepositoryNotFoundError):
        client.repo_info("alice/temp")
    client.delete_repo("alice/temp", missing_ok=True)


def test_log_never_contains_tokens(hub: HubServer, client: HfApi) -> None:
    client.create_repo("alice/logged", exist_ok=True)
    client.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/logged")
    hf_hub_download("alice/logged", "x.txt")
    with pytest.raises(HfHubHTTPError):
        HfApi(token="hf_wrong_token_zzz").whoami()
    log = hub.log_text
    assert "user=alice" in log
    for secret in (ALICE, BOB, "hf_wrong_token_zzz", "Bearer"):
        assert secret not in log


def test_client_helper_restores_offline_config(hub: HubServer) -> None:
    endpoint, offline = constants.ENDPOINT, constants.HF_HUB_OFFLINE
    with hub.client(token=ALICE):
        assert constants.ENDPOINT == hub.endpoint and constants.HF_HUB_OFFLINE is False
        assert os.environ["HF_ENDPOINT"] == hub.endpoint and os.environ["HF_TOKEN"] == ALICE
    assert (constants.ENDPOINT, constants.HF_HUB_OFFLINE) == (endpoint, offline)
    assert os.environ.get("HF_ENDPOINT") != hub.endpoint


def test_transformers_push_then_from_pretrained_in_fresh_process(
    hub: HubServer, client: HfApi, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BertModel(config)
    model.push_to_hub("alice/tiny-bert")
    assert "model.safetensors" in client.list_repo_files("alice/tiny-bert")

    out = tmp_path / "state.pt"
    script = textwrap.dedent(
        f"""
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained("alice/tiny-bert")
        torch.save(model.state_dict(), {str(out)!r})
        """
    )
    env = hub.env(token=ALICE, hf_home=tmp_path / "child_home")
    env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    loaded = torch.load(out)
    expected = model.state_dict()
    assert loaded.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(loaded[name], tensor), name
