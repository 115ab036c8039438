"""The local Hub: `HubServer` (lifecycle, request log, routing) over the subset of the Hugging Face
Hub HTTP API that `huggingface_hub` 2.x and `transformers` 5.x use.

Layout: `plumbing.py` (HTTP/1.1 handling), `routes_repo.py` (accounts, repos, listings),
`routes_transfer.py` (preupload, commits, LFS, downloads), `store.py` (repos and blobs), and
`client.py` (pointing a client process at the server).

Implemented routes (`{type}` is `models`, `datasets` or `spaces`; `{repo}` is `namespace/name`;
`{prefix}` is empty for models, `datasets/` or `spaces/` otherwise):

    GET    /api/whoami-v2
    POST   /api/repos/create                         DELETE /api/repos/delete
    POST   /api/validate-yaml
    GET    /api/{type}/{repo}[/revision/{rev}]       (repo_info; `blobs=1` adds sizes/LFS info)
    PUT    /api/{type}/{repo}/settings               (visibility)
    GET    /api/{type}/{repo}/tree/{rev}[/{path}]    (paginated with a `Link` header)
    POST   /api/{type}/{repo}/paths-info/{rev}
    GET    /api/{type}/{repo}/refs                   GET /api/{type}/{repo}/commits/{rev}
    POST   /api/{type}/{repo}/branch/{branch}        DELETE /api/{type}/{repo}/branch/{branch}
    POST   /api/{type}/{repo}/preupload/{rev}        POST /api/{type}/{repo}/commit/{rev} (NDJSON)
    POST   /{prefix}{repo}.git/info/lfs/objects/batch    (LFS batch API, "basic" transfer)
    POST   /{prefix}{repo}.git/info/lfs/objects/verify
    PUT    /_lfs/upload/{type}/{repo}/{oid}?size=..&sig=..  (pre-signed, no Authorization)
    GET    /{prefix}{repo}/resolve/{rev}/{path}      (and HEAD; Range supported)

Xet is not spoken: `/api/{type}/{repo}/xet-*-token/...` answers 501 with a message telling the
caller to set `HF_HUB_DISABLE_XET=1` (see `client.py`, which does it).

The request log (`HubServer.log_lines`) records method, path, status and user, never the
`Authorization` header's value nor any configured token.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

from .plumbing import HubHTTPServer, Request
from .routes_repo import RepoRoutes
from .routes_transfer import TransferRoutes
from .store import HubError, HubState, remove_tree

__all__ = ["HubServer"]

_REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}


class HubServer(RepoRoutes, TransferRoutes):
    """A local, in-memory Hugging Face Hub on `127.0.0.1`, served from a background thread.

    Example:
        with HubServer(tokens={"hf_alice": "alice"}) as hub:
            with hub.client(token="hf_alice"):        # this process talks to the local hub
                HfApi().create_repo("alice/tiny")
            env = hub.env(token="hf_alice")            # ... and so can a subprocess

    Args:
        tokens: bearer token -> user name. Any other token gets 401.
        orgs: organisation -> member user names (members may write to the org namespace).
        lfs_threshold: files of at least this many bytes are stored with LFS (the Hub uses 10 MB).
        root: where file contents go; a temporary directory (removed on stop) if not given.
        port: 0 picks a free port.
    """

    def __init__(
        self,
        tokens: Mapping[str, str],
        orgs: Mapping[str, Iterable[str]] | None = None,
        lfs_threshold: int = 10 * 1024 * 1024,
        root: str | Path | None = None,
        port: int = 0,
    ) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="slap-hub-")) if root is None else Path(root)
        self.state = HubState(self.root, tokens, orgs or {}, lfs_threshold)
        self.requested_port = port
        self._secret = secrets.token_bytes(32)  # signs LFS upload URLs
        self._log: list[str] = []
        self._errors: list[BaseException] = []
        self._log_lock = threading.Lock()
        self._httpd: HubHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------- lifecycle

    def start(self) -> HubServer:
        self._httpd = HubHTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name=f"hubserver:{self.port}",
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.close_connections()
            self._httpd.server_close()
            assert self._thread is not None
            self._thread.join(timeout=10)
            self._httpd = None
        if self._own_root:
            remove_tree(self.root)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def endpoint(self) -> str:
        """The value for `HF_ENDPOINT` / `HfApi(endpoint=...)`, e.g. `http://127.0.0.1:54321`."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------------- client helpers

    def client(
        self, token: str | None = None, hf_home: str | Path | None = None
    ) -> AbstractContextManager[None]:
        """Context manager pointing this process's `huggingface_hub`/`transformers` here.

        See `tests.hubserver.client.hub_client` for what it patches.
        """
        from .client import hub_client

        return hub_client(self.endpoint, token=token, hf_home=hf_home)

    def env(
        self,
        token: str | None = None,
        hf_home: str | Path | None = None,
        base: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Environment for a subprocess that must talk to this server (see `client.hub_env`)."""
        from .client import hub_env

        return hub_env(self.endpoint, token=token, hf_home=hf_home, base=base)

    # ------------------------------------------------------------------------- request log

    @property
    def log_lines(self) -> list[str]:
        """One line per request: `METHOD /path?query STATUS user=...` (no credentials)."""
        with self._log_lock:
            return list(self._log)

    @property
    def log_text(self) -> str:
        return "\n".join(self.log_lines)

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised by route handlers (each also answered with a 500)."""
        return list(self._errors)

    def record(self, req: Request, status: int) -> None:
        path = req.handler.path
        if path.startswith("/_lfs/upload/"):
            path = path.split("?", 1)[0] + "?<signed>"
        line = f"{req.method} {path} {status} user={req.user or '-'}"
        for token in self.state.users:  # defence in depth: a token never reaches the log
            line = line.replace(token, "<redacted>")
        with self._log_lock:
            self._log.append(line)

    def record_exception(self, exc: BaseException) -> None:
        with self._log_lock:
            self._errors.append(exc)

    # ------------------------------------------------------------------------- routing

    def route(self, req: Request) -> None:
        s, m = req.segments, req.method
        if s[:1] == ["api"]:
            if s == ["api", "whoami-v2"] and m == "GET":
                return self._whoami(req)
            if s == ["api", "repos", "create"] and m == "POST":
                return self._create_repo(req)
            if s == ["api", "repos", "delete"] and m == "DELETE":
                return self._delete_repo(req)
            if s == ["api", "validate-yaml"] and m == "POST":
                return self._validate_yaml(req)
            if len(s) >= 4 and s[1] in _REPO_TYPES:
                return self._repo_api(req, _REPO_TYPES[s[1]], f"{s[2]}/{s[3]}", s[4:])
        elif s[:2] == ["_lfs", "upload"] and m == "PUT" and len(s) == 6:
            return self._lfs_upload(req, s[2], f"{s[3]}/{s[4]}", s[5])
        else:
            repo_type, rest = "model", s
            if s and s[0] in ("datasets", "spaces"):
                repo_type, rest = _REPO_TYPES[s[0]], s[1:]
            if len(rest) >= 5 and rest[2] == "resolve" and m in ("GET", "HEAD"):
                return self._resolve(
                    req, repo_type, f"{rest[0]}/{rest[1]}", rest[3], "/".join(rest[4:])
                )
            if (
                len(rest) == 6
                and rest[1].endswith(".git")
                and rest[2:5] == ["info", "lfs", "objects"]
            ):
                repo_id = f"{rest[0]}/{rest[1][: -len('.git')]}"
                if rest[5] == "batch" and m == "POST":
                    return self._lfs_batch(req, repo_type, repo_id)
                if rest[5] == "verify" and m == "POST":
                    return self._lfs_verify(req, repo_type, repo_id)
        raise HubError(404, f"Not implemented by the local test hub: {m} {req.raw_path}")

    def _repo_api(self, req: Request, repo_type: str, repo_id: str, rest: list[str]) -> None:
        m, st = req.method, self.state
        action = rest[0] if rest else ""
        if action.startswith("xet-"):
            raise HubError(
                501,
                "This local test hub does not implement Xet storage. Set HF_HUB_DISABLE_XET=1 "
                "(tests.hubserver's client helpers do) so huggingface_hub uses LFS instead.",
            )
        if action == "branch" and len(rest) >= 2:
            repo = st.get_repo(repo_type, repo_id, req.user, write=True)
            branch = "/".join(rest[1:])
            if m == "POST":
                st.create_branch(repo, branch, (req.json() or {}).get("startingPoint"))
                return req.handler.send_json(200, {})
            if m == "DELETE":
                st.delete_branch(repo, branch)
                return req.handler.send_json(200, {})
        if action == "settings" and m == "PUT":
            repo = st.get_repo(repo_type, repo_id, req.user, write=True)
            body = req.json() or {}
            private = body.get("private")
            if body.get("visibility") is not None:
                private = body["visibility"] != "public"
            if private is not None:
                st.set_private(repo, bool(private))
            return req.handler.send_json(200, {})
        write = action in ("preupload", "commit")
        with st.lock:
            repo = st.get_repo(repo_type, repo_id, req.user, write=write)
        if m == "GET" and not rest:
            return self._repo_info(req, repo, "main")
        if m == "GET" and action == "revision" and len(rest) >= 2:
            return self._repo_info(req, repo, "/".join(rest[1:]))
        if m == "GET" and action == "tree" and len(rest) >= 2:
            return self._tree(req, repo, rest[1], "/".join(rest[2:]))
        if m == "POST" and action == "paths-info" and len(rest) >= 2:
            return self._paths_info(req, repo, "/".join(rest[1:]))
        if m == "GET" and action == "refs":
            return self._refs(req, repo)
        if m == "GET" and action == "commits" and len(rest) >= 2:
            return self._commits(req, repo, "/".join(rest[1:]))
        if m == "POST" and action == "preupload" and len(rest) >= 2:
            return self._preupload(req, repo, "/".join(rest[1:]))
        if m == "POST" and action == "commit" and len(rest) >= 2:
            return self._commit(req, repo, "/".join(rest[1:]))
        raise HubError(404, f"Not implemented by the local test hub: {m} {req.raw_path}")
