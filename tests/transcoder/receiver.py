"""A receiving side of the ingest contract (docs/ingest.md) for transcoder tests and the benchmark.

Threaded HTTP/1.1 server on 127.0.0.1: records every start/end call and every PUT (path, complete body,
arrival order, whether the chunked body completed, when it started and finished). It answers like the
origin would for the calls it understands (401/403 on auth, 404 for unknown sessions, 409 for a reused
session id or a scripted refusal) and can be told to refuse `start` calls or answer the next PUTs otherwise.

Run standalone (bench): python -m tests.transcoder.receiver --port N --token T
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from origin.contract.ingest import SEGMENT_MAX_BYTES, WAVE_HEADER, parse_wave, split_wave
from origin.errors import OriginError
from tests.support.net import free_port

_CALL = re.compile(r"^/ingest/(?P<room>[^/]+)/(?P<session>[^/]+)/(?P<call>start|end)$")
_PUT = re.compile(r"^/ingest/(?P<room>[^/]+)/(?P<session>[^/]+)/(?P<rendition>[^/]+)/(?P<name>[^/]+)$")
_WAVE = re.compile(r"^/ingest/(?P<room>[^/]+)/(?P<session>[^/]+)/(?P<name>\d+\.m4s)$")
_SEGMENT = re.compile(r"^(\d+)\.m4s$")


@dataclass(kw_only=True)
class Call:
    seq: int
    call: str  # "start" | "end"
    room: str
    session: str
    body: dict[str, Any]
    at: float  # time.monotonic() when the request arrived
    status: int = 0


@dataclass(kw_only=True)
class Put:
    seq: int  # arrival order (request line read), shared with calls
    room: str
    session: str
    rendition: str
    name: str
    started: float
    finished: float = 0.0
    done_seq: int = 0  # completion order
    body: bytes = b""
    chunked: bool = False
    complete: bool = False
    content_type: str | None = None
    status: int = 0
    wave: int = 0  # the renditions in the request that carried it (0: a PUT of its own)

    @property
    def index(self) -> int | None:
        match = _SEGMENT.fullmatch(self.name)
        return int(match.group(1)) if match else None

    @property
    def kind(self) -> str:
        if self.index is not None:
            return "segment"
        return "init" if self.name.endswith(".mp4") else "playlist"


@dataclass(kw_only=True)
class Receiver:
    token: str = "tok"
    start_status: int = 201  # scripted answer to start calls (e.g. 409: the broadcast has ended)
    put_statuses: list[int] = field(default_factory=list)  # scripted answers to the next PUTs, in order (e.g. 503)
    idle_timeout: float | None = None  # close a kept-alive connection idle this long (as servers do)
    stream_refusals: list[int] = field(default_factory=list)  # answer the next stream PUTs at once, body unread
    port: int = field(default_factory=free_port)
    calls: list[Call] = field(default_factory=list)
    puts: list[Put] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Receiver:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="receiver", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def next_seq(self) -> int:
        with self.lock:
            return next(self._seq)

    # Queries -------------------------------------------------------------------------------------------
    def sessions(self) -> list[str]:
        """Session ids in the order their start calls arrived."""
        with self.lock:
            return [c.session for c in self.calls if c.call == "start"]

    def call(self, session: str, call: str) -> Call | None:
        with self.lock:
            return next((c for c in self.calls if c.session == session and c.call == call), None)

    def session_puts(self, session: str) -> list[Put]:
        with self.lock:
            return [p for p in self.puts if p.session == session]

    def segments(self, session: str, rendition: str) -> dict[int, Put]:
        """index -> the segment's last PUT."""
        return {p.index: p for p in self.session_puts(session) if p.rendition == rendition and p.index is not None}

    def init(self, session: str, rendition: str) -> Put | None:
        """The rendition's last init PUT (a refused one was retried)."""
        inits = [p for p in self.session_puts(session) if p.rendition == rendition and p.kind == "init"]
        return inits[-1] if inits else None

    def media(self, session: str, rendition: str) -> bytes:
        """init + every segment in index order: a playable fMP4 file of the rendition."""
        init = self.init(session, rendition)
        assert init is not None, f"no init segment for {rendition} in {session}"
        segments = self.segments(session, rendition)
        return init.body + b"".join(segments[i].body for i in sorted(segments))

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _read_chunked(rfile: Any) -> tuple[bytes, bool]:
    body = bytearray()
    while True:
        line = rfile.readline(1024)
        if not line:
            return bytes(body), False
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            return bytes(body), False
        if size == 0:
            rfile.readline(1024)  # the empty line after the last chunk (no trailers from ffmpeg)
            return bytes(body), True
        data = rfile.read(size)
        body += data
        if len(data) < size or rfile.readline(1024) not in (b"\r\n", b"\n"):
            return bytes(body), False


