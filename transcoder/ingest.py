"""The transcoder's calls to the origin (docs/ingest.md): `start` before ffmpeg, each init and segment while it
runs (uploads.py: a segment's renditions in one request, a wave) or each rendition's stream (streams.py), `end`
after it.
Error mapping: connection failures, timeouts and 5xx → OriginUnavailableError (the supervisor backs off
and retries); 4xx → IngestRejectedError (fatal; 409 means the broadcast ended or the session id was reused).
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from origin.contract.ingest import WAVE_HEADER, format_wave
from transcoder.errors import IngestRejectedError, OriginUnavailableError
from transcoder.ladder import Rendition, start_body

log = logging.getLogger(__name__)

END_REASONS = frozenset({"eos", "signal", "crash"})


class IngestClient:
    def __init__(
        self,
        *,
        origin_url: str,
        room: str,
        token: str,
        timeout_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.room = room
        self._base = origin_url.rstrip("/")
        self._token = token
        self._timeout = timeout_seconds
        self._client = httpx.Client(
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_seconds,
            transport=transport,
            trust_env=False,  # the origin is addressed directly; no proxy from the environment
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> IngestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def session_url(self, session: str) -> str:
        return f"{self._base}/ingest/{self.room}/{session}"

    def start(
        self, session: str, ladder: Sequence[Rendition], segment_seconds: float, part_seconds: float | None = None
    ) -> None:
        """`POST …/start` with the ladder; raises IngestError subclasses."""
        self._post(session, "start", start_body(ladder, segment_seconds, part_seconds))

    def end(self, session: str, reason: str) -> None:
        """`POST …/end` with the reason (eos | signal | crash); raises IngestError subclasses."""
        if reason not in END_REASONS:
            raise ValueError(f"end reason must be one of {sorted(END_REASONS)}, got {reason!r}")
        self._post(session, "end", {"reason": reason})

    def object_sender(self) -> ObjectSender:
        """A sender of objects on its own kept-alive connection (one per sender thread: not thread-safe)."""
        return ObjectSender(self._base, room=self.room, token=self._token, timeout_seconds=self._timeout)

    def _post(self, session: str, call: str, body: dict[str, Any]) -> None:
        self._send(session, call, "POST", json=body)

    def _send(self, session: str, call: str, method: str, **request: Any) -> None:
        url = f"{self.session_url(session)}/{call}"
        try:
            response = self._client.request(method, url, **request)
        except httpx.TransportError as exc:
            raise _unreachable(call, url, exc, self.room, session) from exc
        if response.is_success:
            log.info("room %s: session %s %s → %d", self.room, session, call, response.status_code)
            return
        raise _refused(call, url, response.status_code, response.text, self.room, session)


class ObjectSender:
    """`PUT {origin}/ingest/{room}/{session}/{rendition}/{name}` on one kept-alive connection (http.client: httpx
    cost ~2.4 ms of CPU per PUT here, three PUTs a second per room). Raises IngestError subclasses."""

    def __init__(self, base_url: str, *, room: str, token: str, timeout_seconds: float) -> None:
        split = urlsplit(base_url)
        self.room = room
        self._base = base_url
        self._https = split.scheme == "https"
        self._host, self._port = split.hostname or "", split.port
        self._prefix = split.path.rstrip("/")
        self._timeout = timeout_seconds
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"}
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self) -> http.client.HTTPConnection:
        factory = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return factory(self._host, self._port, timeout=self._timeout)

    def put(self, session: str, rendition: str, name: str, body: bytes) -> None:
        self._put(session, f"{rendition}/{name}", body, self._headers)

    def put_wave(self, session: str, name: str, pieces: Sequence[tuple[str, bytes]]) -> None:
        """`PUT …/{session}/{name}`: segment `name` of several renditions in one request (a wave, docs/ingest.md),
        `pieces` = (rendition, bytes) in ladder order."""
        framing = format_wave([(rendition, len(data)) for rendition, data in pieces])
        self._put(session, name, b"".join(data for _, data in pieces), {**self._headers, WAVE_HEADER: framing})

    def _put(self, session: str, call: str, body: bytes, headers: dict[str, str]) -> None:
        path = f"{self._prefix}/ingest/{self.room}/{session}/{call}"
        url = f"{self._base}/ingest/{self.room}/{session}/{call}"
        reused = self._conn is not None
        try:
            status, text = self._exchange(path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            if not reused:
                raise _unreachable(call, url, exc, self.room, session) from exc
            try:  # the origin may have closed the idle connection: once more on a new one (PUTs are idempotent)
                status, text = self._exchange(path, body, headers)
            except (OSError, http.client.HTTPException) as again:
                self.close()
                raise _unreachable(call, url, again, self.room, session) from again
        if not 200 <= status < 300:
            raise _refused(call, url, status, text, self.room, session)

    def stream(self, session: str, rendition: str, name: str, chunks: Iterable[bytes]) -> None:
        """`PUT …/{rendition}/{name}` with a chunked body sent as `chunks` yields it (low latency: the whole
        session's fragmented MP4), on a connection of its own; the answer comes when the body ends."""
        call = f"{rendition}/{name}"
        url = f"{self._base}/ingest/{self.room}/{session}/{call}"
        conn = self._connect()
        try:
            conn.request("PUT", f"{self._prefix}/ingest/{self.room}/{session}/{call}", body=chunks,
                         headers=self._headers, encode_chunked=True)  # fmt: skip
            response = conn.getresponse()
            status, text = response.status, response.read().decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            early = _early_answer(conn)  # a server that refused mid-body answered before it hung up
            if early is None:
                raise _unreachable(call, url, exc, self.room, session) from exc
            status, text = early
        finally:
            conn.close()
        if not 200 <= status < 300:
            raise _refused(call, url, status, text, self.room, session)

    def _exchange(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        if self._conn is None:
            self._conn = self._connect()
        self._conn.request("PUT", path, body=body, headers=headers)
        response = self._conn.getresponse()
        text = response.read().decode("utf-8", errors="replace")
        if response.will_close:
            self.close()
        return response.status, text


def _early_answer(conn: http.client.HTTPConnection) -> tuple[int, str] | None:
    try:
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    except (OSError, http.client.HTTPException):
        return None


def _unreachable(call: str, url: str, exc: Exception, room: str, session: str) -> OriginUnavailableError:
    timed_out = isinstance(exc, (httpx.TimeoutException, TimeoutError))
    what = f"origin timed out ({url})" if timed_out else f"cannot reach the origin at {url}: {exc}"
    return OriginUnavailableError(f"{call}: {what}", url=url, room=room, session=session)


def _refused(
    call: str, url: str, status: int, text: str, room: str, session: str
) -> IngestRejectedError | OriginUnavailableError:
    text = text.strip().replace("\n", " ")
    detail = f": {text[:200]}" if text else ""
    if status >= 500:
        return OriginUnavailableError(
            f"{call}: origin error {status} at {url}{detail}", url=url, status_code=status, room=room, session=session
        )
    hint = {
        401: "the origin wants an ingest token (--token / SPILLWAY_INGEST_TOKEN)",
        403: "the origin rejected the ingest token",
        404: "unknown room or session at the origin",
        409: "the room's broadcast has ended, or the session id was used before",
    }.get(status, "the origin rejected the request")
    return IngestRejectedError(
        f"{call}: {hint} (HTTP {status} at {url}){detail}", url=url, status_code=status, room=room, session=session
    )
