"""A real HTTP upstream for edge tests and the edge benchmark: an object store that counts every request.

`CountingStore` keeps objects in memory with the Content-Type/Cache-Control they were stored with (like
the origin's storage backends, `put(key, data, headers)`), serves `GET`/`HEAD /{path_prefix}rooms/...` on
127.0.0.1 the way storage does, and records every request it receives — the ground truth for "how many
requests reached storage". It also answers the origin API paths the edge proxies (`/v1/`, `/embed/`,
`/oembed`, `/static/`, `/healthz`) so one server can stand in for the origin service.

A missing key answers `missing_status` (404, or 403 like a private S3 bucket) with no Cache-Control.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from origin.contract.cache_policy import ObjectHeaders

API_PREFIXES = ("/v1/", "/embed/", "/oembed", "/static/", "/healthz")
EMBED_CACHE_CONTROL = "public, max-age=30"


@dataclass(frozen=True, kw_only=True)
class SeenRequest:
    method: str
    path: str  # raw request target, query string included
    headers: dict[str, str]
    at: float  # time.monotonic()


@dataclass(kw_only=True)
class _Object:
    data: bytes
    headers: ObjectHeaders
    etag: str


@dataclass(kw_only=True)
class CountingStore:
    path_prefix: str = "/"  # "/" like the origin's read path, "/bucket/prefix/" like S3 path-style
    missing_status: int = 404
    delay_s: float = 0.0  # added to every storage response (a slow store widens every race window)
    _objects: dict[str, _Object] = field(default_factory=dict)
    _seen: list[SeenRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # -- storage side -----------------------------------------------------------------------------
    def put(self, key: str, data: bytes, headers: ObjectHeaders) -> None:
        etag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
        with self._lock:
            self._objects[key] = _Object(data=data, headers=headers, etag=etag)

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)

    def lookup(self, key: str) -> _Object | None:
        with self._lock:
            return self._objects.get(key)

    # -- what reached us ----------------------------------------------------------------------------
    def requests(self, *, path: str | None = None, since: float | None = None) -> list[SeenRequest]:
        with self._lock:
            seen = list(self._seen)
        return [
            r for r in seen
            if (path is None or r.path.split("?", 1)[0] == path) and (since is None or r.at >= since)
        ]

    def count(self, path: str | None = None, *, since: float | None = None) -> int:
        return len(self.requests(path=path, since=since))

    def record(self, req: SeenRequest) -> None:
        with self._lock:
            self._seen.append(req)

    # -- server ---------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> CountingStore:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        server.request_queue_size = 256
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> CountingStore:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _make_handler(store: CountingStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _handle(self) -> None:
            store.record(
                SeenRequest(method=self.command, path=self.path, headers=dict(self.headers.items()),
                            at=time.monotonic())
            )
            path = self.path.split("?", 1)[0]
            if path.startswith(API_PREFIXES):
                self._api(path)
                return
            if store.delay_s:
                time.sleep(store.delay_s)
            if self.command not in ("GET", "HEAD") or not path.startswith(store.path_prefix):
                self._send(405, b"method not allowed\n", {"Content-Type": "text/plain"})
                return
            obj = store.lookup(path[len(store.path_prefix):])
            if obj is None:
                self._send(store.missing_status, b"<Error><Code>NoSuchKey</Code></Error>",
                           {"Content-Type": "application/xml", "x-amz-request-id": "counting-store"})
                return
            self._send(200, obj.data, {
                "Content-Type": obj.headers.content_type,
                "Cache-Control": obj.headers.cache_control,
                "ETag": obj.etag,
                "Accept-Ranges": "bytes",
                "x-amz-request-id": "counting-store",
                "x-amz-id-2": "counting-store",
                "Set-Cookie": "tracking=1",
                "Vary": "Origin",
            })

        def _api(self, path: str) -> None:
            body = self._body()
            if path.startswith("/v1/"):
                payload = {"method": self.command, "path": self.path, "body": body.decode(errors="replace")}
                self._send(200, json.dumps(payload).encode(),
                           {"Content-Type": "application/json", "Cache-Control": "no-store"})
            elif path.startswith(("/embed/", "/oembed", "/static/")):
                self._send(200, f"<p>{path}</p>".encode(),
                           {"Content-Type": "text/html", "Cache-Control": EMBED_CACHE_CONTROL})
            else:
                self._send(200, b"ok\n", {"Content-Type": "text/plain", "Cache-Control": "no-store"})

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle

    return Handler