def _split_wave(put: Put, framing: str | None) -> list[Put]:
    """A wave's renditions as the PUTs they stand for (the origin's framing, origin.contract.ingest)."""
    parts = split_wave(parse_wave(framing, max_part_bytes=SEGMENT_MAX_BYTES), put.body)
    return [dataclasses.replace(put, rendition=rendition, body=body, wave=len(parts)) for rendition, body in parts]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = receiver.idle_timeout

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if body:
                self.send_header("Content-Type", "application/json")
            self.end_headers()
            if body:
                self.wfile.write(body)

        def _auth(self) -> int:
            header = self.headers.get("Authorization")
            if header is None:
                return 401
            return 0 if header == f"Bearer {receiver.token}" else 403

        def _read_body(self) -> tuple[bytes, bool, bool]:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body, complete = _read_chunked(self.rfile)
                return body, True, complete
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            return body, False, len(body) == length

        def do_POST(self) -> None:
            seq = receiver.next_seq()
            at = time.monotonic()
            match = _CALL.match(self.path)
            raw, _, _ = self._read_body()
            if match is None:
                self._reply(404)
                return
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                self._reply(400)
                return
            call = Call(seq=seq, call=match["call"], room=match["room"], session=match["session"], body=body, at=at)
            status = self._auth()
            with receiver.lock:
                known = {c.session for c in receiver.calls if c.call == "start" and c.status == 201}
                if not status:
                    if call.call == "start":
                        status = 409 if call.session in known else receiver.start_status
                    else:
                        status = 200 if call.session in known else 404
                call.status = status
                receiver.calls.append(call)
            self._reply(status, json.dumps({"status": status}).encode())

        def do_PUT(self) -> None:
            seq = receiver.next_seq()
            match = _PUT.match(self.path)
            refusal = 0
            if match is not None and match["name"] == "stream.mp4":
                with receiver.lock:
                    refusal = receiver.stream_refusals.pop(0) if receiver.stream_refusals else 0
            if refusal:  # as a server that refuses on the headers: answer, then hang up mid-body
                self.close_connection = True
                self._reply(refusal)
                return
            wave = _WAVE.match(self.path)
            put = Put(
                seq=seq,
                room=match["room"] if match else wave["room"] if wave else "",
                session=match["session"] if match else wave["session"] if wave else "",
                rendition=match["rendition"] if match else "",
                name=match["name"] if match else wave["name"] if wave else self.path,
                started=time.monotonic(),
                content_type=self.headers.get("Content-Type"),
            )
            put.body, put.chunked, put.complete = self._read_body()
            put.finished = time.monotonic()
            status = self._auth()
            pieces = [put]
            if wave is not None:
                try:
                    pieces = _split_wave(put, self.headers.get(WAVE_HEADER))
                except OriginError:
                    status = status or 400
            with receiver.lock:
                put.done_seq = next(receiver._seq)
                started = {c.session for c in receiver.calls if c.call == "start" and c.status == 201}
                if not status and receiver.put_statuses:
                    status = receiver.put_statuses.pop(0)
                if not status:
                    status = 201 if (match or wave) and put.session in started else 404
                for piece in pieces:
                    piece.status, piece.done_seq = status, put.done_seq
                    receiver.puts.append(piece)
            self._reply(status)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="ingest receiver (records, answers like the origin)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default="tok")
    args = parser.parse_args()
    with Receiver(port=args.port, token=args.token), contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


if __name__ == "__main__":
    main()
