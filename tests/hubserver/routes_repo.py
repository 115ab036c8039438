"""Repository and account routes of the local Hub: who am I, create/delete, info and listings."""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import parse_qs

from .plumbing import URL_PREFIX, Request, RouteBase, is_true
from .store import Commit, HubError, Repo, now_iso, tree_oid

__all__ = ["RepoRoutes"]

_TREE_PAGE = 1000


class RepoRoutes(RouteBase):
    """Handlers for `/api/whoami-v2`, `/api/repos/*`, `/api/validate-yaml` and repo metadata."""

    def _whoami(self, req: Request) -> None:
        user = self.require_user(req)
        orgs = [
            {"type": "org", "name": org, "fullname": org, "roleInOrg": "write"}
            for org in self.state.orgs_of(user)
        ]
        req.handler.send_json(
            200,
            {
                "type": "user",
                "id": hashlib.sha1(user.encode()).hexdigest()[:24],
                "name": user,
                "fullname": user,
                "email": f"{user}@example.invalid",
                "emailVerified": True,
                "canPay": False,
                "isPro": False,
                "periodEnd": None,
                "avatarUrl": "",
                "orgs": orgs,
                "auth": {
                    "type": "access_token",
                    "accessToken": {
                        "displayName": "local-test",
                        "role": "write",
                        "createdAt": now_iso(),
                    },
                },
            },
        )

    def _create_repo(self, req: Request) -> None:
        user = self.require_user(req)
        body = req.json() or {}
        repo_type = body.get("type") or "model"
        if repo_type not in URL_PREFIX:
            raise HubError(400, f"Unsupported repo type {repo_type!r}")
        namespace, name = body.get("organization") or user, str(body.get("name", ""))
        private = bool(body.get("private")) or body.get("visibility") in ("private", "protected")
        repo_id = f"{namespace}/{name}"
        try:
            self.state.create_repo(repo_type, namespace, name, private, user)
        except HubError as e:
            if e.status == 409:
                url = self.repo_url(repo_type, repo_id)
                return req.handler.send_json(409, {"error": e.message, "url": url}, error=e)
            raise
        req.handler.send_json(
            200, {"url": self.repo_url(repo_type, repo_id), "name": repo_id, "id": repo_id}
        )

    def _delete_repo(self, req: Request) -> None:
        user = self.require_user(req)
        body = req.json() or {}
        repo_id = f"{body.get('organization') or user}/{body.get('name')}"
        self.state.delete_repo(body.get("type") or "model", repo_id, user)
        req.handler.send_json(200, {})

    def _validate_yaml(self, req: Request) -> None:
        content = str((req.json() or {}).get("content", ""))
        _, error = _front_matter(content)
        if error:
            return req.handler.send_json(400, {"errors": [{"message": error}], "warnings": []})
        req.handler.send_json(200, {"errors": [], "warnings": []})

    def _repo_info(self, req: Request, repo: Repo, revision: str) -> None:
        with self.state.lock:
            commit = repo.resolve(revision)
        with_blobs = is_true(req.query.get("blobs"))
        siblings = []
        for path in sorted(commit.files):
            sibling: dict[str, Any] = {"rfilename": path}
            blob = commit.files[path]
            if with_blobs:
                sibling.update(size=blob.size, blobId=blob.git_oid)
                if blob.lfs:
                    sibling["lfs"] = {
                        "size": blob.size,
                        "sha256": blob.sha256,
                        "pointerSize": blob.pointer_size,
                    }
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.namespace,
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(b.size for b in commit.files.values()),
        }
        if repo.repo_type == "model":
            info["modelId"] = repo.repo_id
        readme = commit.files.get("README.md")
        if readme is not None and readme.size < 1_000_000:
            card, _ = _front_matter(self.state.blobs.read(readme.sha256).decode(errors="replace"))
            if isinstance(card, dict):
                info["cardData"] = card
                for key in ("pipeline_tag", "library_name"):
                    if isinstance(card.get(key), str):
                        info[key] = card[key]
                if isinstance(card.get("tags"), list):
                    info["tags"] = [str(t) for t in card["tags"]]
        req.handler.send_json(200, info)

    # ------------------------------------------------------------------------- listings

    def _entry(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict[str, Any]:
        blob = commit.files.get(path)
        if blob is not None:
            entry: dict[str, Any] = {
                "type": "file",
                "oid": blob.git_oid,
                "size": blob.size,
                "path": path,
            }
            if blob.lfs:
                entry["lfs"] = {
                    "oid": blob.sha256,
                    "size": blob.size,
                    "pointerSize": blob.pointer_size,
                }
        else:
            oid = tree_oid(commit.files, path.rstrip("/") + "/")
            entry = {"type": "directory", "oid": oid, "size": 0, "path": path}
        if expand:
            last = repo.last_commit_touching(commit.oid, path)
            entry["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
        return entry

    def _tree(self, req: Request, repo: Repo, revision: str, path: str) -> None:
        recursive, expand = is_true(req.query.get("recursive")), is_true(req.query.get("expand"))
        with self.state.lock:
            commit = repo.resolve(revision)
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in commit.files):
            raise HubError(404, f"Path {path} not found in {revision}", "EntryNotFound")
        folders, files = set(), []
        for p in commit.files:
            if not p.startswith(prefix):
                continue
            parts = p[len(prefix) :].split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                files.append(p)
        paths = sorted(folders) + sorted(files)
        cursor = int(req.query.get("cursor") or 0)
        page = paths[cursor : cursor + _TREE_PAGE]
        headers = {}
        if cursor + _TREE_PAGE < len(paths):
            query = f"recursive={recursive}&expand={expand}&cursor={cursor + _TREE_PAGE}"
            headers["Link"] = f'<{self.endpoint}{req.raw_path}?{query}>; rel="next"'
        req.handler.send_json(200, [self._entry(repo, commit, p, expand) for p in page], **headers)

    def _paths_info(self, req: Request, repo: Repo, revision: str) -> None:
        form = parse_qs(req.body().decode(), keep_blank_values=True)  # form-encoded, like the Hub
        expand = is_true((form.get("expand") or ["false"])[-1])
        with self.state.lock:
            commit = repo.resolve(revision)
        out = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in commit.files or any(p.startswith(path + "/") for p in commit.files):
                out.append(self._entry(repo, commit, path, expand))
        req.handler.send_json(200, out)

    def _refs(self, req: Request, repo: Repo) -> None:
        with self.state.lock:
            refs = sorted(repo.branches.items())
        branches = [
            {"name": n, "ref": f"refs/heads/{n}", "targetCommit": oid}
            for n, oid in refs
            if not n.startswith("refs/")
        ]
        prs = [
            {"name": n, "ref": n, "targetCommit": oid}
            for n, oid in refs
            if n.startswith("refs/pr/")
        ]
        payload: dict[str, Any] = {"branches": branches, "tags": [], "converts": []}
        if is_true(req.query.get("include_prs")):
            payload["pullRequests"] = prs
        req.handler.send_json(200, payload)

    def _commits(self, req: Request, repo: Repo, revision: str) -> None:
        with self.state.lock:
            history = list(repo.history(revision))
        req.handler.send_json(
            200,
            [
                {
                    "id": c.oid,
                    "title": c.title,
                    "message": c.message,
                    "authors": [{"user": c.author, "avatar": None}],
                    "date": c.date,
                }
                for c in history
            ],
        )


def _front_matter(content: str) -> tuple[Any, str | None]:
    """Parse a model card's YAML front matter: (data or None, error message or None)."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.DOTALL)
    if not match:
        return None, None
    try:
        import yaml
    except ImportError:  # pyyaml is optional: accept the card unchecked
        return None, None
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as e:
        return None, f"Invalid YAML in README.md metadata: {e}"
    if data is not None and not isinstance(data, dict):
        return None, "README.md metadata must be a YAML mapping"
    return data, None
