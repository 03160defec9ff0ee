"""A threaded HTTP reverse proxy that injects faults between a client (boto3, ffmpeg, httpx) and a server.

    with moto_server() as moto, FaultProxy(moto.endpoint_url, seed=7) as proxy:
        storage = S3Storage(bucket=..., endpoint_url=proxy.url)
        proxy.fail_next(2, Reply(status=503), methods={"PUT"})       # the next 2 PUTs get a 503
        proxy.set_random_faults(0.2, [Reply(status=500), Hang(seconds=3.0)])  # 20% of writes fail or hang
        ...
        assert proxy.counts()["PUT"] == 3                             # requests received, by method
        assert proxy.faulted()["PUT"] == 2                            # of which faulted

Faults (frozen dataclasses, combine freely):
- Reply(status, code=None, forward_first=False): answer `status` with an S3-style XML error body instead of
  the upstream's answer. With forward_first=True the request reaches the upstream first (the write happens,
  the client still sees an error: the "ambiguous failure" case).
- Delay(seconds): hold the request, then forward it normally (a slow server).
- Hang(seconds): hold the request, then close the connection without answering (a dead server; the client
  times out first when its read timeout is shorter).
- Drop(forward_first=False): close the connection without answering (a reset mid-request).

Rules, checked in order for each request:
1. `fail_next(n, fault, methods=None)`: scripted faults for the next n matching requests (FIFO, may be
   called several times to queue different faults).
2. `set_random_faults(rate, faults, methods=WRITE_METHODS)`: each matching request is faulted with
   probability `rate`, the fault drawn uniformly from `faults`. Random draws come from one `random.Random(seed)`
   and happen only for matching requests, so a given request order always yields the same faults.

Everything listens on 127.0.0.1. Held requests (Delay/Hang) are released when the proxy stops, and every
client connection is shut down, so `stop()` returns promptly. The request body is read in full before a fault
is applied (a 100-continue is answered), so keep-alive connections stay in sync.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import threading
import urllib.parse
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

WRITE_METHODS = frozenset({"PUT", "POST"})
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
_DEFAULT_CODES = {
    400: "BadRequest",
    403: "AccessDenied",
    404: "NoSuchKey",
    429: "TooManyRequests",
    500: "InternalError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass(frozen=True, kw_only=True)
class Reply:
    status: int = 503
    code: str | None = None  # S3 error code in the XML body; a default per status when None
    forward_first: bool = False


@dataclass(frozen=True, kw_only=True)
class Delay:
    seconds: float


@dataclass(frozen=True, kw_only=True)
class Hang:
    seconds: float


@dataclass(frozen=True, kw_only=True)
class Drop:
    forward_first: bool = False


Fault = Reply | Delay | Hang | Drop


@dataclass(kw_only=True)
class _Scripted:
    remaining: int
    fault: Fault
    methods: frozenset[str] | None


@dataclass(frozen=True, kw_only=True)
class RequestRecord:
    method: str
    path: str
    fault: Fault | None


@dataclass(kw_only=True)
class _State:
    received: Counter[str] = field(default_factory=Counter)
    faulted: Counter[str] = field(default_factory=Counter)
    forwarded: Counter[str] = field(default_factory=Counter)
    records: list[RequestRecord] = field(default_factory=list)


def _error_body(status: int, code: str | None, n: int) -> bytes:
    code = code or _DEFAULT_CODES.get(status) or HTTPStatus(status).phrase.replace(" ", "")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>injected by fault proxy</Message>"
        f"<RequestId>fault-{n}</RequestId></Error>"
    ).encode()


class FaultProxy:
    """Reverse proxy to `upstream` (http://host:port) with a programmable fault plan. See module doc."""

    def __init__(self, upstream: str, *, seed: int = 0, upstream_timeout_s: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or not parsed.hostname or parsed.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"upstream must be http://127.0.0.1:PORT, got {upstream!r}")
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 80
        self.upstream_timeout_s = upstream_timeout_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._scripted: list[_Scripted] = []
        self._random_rate = 0.0
        self._random_faults: tuple[Fault, ...] = ()
        self._random_methods: frozenset[str] | None = WRITE_METHODS
        self._state = _State()
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("proxy not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- fault plan ----------------------------------------------------------------------------------

    def fail_next(self, n: int, fault: Fault | None = None, *, methods: Collection[str] | None = None) -> None:
        """Apply `fault` (default Reply(status=503)) to the next `n` requests whose method is in `methods`."""
        if n < 0:
            raise ValueError("n must be >= 0")
        chosen = fault if fault is not None else Reply(status=503)
        with self._lock:
            self._scripted.append(_Scripted(remaining=n, fault=chosen, methods=_methods(methods)))

    def set_random_faults(
        self,
        rate: float,
        faults: Sequence[Fault] = (Reply(status=503),),
        *,
        methods: Collection[str] | None = WRITE_METHODS,
    ) -> None:
        """Fault a share `rate` of requests whose method is in `methods` (None = all). rate=0 disables."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be in [0, 1]")
        if rate > 0 and not faults:
            raise ValueError("faults must not be empty")
        with self._lock:
            self._random_rate = rate
            self._random_faults = tuple(faults)
            self._random_methods = _methods(methods)

    def clear_faults(self) -> None:
        with self._lock:
            self._scripted.clear()
            self._random_rate = 0.0

    # -- observations --------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Requests received, by method (faulted ones included)."""
        with self._lock:
            return dict(self._state.received)

    def faulted(self) -> dict[str, int]:
        with self._lock:
            return dict(self._state.faulted)

    def forwarded(self) -> dict[str, int]:
        """Requests that reached the upstream, by method."""
        with self._lock:
            return dict(self._state.forwarded)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._state.records)

    def reset_counts(self) -> None:
        with self._lock:
            self._state = _State()

    # -- internals (called from handler threads) -----------------------------------------------------

    def _decide(self, method: str, path: str) -> tuple[Fault | None, int]:
        with self._lock:
            state = self._state
            state.received[method] += 1
            fault: Fault | None = None
            for rule in self._scripted:
                if rule.remaining > 0 and (rule.methods is None or method in rule.methods):
                    rule.remaining -= 1
                    fault = rule.fault
                    break
            self._scripted = [r for r in self._scripted if r.remaining > 0]
            if (
                fault is None
                and self._random_rate > 0
                and (self._random_methods is None or method in self._random_methods)
                and self._rng.random() < self._random_rate
            ):
                fault = self._rng.choice(self._random_faults)
            if fault is not None:
                state.faulted[method] += 1
            state.records.append(RequestRecord(method=method, path=path, fault=fault))
            return fault, len(state.records)

    def _count_forwarded(self, method: str) -> None:
        with self._lock:
            self._state.forwarded[method] += 1

    def _track(self, sock: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)


def _methods(methods: Collection[str] | None) -> frozenset[str] | None:
    return None if methods is None else frozenset(m.upper() for m in methods)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy

    def process_request(self, request: Any, client_address: Any) -> None:
        self.proxy._track(request, add=True)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.proxy._track(request, add=False)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid the 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet; use FaultProxy.records() to see traffic

    def do_GET(self) -> None:
        self._proxy()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _proxy(self) -> None:
        proxy = self.server.proxy
        method = self.command.upper()
        body = self._read_body()
        fault, n = proxy._decide(method, self.path)
        if isinstance(fault, Delay | Hang):
            proxy._stopping.wait(fault.seconds)
            if isinstance(fault, Hang) or proxy._stopping.is_set():
                self.close_connection = True
                return
        upstream: tuple[int, list[tuple[str, str]], bytes] | None = None
        if fault is None or isinstance(fault, Delay) or fault.forward_first:
            upstream = self._forward(method, body)
        if isinstance(fault, Drop):
            self.close_connection = True
            return
        if isinstance(fault, Reply):
            xml = _error_body(fault.status, fault.code, n)
            self._send(fault.status, [("Content-Type", "application/xml")], xml, method)
            return
        if upstream is None:  # pragma: no cover - every branch above forwards or returns
            return
        self._send(*upstream, method)

    def _forward(self, method: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        proxy = self.server.proxy
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP | {"content-length"}}
        if body or method in ("PUT", "POST", "PATCH"):
            headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=proxy.upstream_timeout_s)
        try:
            conn.request(method, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            proxy._count_forwarded(method)
            return resp.status, out, data
        except OSError as exc:
            return 502, [("Content-Type", "text/plain")], f"fault proxy: upstream failed: {exc}\n".encode()
        finally:
            conn.close()

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, method: str) -> None:
        self.send_response_only(status)
        for k, v in headers:
            if k.lower() not in ("date", "server", "content-length"):
                self.send_header(k, v)
        self.send_header("Date", self.date_time_string())
        if method == "HEAD":
            length = next((v for k, v in headers if k.lower() == "content-length"), None)
            self.send_header("Content-Length", length if length is not None else str(len(body)))
        else:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if method != "HEAD" and body:
            self.wfile.write(body)
        self.wfile.flush()
