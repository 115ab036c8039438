"""Upload and download routes of the local Hub: preupload, commit, LFS batch/upload/verify, resolve."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any
from urllib.parse import quote

from .plumbing import URL_PREFIX, Request, RouteBase, is_true
from .store import CommitOp, HubError, Repo, copy_range

__all__ = ["TransferRoutes"]

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class TransferRoutes(RouteBase):
    """Handlers that move file contents in (commits, LFS) and out (`/resolve`)."""

    _secret: bytes  # signs LFS upload URLs (set by HubServer)

    def _preupload(self, req: Request, repo: Repo, revision: str) -> None:
        body = req.json() or {}
        gitignore = body.get("gitIgnore")
        files = []
        with self.state.lock:
            commit = repo.resolve(revision)
            for item in body.get("files", []):
                path, size = str(item["path"]), int(item["size"])
                sample = base64.b64decode(item.get("sample") or "")
                mode = self.state.upload_mode(repo, revision, path, size, sample)
                existing = commit.files.get(path)
                files.append(
                    {
                        "path": path,
                        "uploadMode": mode,
                        "shouldIgnore": self.state.should_ignore(repo, revision, path, gitignore),
                        "oid": existing.remote_oid if existing is not None else None,
                    }
                )
        req.handler.send_json(200, {"files": files, "commitOid": commit.oid})

    def _commit(self, req: Request, repo: Repo, revision: str) -> None:
        user = self.require_user(req)
        header: dict[str, Any] = {}
        ops: list[CommitOp] = []
        for line in req.body().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item.get("key"), item.get("value") or {}
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"Unsupported encoding {value.get('encoding')!r}")
                ops.append(
                    CommitOp("file", value["path"], content=base64.b64decode(value["content"]))
                )
            elif key == "lfsFile":
                size = value.get("size")
                ops.append(CommitOp("lfsFile", value["path"], oid=value["oid"], size=size))
            elif key in ("deletedFile", "deletedFolder"):
                ops.append(CommitOp(key, value["path"]))
            else:
                raise HubError(400, f"Unknown commit payload key {key!r}")
        title = str(header.get("summary") or "")
        if not title:
            raise HubError(400, "Commit summary (title) is required")
        create_pr = is_true(req.query.get("create_pr"))
        commit, branch = self.state.commit(
            repo,
            revision,
            ops,
            user,
            title,
            str(header.get("description") or ""),
            parent_commit=header.get("parentCommit"),
            create_pr=create_pr,
        )
        url = self.repo_url(repo.repo_type, repo.repo_id)
        pr_url = f"{url}/discussions/{branch.rsplit('/', 1)[-1]}" if create_pr else None
        req.handler.send_json(
            200,
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{url}/commit/{commit.oid}",
                "hookOutput": "",
                "pullRequestUrl": pr_url,
            },
        )

    def _upload_signature(self, repo_type: str, repo_id: str, oid: str, size: int) -> str:
        message = f"{repo_type}:{repo_id}:{oid}:{size}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _lfs_batch(self, req: Request, repo_type: str, repo_id: str) -> None:
        body = req.json() or {}
        operation = body.get("operation")
        repo = self.state.get_repo(repo_type, repo_id, req.user, write=operation == "upload")
        if operation != "upload":
            raise HubError(
                400, f"Only the 'upload' LFS batch operation is implemented, not {operation!r}"
            )
        if "basic" not in (body.get("transfers") or ["basic"]):
            raise HubError(400, "Only the 'basic' LFS transfer is implemented")
        objects = []
        for obj in body.get("objects", []):
            oid, size = str(obj.get("oid", "")), obj.get("size")
            if not _HEX64.match(oid) or not isinstance(size, int) or size < 0:
                objects.append({"oid": oid, "size": size if isinstance(size, int) else 0,
                                "error": {"code": 422, "message": "Invalid oid or size"}})  # fmt: skip
                continue
            if self.state.has_lfs_object(repo, oid, size):
                objects.append({"oid": oid, "size": size})  # already there: no action
                continue
            sig = self._upload_signature(repo_type, repo_id, oid, size)
            upload = f"{self.endpoint}/_lfs/upload/{repo_type}/{quote(repo_id)}/{oid}?size={size}&sig={sig}"
            verify = f"{self.endpoint}/{URL_PREFIX[repo_type]}{repo_id}.git/info/lfs/objects/verify"
            objects.append(
                {
                    "oid": oid,
                    "size": size,
                    "authenticated": True,
                    "actions": {"upload": {"href": upload}, "verify": {"href": verify}},
                }
            )
        req.handler.send_json(
            200,
            {"transfer": "basic", "objects": objects},
            **{"Content-Type": "application/vnd.git-lfs+json"},
        )

    def _lfs_upload(self, req: Request, repo_type: str, repo_id: str, oid: str) -> None:
        """PUT target of the "basic" transfer: authorised by the URL's signature, like S3."""
        try:
            size = int(req.query.get("size", ""))
        except ValueError as e:
            raise HubError(400, "Missing size") from e
        expected = self._upload_signature(repo_type, repo_id, oid, size)
        if not _HEX64.match(oid) or not hmac.compare_digest(expected, req.query.get("sig", "")):
            raise HubError(403, "Invalid or expired upload signature")
        repo = self.state.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        self.state.add_lfs_object(repo, req.iter_body(), oid, size)
        req.handler.send_bytes(200, b"", {"ETag": f'"{oid}"'})

    def _lfs_verify(self, req: Request, repo_type: str, repo_id: str) -> None:
        repo = self.state.get_repo(repo_type, repo_id, req.user, write=True)
        body = req.json() or {}
        if not self.state.has_lfs_object(repo, str(body.get("oid")), body.get("size")):
            raise HubError(404, f"LFS object {body.get('oid')} not found")
        req.handler.send_json(200, {"success": True})

    # ------------------------------------------------------------------------- downloads

    def _resolve(
        self, req: Request, repo_type: str, repo_id: str, revision: str, path: str
    ) -> None:
        with self.state.lock:
            repo = self.state.get_repo(repo_type, repo_id, req.user)
            commit = repo.resolve(revision)
        blob = commit.files.get(path)
        if blob is None:
            error = HubError(404, "Entry not found", "EntryNotFound")
            return req.handler.send_json(
                404, {"error": error.message}, error=error, **{"X-Repo-Commit": commit.oid}
            )
        headers = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "ETag": f'"{blob.etag}"',
            "X-Repo-Commit": commit.oid,
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}",
        }
        if blob.lfs:
            headers["X-Linked-Etag"] = f'"{blob.sha256}"'
            headers["X-Linked-Size"] = str(blob.size)
        start, length, status = 0, blob.size, 200
        range_header = req.handler.headers.get("Range")
        if range_header:
            span = _parse_range(range_header, blob.size)
            if span is None:
                headers["Content-Range"] = f"bytes */{blob.size}"
                return req.handler.send_bytes(416, b"", headers)
            start, end = span
            length, status = end - start + 1, 206
            headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
        req.handler.start(status, {**headers, "Content-Length": str(length)})
        if req.method == "GET":
            with self.state.blobs.open(blob.sha256) as f:
                copy_range(f, req.handler.wfile, start, length)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """`bytes=a-b`, `bytes=a-` or `bytes=-n` -> inclusive (start, end); None if unsatisfiable."""
    match = _RANGE.match(header.strip())
    if match is None or not (match.group(1) or match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:
        start, end = max(size - int(last), 0), size - 1
    return (start, end) if start < size and start <= end else None
