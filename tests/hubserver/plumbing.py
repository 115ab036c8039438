"""HTTP plumbing of the local Hub: request parsing, response helpers, the threaded server.

Knows nothing about repositories: every request is handed to a `Router` (the `HubServer`), and a
`HubError` raised there becomes the JSON error response the Hub would send (`{"error": ...}` plus
`X-Error-Code` / `X-Error-Message` headers, which `huggingface_hub` maps onto its exceptions).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from .store import HubError, HubState

__all__ = ["Handler", "HubHTTPServer", "Request", "RouteBase", "Router", "is_true"]

_CHUNK = 1 << 20
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def is_true(value: str | None) -> bool:
    """Query-string booleans as `huggingface_hub` sends them (`true`, `True`, `1`)."""
    return value is not None and value.lower() in ("1", "true", "yes")


class Router(Protocol):
    """What `HubHTTPServer` needs from the application (implemented by `HubServer`)."""

    state: HubState
    requested_port: int

    def route(self, req: Request) -> None: ...

    def record(self, req: Request, status: int) -> None: ...

    def record_exception(self, exc: BaseException) -> None: ...


class RouteBase:
    """Shared helpers of the route mixins (`routes_repo`, `routes_transfer`)."""

    state: HubState

    @property
    def endpoint(self) -> str:  # provided by HubServer
        raise NotImplementedError

    def repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.endpoint}/{URL_PREFIX[repo_type]}{repo_id}"

    @staticmethod
    def require_user(req: Request) -> str:
        if req.user is None:
            raise HubError(401, "You must be authenticated to do this (no token was sent)")
        return req.user


class Request:
    """A parsed request: method, path segments (unquoted), query, user and body access."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.method = handler.command
        split = urlsplit(handler.path)
        self.raw_path = split.path
        self.segments = [unquote(s) for s in split.path.split("/")[1:]]
        self.query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.user: str | None = None
        self._body_consumed = False

    def iter_body(self) -> Iterator[bytes]:
        """The request body in chunks (Content-Length or chunked transfer encoding)."""
        if self._body_consumed:
            return
        self._body_consumed = True
        rfile, headers = self.handler.rfile, self.handler.headers
        if "chunked" in headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return
                remaining = size
                while remaining:
                    chunk = rfile.read(min(_CHUNK, remaining))
                    if not chunk:
                        raise HubError(400, "Truncated chunked body")
                    remaining -= len(chunk)
                    yield chunk
                rfile.readline()  # CRLF after each chunk
        else:
            remaining = int(headers.get("Content-Length") or 0)
            while remaining:
                chunk = rfile.read(min(_CHUNK, remaining))
                if not chunk:
                    raise HubError(400, "Truncated body")
                remaining -= len(chunk)
                yield chunk

    def body(self) -> bytes:
        return b"".join(self.iter_body())

    def json(self) -> Any:
        try:
            return json.loads(self.body() or b"null")
        except json.JSONDecodeError as e:
            raise HubError(400, f"Invalid JSON body: {e}") from e

    def drain(self) -> None:
        for _ in self.iter_body():
            pass


class Handler(BaseHTTPRequestHandler):
    """One HTTP/1.1 connection: parses requests, hands them to the router, writes responses."""

    protocol_version = "HTTP/1.1"
    server_version = "slap-test-hub/1.0"
    timeout = 60  # idle keep-alive connections end on their own
    server: HubHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the stdlib's stderr log; `HubServer` keeps its own, redacted, log."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # ------------------------------------------------------------------------- plumbing

    def _dispatch(self) -> None:
        req = Request(self)
        self._status = 500
        self._started = False
        try:
            token = _bearer(self.headers.get("Authorization"))
            req.user = self.server.state.user_for_token(token)
            self.server.hub.route(req)
        except HubError as e:
            self._fail(e.status, {"error": e.message}, error=e)
        except (ConnectionError, TimeoutError):  # client went away mid-request/response
            self.close_connection = True
        except Exception as e:  # a server bug: report it rather than hang the client
            self.server.hub.record_exception(e)
            self._fail(500, {"error": f"local hub error: {type(e).__name__}: {e}"})
        finally:
            if not self.close_connection:
                try:
                    req.drain()
                except (HubError, ConnectionError, TimeoutError):
                    self.close_connection = True
            self.server.hub.record(req, self._status)

    def _fail(self, status: int, payload: Any, error: HubError | None = None) -> None:
        if self._started:  # headers already out: the only honest signal left is to hang up
            self.close_connection = True
            return
        try:
            self.send_json(status, payload, error=error)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def send_json(
        self, status: int, payload: Any, error: HubError | None = None, **headers: str
    ) -> None:
        body = json.dumps(payload, default=str).encode()  # default: YAML dates in cardData
        head = {"Content-Type": "application/json; charset=utf-8", **headers}
        if error is not None:
            if error.code:
                head["X-Error-Code"] = error.code
            head["X-Error-Message"] = error.message.encode("ascii", "backslashreplace").decode()
        self.send_bytes(status, body, head)

    def send_bytes(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.start(status, {**headers, "Content-Length": str(len(body))})
        if self.command != "HEAD":
            self.wfile.write(body)

    def start(self, status: int, headers: Mapping[str, str]) -> None:
        self._status = status
        self._started = True
        self.send_response(status)
        request_id = self.headers.get("X-Amzn-Trace-Id") or self.headers.get("X-Request-Id")
        if request_id:
            self.send_header("X-Request-Id", request_id)
        for key, value in headers.items():  # header values must be latin-1
            self.send_header(key, value.encode("latin-1", "replace").decode("latin-1"))
        self.end_headers()


def _bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (None if absent; 401 if malformed)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise HubError(401, "Invalid credentials in Authorization header")
    return value.strip()


class HubHTTPServer(ThreadingHTTPServer):
    """Thread-per-connection server on 127.0.0.1 that can hang up on open keep-alive clients."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, hub: Router) -> None:
        self.hub = hub
        self.state = hub.state
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", hub.requested_port), Handler)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            (self._connections.add if alive else self._connections.discard)(conn)

    def close_connections(self) -> None:
        with self._connections_lock:
            for conn in list(self._connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
