"""The fault proxy test tool itself, in front of a tiny recording upstream (stdlib http.server)."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from tests.support.fault_proxy import Delay, Drop, FaultProxy, Hang, Reply


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append((self.command, self.path, body))
        reply = f"{self.command} {self.path} {len(body)}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Upstream", "yes")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply)

    do_PUT = do_POST = do_HEAD = do_GET


@pytest.fixture
def upstream() -> Iterator[str]:
    _Upstream.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _send(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None, chunked: bool = False
) -> tuple[int, dict[str, str], bytes]:
    if chunked:
        conn.request(method, path, body=iter([body or b""]), encode_chunked=True)
    else:
        conn.request(method, path, body=body)
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), resp.read()


def test_forwards_and_counts_by_method(upstream: str) -> None:
    with FaultProxy(upstream) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        assert _send(conn, "PUT", "/a", b"12345")[2] == b"PUT /a 5"  # keep-alive: same connection throughout
        assert _send(conn, "PUT", "/b", b"x" * 3000, chunked=True)[2] == b"PUT /b 3000"
        status, headers, body = _send(conn, "HEAD", "/c")
        # HEAD keeps the upstream's Content-Length (len(b"HEAD /c 0")) and sends no body
        assert (status, body, headers["Content-Length"], headers["X-Upstream"]) == (200, b"", "9", "yes")
        assert _send(conn, "GET", "/d")[0] == 200
        conn.close()
        assert proxy.counts() == {"PUT": 2, "HEAD": 1, "GET": 1}
        assert proxy.forwarded() == {"PUT": 2, "HEAD": 1, "GET": 1}
        assert proxy.faulted() == {}


def test_scripted_faults_apply_in_order_to_matching_methods(upstream: str) -> None:
    with FaultProxy(upstream) as proxy:
        proxy.fail_next(1, Reply(status=500), methods={"PUT"})
        proxy.fail_next(1, Reply(status=403, code="AccessDenied"), methods={"PUT"})
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        assert _send(conn, "GET", "/g")[0] == 200  # not a PUT: untouched
        status, _, body = _send(conn, "PUT", "/p", b"1")
        assert status == 500 and b"<Code>InternalError</Code>" in body
        status, _, body = _send(conn, "PUT", "/p", b"1")
        assert status == 403 and b"<Code>AccessDenied</Code>" in body
        assert _send(conn, "PUT", "/p", b"1")[0] == 200
        conn.close()
        assert proxy.faulted() == {"PUT": 2}
        expected = [None, Reply(status=500), Reply(status=403, code="AccessDenied"), None]
        assert [r.fault for r in proxy.records()] == expected
        assert [r[0] for r in _Upstream.received] == ["GET", "PUT"]


def test_forward_first_reply_stores_but_reports_failure(upstream: str) -> None:
    with FaultProxy(upstream) as proxy:
        proxy.fail_next(1, Reply(status=503, forward_first=True))
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        assert _send(conn, "PUT", "/ambiguous", b"abc")[0] == 503
        conn.close()
        assert _Upstream.received == [("PUT", "/ambiguous", b"abc")]


def test_drop_and_hang_close_without_answer_and_delay_forwards_late(upstream: str) -> None:
    with FaultProxy(upstream) as proxy:
        proxy.fail_next(1, Drop())
        proxy.fail_next(1, Hang(seconds=0.2))
        proxy.fail_next(1, Delay(seconds=0.3))
        for _ in range(2):
            conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
            with pytest.raises(http.client.RemoteDisconnected):
                _send(conn, "PUT", "/x", b"1")
            conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        started = time.monotonic()
        assert _send(conn, "PUT", "/late", b"1")[0] == 200
        assert time.monotonic() - started >= 0.3
        conn.close()
        assert [r[1] for r in _Upstream.received] == ["/late"]


def test_stop_releases_hanging_requests_promptly(upstream: str) -> None:
    proxy = FaultProxy(upstream).start()
    proxy.set_random_faults(1.0, [Hang(seconds=60)], methods=None)
    outcome: list[BaseException] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
        try:
            _send(conn, "GET", "/hang")
        except (OSError, http.client.HTTPException) as exc:
            outcome.append(exc)
        finally:
            conn.close()

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + 5
    while not proxy.counts() and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    proxy.stop()
    thread.join(timeout=5)
    assert not thread.is_alive() and len(outcome) == 1
    assert time.monotonic() - started < 2.0


def _fault_pattern(upstream: str, seed: int) -> list[bool]:
    with FaultProxy(upstream, seed=seed) as proxy:
        proxy.set_random_faults(0.3, [Reply(status=503), Reply(status=500)])
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        for i in range(40):
            _send(conn, "PUT", f"/{i}", b"z")
            _send(conn, "GET", f"/{i}")  # reads are not in the write rule and draw no random numbers
        conn.close()
        assert proxy.faulted().get("GET", 0) == 0
        return [r.fault is not None for r in proxy.records() if r.method == "PUT"]


def test_random_write_faults_are_deterministic_per_seed(upstream: str) -> None:
    first = _fault_pattern(upstream, seed=11)
    assert first == _fault_pattern(upstream, seed=11)
    assert first != _fault_pattern(upstream, seed=12)
    assert 4 <= sum(first) <= 20  # ~30% of 40


def test_rejects_non_loopback_upstream() -> None:
    with pytest.raises(ValueError):
        FaultProxy("http://example.com:80")
