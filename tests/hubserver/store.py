"""Repository state of the local Hub: repos, branches, commits and a content-addressed blob store.

Everything here is plain Python with no HTTP in sight; the `routes_*` modules map requests onto
it. All
mutations go through `HubState` under one re-entrant lock, so handler threads see a consistent
view. File contents live on disk (one file per sha256 under `<root>/objects/`); the rest is in
memory and disappears with the server.

Object ids follow git where the client can observe them:

* a regular file's id is its git blob sha1 (`sha1(b"blob <size>\\0" + content)`),
* an LFS file's id is the git blob sha1 of its LFS pointer file, and its `lfs.oid` is the sha256
  of the content,
* a commit id is the sha1 of a canonical text (tree, parent, author, title, description), so the
  same history always produces the same ids.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "DEFAULT_GITATTRIBUTES",
    "Blob",
    "BlobStore",
    "Commit",
    "HubError",
    "HubState",
    "Repo",
    "git_blob_oid",
    "lfs_pointer",
]

#: The `.gitattributes` every new repo starts with (abridged from the one the Hub creates).
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.gz", "*.h5", "*.joblib", "*.msgpack",
        "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
        "*.pth", "*.safetensors", "*.tar", "*.tar.*", "*.tflite", "*.tgz", "*.xz", "*.zip",
        "*.zst", "*tfevents*",
    )
)  # fmt: skip

_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{7,40}$")
_CHUNK = 1 << 20


class HubError(Exception):
    """An error with an HTTP status and the Hub's `X-Error-Code` (if any), raised by `HubState`."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def now_iso() -> str:
    """The current UTC time in the Hub's format (`2024-01-31T12:00:00.000Z`)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_blob_oid(data: bytes) -> str:
    """The git blob sha1 of `data`, as git (and the Hub) computes it."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file stored in git in place of an LFS file's content."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def _matches(path: str, pattern: str) -> bool:
    """gitattributes/gitignore-style match: patterns without a slash match the basename anywhere."""
    pattern = pattern.lstrip("/")
    if "/" in pattern.rstrip("/"):
        return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern + "/*")
    parts = path.split("/")
    return any(fnmatch.fnmatchcase(part, pattern.rstrip("/")) for part in parts)


def lfs_patterns(gitattributes: str) -> list[str]:
    """The patterns a `.gitattributes` text routes through LFS (`filter=lfs`)."""
    patterns = []
    for line in gitattributes.splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#") and "filter=lfs" in fields[1:]:
            patterns.append(fields[0])
    return patterns


def ignore_patterns(gitignore: str) -> list[str]:
    """The (non-negated) patterns of a `.gitignore` text."""
    lines = (line.strip() for line in gitignore.splitlines())
    return [line for line in lines if line and not line.startswith(("#", "!"))]


@dataclass(frozen=True)
class Blob:
    """One file version. `sha256` names the content in the `BlobStore`."""

    size: int
    sha256: str
    git_oid: str
    lfs: bool

    @property
    def pointer_size(self) -> int:
        return len(lfs_pointer(self.sha256, self.size))

    @property
    def remote_oid(self) -> str:
        """What the client compares with its local oid to skip unchanged files (see preupload)."""
        return self.sha256 if self.lfs else self.git_oid

    @property
    def etag(self) -> str:
        """The (unquoted) ETag `/resolve` serves: sha256 for LFS files, git blob id otherwise."""
        return self.sha256 if self.lfs else self.git_oid


@dataclass(frozen=True)
class Commit:
    """An immutable snapshot: the full file tree plus history metadata."""

    oid: str
    parent: str | None
    author: str
    title: str
    message: str
    date: str
    files: Mapping[str, Blob]


