"""uvicorn's httptools protocol with read deadlines: slow-loris and slow-body connections are closed.

uvicorn bounds idle keep-alive connections but not a request whose headers or body trickle in; fifty such
connections held a worker's sockets for as long as the client liked. Here a request must finish its
headers within HEADER_TIMEOUT_S of its first byte, and its body may pause at most BODY_IDLE_TIMEOUT_S
between chunks (ffmpeg streams a segment body as it encodes: gaps of about a segment) and may take at most
BODY_TOTAL_TIMEOUT_S in all.

And a request that arrived whole is served even if its client hung up right after sending it: ffmpeg's
HTTP PUT does not wait for the reply (it reads whatever is there without blocking, then closes), and
uvicorn answers `http.disconnect` to an app that had not yet read a fully received body — the segment was
silently lost whenever the app awaited anything (a registry lookup) before reading it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

log = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10.0
BODY_IDLE_TIMEOUT_S = 15.0
BODY_TOTAL_TIMEOUT_S = 120.0


class _KeepCompleteBody(RequestResponseCycle):
    """A cycle that still hands the app a complete request body after the client disconnected."""

    _body_delivered = False

    async def receive(self) -> Any:
        if self.disconnected and not self.more_body and not self._body_delivered and not self.response_complete:
            self._body_delivered = True
            body, self.body = bytes(self.body), bytearray()
            return {"type": "http.request", "body": body, "more_body": False}
        message = await super().receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            self._body_delivered = True
        return message


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """The deadline is a time and a reason; one timer per connection checks it and re-arms itself for a deadline
    that moved (a timer made and cancelled three or four times per request cost more than parsing it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline_at: float | None = None
        self._deadline_why = ""
        self._timer: asyncio.TimerHandle | None = None
        self._body_started = 0.0
        self._unbounded = False

    def _arm(self, seconds: float, what: str) -> None:
        self._deadline_at, self._deadline_why = self.loop.time() + seconds, what
        if self._timer is None:
            self._timer = self.loop.call_at(self._deadline_at, self._check)

    def _disarm(self) -> None:
        self._deadline_at = None

    def _check(self) -> None:
        self._timer = None
        if self._deadline_at is None:
            return
        if self.loop.time() < self._deadline_at:  # moved since the timer was set
            self._timer = self.loop.call_at(self._deadline_at, self._check)
            return
        self._expire(self._deadline_why)

    def _expire(self, what: str) -> None:
        self._deadline_at = None
        if not self.transport.is_closing():
            log.info("closing a connection from %s: %s", self.client[0] if self.client else "?", what)
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(HEADER_TIMEOUT_S, f"headers not complete within {HEADER_TIMEOUT_S:g} s")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        # A low-latency ingest stream is one request for the whole session: only its idle deadline applies.
        self._unbounded = self.url.split(b"?", 1)[0].endswith(b"/stream.mp4")
        if type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = _KeepCompleteBody  # same object, one receive() override
        self._body_started = self.loop.time()
        self._arm(BODY_IDLE_TIMEOUT_S, f"request body idle for {BODY_IDLE_TIMEOUT_S:g} s")

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if not self._unbounded and self.loop.time() - self._body_started > BODY_TOTAL_TIMEOUT_S:
            self._expire(f"request body still arriving after {BODY_TOTAL_TIMEOUT_S:g} s")
        else:
            self._arm(BODY_IDLE_TIMEOUT_S, f"request body idle for {BODY_IDLE_TIMEOUT_S:g} s")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)