@dataclass
class Repo:
    """A repository: visibility, refs and the commits reachable from them."""

    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit oid
    commits: dict[str, Commit] = field(default_factory=dict)
    lfs_oids: set[str] = field(default_factory=set)  # LFS objects uploaded to this repo
    next_pr: int = 1

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/", 1)[0]

    def resolve(self, revision: str) -> Commit:
        """A branch name, a full commit id or a unique id prefix (>= 7 chars) -> commit."""
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        rev = revision.lower()
        if _HEX40.match(rev) and rev in self.commits:
            return self.commits[rev]
        if _HEX_PREFIX.match(rev):
            found = [oid for oid in self.commits if oid.startswith(rev)]
            if len(found) == 1:
                return self.commits[found[0]]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def history(self, revision: str) -> Iterator[Commit]:
        """Commits reachable from `revision`, newest first."""
        commit: Commit | None = self.resolve(revision)
        while commit is not None:
            yield commit
            commit = self.commits[commit.parent] if commit.parent else None

    def last_commit_touching(self, revision: str, path: str) -> Commit:
        """The newest commit reachable from `revision` that changed `path` (file or folder)."""
        for commit in self.history(revision):
            parent = self.commits[commit.parent] if commit.parent else None
            if parent is None or _subtree(commit.files, path) != _subtree(parent.files, path):
                return commit
        raise AssertionError("unreachable: the root commit always matches")


def _subtree(files: Mapping[str, Blob], path: str) -> dict[str, Blob]:
    if path in files:
        return {path: files[path]}
    prefix = path.rstrip("/") + "/"
    return {p: b for p, b in files.items() if p.startswith(prefix)}


def tree_oid(files: Mapping[str, Blob], prefix: str = "") -> str:
    """A deterministic id for the folder `prefix` (sha1 over its sorted entries)."""
    entries = sorted((p, b.git_oid) for p, b in files.items() if p.startswith(prefix))
    return hashlib.sha1("".join(f"{p}\0{oid}\n" for p, oid in entries).encode()).hexdigest()


class BlobStore:
    """Content-addressed storage of file contents on disk, keyed by sha256."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if not self.has(sha):
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path(sha))
        return sha

    def put_stream(self, chunks: Iterable[bytes], expected_sha256: str, expected_size: int) -> None:
        """Stream `chunks` to disk; keep them only if they hash to `expected_sha256`/`_size`."""
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    f.write(chunk)
            if digest.hexdigest() != expected_sha256 or size != expected_size:
                raise HubError(
                    400,
                    f"Uploaded content does not match the LFS object: expected sha256 "
                    f"{expected_sha256} ({expected_size} bytes), got {digest.hexdigest()} ({size} bytes)",
                )
            os.replace(tmp, self.path(expected_sha256))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def open(self, sha256: str) -> BinaryIO:
        return open(self.path(sha256), "rb")

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()


@dataclass
class CommitOp:
    """One operation of an NDJSON commit payload, already decoded."""

    kind: str  # "file" | "lfsFile" | "deletedFile" | "deletedFolder"
    path: str
    content: bytes | None = None
    oid: str | None = None
    size: int | None = None


class HubState:
    """All repositories of one server, plus who may do what with them."""

    def __init__(
        self,
        root: Path,
        users: Mapping[str, str],
        orgs: Mapping[str, Iterable[str]],
        lfs_threshold: int,
    ) -> None:
        self.lock = threading.RLock()
        self.blobs = BlobStore(root / "objects")
        self.users = dict(users)  # token -> user name
        self.orgs = {org: set(members) for org, members in orgs.items()}
        self.lfs_threshold = lfs_threshold
        self.repos: dict[tuple[str, str], Repo] = {}

    # ----------------------------------------------------------------------------- access

    def user_for_token(self, token: str | None) -> str | None:
        """Token -> user; raises 401 for a token the server does not know."""
        if token is None:
            return None
        user = self.users.get(token)
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return user

    def orgs_of(self, user: str) -> list[str]:
        return sorted(org for org, members in self.orgs.items() if user in members)

    def can_write_namespace(self, user: str | None, namespace: str) -> bool:
        return user is not None and (namespace == user or user in self.orgs.get(namespace, ()))

    def get_repo(self, repo_type: str, repo_id: str, user: str | None, write: bool = False) -> Repo:
        """The repo if `user` may see it (404/401 `RepoNotFound` otherwise, as the Hub does)."""
        repo = self.repos.get((repo_type, repo_id))
        readable = repo is not None and (
            not repo.private or self.can_write_namespace(user, repo.namespace)
        )
        if repo is None or not readable:
            status = 401 if user is None else 404
            raise HubError(status, "Repository not found", "RepoNotFound")
        if write and not self.can_write_namespace(user, repo.namespace):
            raise HubError(403, f"You don't have the rights to write to {repo_type}s/{repo_id}")
        return repo

    # ----------------------------------------------------------------------------- repos

    def create_repo(
        self, repo_type: str, namespace: str, name: str, private: bool, user: str
    ) -> Repo:
        if not _REPO_NAME.match(name) or "--" in name or ".." in name or name.endswith(".git"):
            raise HubError(400, f"Invalid repo name: {name!r}")
        if not self.can_write_namespace(user, namespace):
            raise HubError(
                403, f"You don't have the rights to create a {repo_type} under {namespace}"
            )
        repo_id = f"{namespace}/{name}"
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise HubError(409, f"You already created this {repo_type} repo")
            repo = Repo(repo_type=repo_type, repo_id=repo_id, private=private, created_at=now_iso())
            self.repos[(repo_type, repo_id)] = repo
            initial = CommitOp("file", ".gitattributes", content=DEFAULT_GITATTRIBUTES.encode())
            self._apply_commit(repo, None, [initial], user, "initial commit", "")
            return repo

    def delete_repo(self, repo_type: str, repo_id: str, user: str | None) -> None:
        with self.lock:
            self.get_repo(repo_type, repo_id, user, write=True)
            del self.repos[(repo_type, repo_id)]

    def set_private(self, repo: Repo, private: bool) -> None:
        with self.lock:
            repo.private = private

    def create_branch(self, repo: Repo, branch: str, starting_point: str | None) -> None:
        if not branch or branch.startswith("refs/") or ".." in branch or branch.endswith("/"):
            raise HubError(400, f"Invalid branch name: {branch!r}")
        with self.lock:
            if branch in repo.branches:
                raise HubError(409, f"Reference already exists: refs/heads/{branch}")
            repo.branches[branch] = repo.resolve(starting_point or "main").oid

    def delete_branch(self, repo: Repo, branch: str) -> None:
        with self.lock:
            if branch not in repo.branches:
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            if branch == "main":
                raise HubError(403, "Cannot delete the default branch")
            del repo.branches[branch]

    # ----------------------------------------------------------------------------- uploads

    def upload_mode(self, repo: Repo, revision: str, path: str, size: int, sample: bytes) -> str:
        """'lfs' or 'regular', as the Hub's preupload decides it.

        LFS when the file is at least `lfs_threshold` bytes, when the revision's `.gitattributes`
        routes its path through LFS (`*.safetensors filter=lfs ...`), or when it looks binary.
        """
        if size >= self.lfs_threshold or b"\0" in sample:
            return "lfs"
        commit = repo.resolve(revision)
        attributes = commit.files.get(".gitattributes")
        if attributes is not None and not attributes.lfs:
            text = self.blobs.read(attributes.sha256).decode(errors="replace")
            if any(_matches(path, pattern) for pattern in lfs_patterns(text)):
                return "lfs"
        return "regular"

    def should_ignore(self, repo: Repo, revision: str, path: str, gitignore: str | None) -> bool:
        if gitignore is None:
            blob = repo.resolve(revision).files.get(".gitignore")
            gitignore = self.blobs.read(blob.sha256).decode(errors="replace") if blob else ""
        return any(_matches(path, pattern) for pattern in ignore_patterns(gitignore))

    def add_lfs_object(self, repo: Repo, chunks: Iterable[bytes], oid: str, size: int) -> None:
        """Store an uploaded LFS object (verifying its hash) and attach it to `repo`."""
        if not self.blobs.has(oid):
            self.blobs.put_stream(chunks, oid, size)
        else:
            for _ in chunks:  # already stored: drain the request body
                pass
        with self.lock:
            repo.lfs_oids.add(oid)

    def has_lfs_object(self, repo: Repo, oid: str, size: int | None = None) -> bool:
        if oid not in repo.lfs_oids or not self.blobs.has(oid):
            return False
        return size is None or self.blobs.path(oid).stat().st_size == size

    # ----------------------------------------------------------------------------- commits

    def commit(
        self,
        repo: Repo,
        revision: str,
        ops: list[CommitOp],
        user: str,
        title: str,
        description: str,
        parent_commit: str | None = None,
        create_pr: bool = False,
    ) -> tuple[Commit, str]:
        """Apply `ops` on top of branch `revision`; returns (commit, branch it landed on)."""
        with self.lock:
            head = repo.resolve(revision)
            if revision not in repo.branches and not create_pr:
                raise HubError(400, f"Cannot commit to {revision!r}: not a branch")
            if parent_commit is not None and not head.oid.startswith(parent_commit.lower()):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            branch = revision
            if create_pr:
                branch = f"refs/pr/{repo.next_pr}"
                repo.next_pr += 1
                repo.branches[branch] = head.oid
            return self._apply_commit(repo, branch, ops, user, title, description), branch

    def _apply_commit(
        self,
        repo: Repo,
        branch: str | None,
        ops: list[CommitOp],
        user: str,
        title: str,
        message: str,
    ) -> Commit:
        parent = repo.commits[repo.branches[branch]] if branch else None
        files = dict(parent.files) if parent else {}
        for op in ops:
            if op.kind == "file":
                assert op.content is not None
                sha = self.blobs.put_bytes(op.content)
                files[op.path] = Blob(len(op.content), sha, git_blob_oid(op.content), lfs=False)
            elif op.kind == "lfsFile":
                assert op.oid is not None
                if not self.has_lfs_object(repo, op.oid, op.size):
                    raise HubError(
                        422, f"LFS object {op.oid} for {op.path!r} was not uploaded to this repo"
                    )
                size = self.blobs.path(op.oid).stat().st_size
                pointer = git_blob_oid(lfs_pointer(op.oid, size))
                files[op.path] = Blob(size, op.oid, pointer, lfs=True)
            elif op.kind == "deletedFile":
                if files.pop(op.path, None) is None:
                    raise HubError(
                        404, f"A file with this name doesn't exist: {op.path}", "EntryNotFound"
                    )
            elif op.kind == "deletedFolder":
                prefix = op.path.rstrip("/") + "/"
                doomed = [p for p in files if p.startswith(prefix)]
                if not doomed:
                    raise HubError(
                        404, f"A folder with this name doesn't exist: {op.path}", "EntryNotFound"
                    )
                for p in doomed:
                    del files[p]
            else:
                raise HubError(400, f"Unknown commit operation {op.kind!r}")
        canonical = "\n".join(
            [
                f"tree {tree_oid(files)}",
                f"parent {parent.oid if parent else ''}",
                f"author {user}",
                "",
                title,
                "",
                message,
            ]
        )
        oid = hashlib.sha1(canonical.encode()).hexdigest()
        commit = Commit(oid, parent.oid if parent else None, user, title, message, now_iso(), files)
        repo.commits[oid] = commit
        repo.branches[branch or "main"] = oid
        return commit


def copy_range(src: BinaryIO, dst: BinaryIO, start: int, length: int) -> None:
    """Copy `length` bytes of `src` from offset `start` into `dst`, in 1 MiB chunks."""
    src.seek(start)
    remaining = length
    while remaining > 0:
        chunk = src.read(min(_CHUNK, remaining))
        if not chunk:
            break
        dst.write(chunk)
        remaining -= len(chunk)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
