"""Sending what ffmpeg wrote to the origin (I/O edge): each rendition's init, then its segments, in order, with
every answer read.

ffmpeg writes to a local directory only (command.py). Its log says when a file is complete (the events
FfmpegProcess parsed): a rendition's init is written and closed just before its first segment is opened, and
a segment is complete at the first "bytes written" after its "Opening" (ffmpeg_log.Closed). Each rendition has
its own lane — a queue and a thread with a kept-alive connection (ingest.ObjectSender) — so renditions travel
side by side and one slow PUT does not hold the others; within a lane the order is ffmpeg's.

Answers: 201 sent (the segment's local file is removed); a 5xx or an unreachable origin is retried with backoff
until `close` gives up (an origin restart or outage is bridged, not lost: the origin publishes late audio after
its filler); a 4xx is final and kept in `rejected`. 401/403/404/409 refuse the whole session (a token revoked,
a session the origin ended or superseded): `refusal` is set, and the supervisor starts a new session — every
later segment of this one would be refused too.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from transcoder.clock import SYSTEM_CLOCK, Clock
from transcoder.command import INIT_FILENAME, local_init_path, local_segment_path
from transcoder.errors import IngestRejectedError, OriginUnavailableError
from transcoder.ffmpeg_log import Closed, Event, Opened
from transcoder.ingest import IngestClient, ObjectSender

log = logging.getLogger(__name__)

RETRY_FIRST_S, RETRY_MAX_S = 0.1, 2.0
SESSION_REFUSALS = frozenset({401, 403, 404, 409})


@dataclass(frozen=True, kw_only=True)
class Rejection:
    rendition: str
    name: str
    status: int | None


@dataclass(frozen=True, kw_only=True)
class _Item:
    rendition: str
    name: str  # what the origin is sent: init.mp4 or 000012.m4s
    path: Path
    segment: bool

    @property
    def label(self) -> str:
        return f"{self.rendition}/{self.name}"


class Uploads:
    def __init__(self, ingest: IngestClient, *, session: str, local_dir: Path, clock: Clock = SYSTEM_CLOCK) -> None:
        self.ingest = ingest
        self.session = session
        self.local_dir = local_dir
        self.clock = clock
        self.sent: dict[str, list[str]] = {}  # rendition -> names the origin took, in order
        self.rejected: list[Rejection] = []
        self.unsent: list[str] = []  # "rendition/name" given up on at close
        self.refusal: int | None = None  # the status of the first refusal of the whole session
        self._lock = threading.Lock()  # guards the lanes, the counter and the refusal
        self._lanes: dict[str, _Lane] = {}
        self._pending = 0
        self._abandon = threading.Event()

    def __enter__(self) -> Uploads:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close(0.0)

    @property
    def backlog(self) -> int:
        """Files due at the origin and not answered yet."""
        return self._pending

    def feed(self, event: Event) -> None:
        """What a line of ffmpeg's stderr said (the reader thread): a rendition's first segment opened → its init
        is due; a segment closed → it is due."""
        if isinstance(event, Opened) and event.kind == "segment" and event.rendition not in self._lanes:
            path = Path(local_init_path(str(self.local_dir), event.rendition))
            self._lane(event.rendition).put(_Item(rendition=event.rendition, name=INIT_FILENAME, path=path,
                                                  segment=False))  # fmt: skip
        elif isinstance(event, Closed):
            path = Path(local_segment_path(str(self.local_dir), event.rendition, event.name))
            self._lane(event.rendition).put(_Item(rendition=event.rendition, name=event.name, path=path,
                                                  segment=True))  # fmt: skip

    def close(self, timeout_s: float) -> None:
        """Send what is due, for up to `timeout_s` more; then give up on the rest (logged, in `unsent`)."""
        with self._lock:
            lanes = list(self._lanes.values())
        for lane in lanes:
            lane.put(None)
        deadline = time.monotonic() + timeout_s  # real time: these are real threads, whatever the clock
        for lane in lanes:
            lane.thread.join(max(0.0, deadline - time.monotonic()))
        self._abandon.set()
        for lane in lanes:
            lane.thread.join()
        if self.unsent:
            log.error("session %s: %d object(s) not sent before the session ended: %s", self.session,
                      len(self.unsent), ", ".join(self.unsent[:10]))  # fmt: skip

    def _lane(self, rendition: str) -> _Lane:
        with self._lock:
            lane = self._lanes.get(rendition)
            if lane is None:
                lane = self._lanes[rendition] = _Lane(self, rendition)
                lane.thread.start()
            return lane

    def _count(self, delta: int) -> None:
        with self._lock:
            self._pending += delta

    def _send(self, item: _Item, sender: ObjectSender) -> None:
        if self._abandon.is_set():
            self.unsent.append(item.label)
            return
        try:
            body = item.path.read_bytes()
        except OSError as exc:
            log.error("session %s: %s/%s: ffmpeg's file is unreadable: %s", self.session, item.rendition,
                      item.name, exc)  # fmt: skip
            self.rejected.append(Rejection(rendition=item.rendition, name=item.name, status=None))
            return
        delay, failures = RETRY_FIRST_S, 0
        while True:
            try:
                sender.put(self.session, item.rendition, item.name, body)
            except OriginUnavailableError as exc:
                failures += 1  # one WARNING per outage and lane, not one per attempt (an outage lasts seconds)
                log.log(logging.WARNING if failures == 1 else logging.DEBUG, "session %s: %s/%s: PUT failed (attempt "
                        "%d), retrying until the session ends: %s", self.session, item.rendition, item.name, failures,
                        exc.message)  # fmt: skip
                if self._abandon.is_set() or self.clock.sleep(delay, self._abandon):
                    self.unsent.append(item.label)
                    return
                delay = min(delay * 2, RETRY_MAX_S)
            except IngestRejectedError as exc:
                self._rejected(item, exc)
                return
            else:
                if failures:
                    log.info("session %s: %s/%s: sent after %d failed attempts", self.session, item.rendition,
                             item.name, failures)  # fmt: skip
                self.sent.setdefault(item.rendition, []).append(item.name)
                self._discard(item)
                return

    def _rejected(self, item: _Item, exc: IngestRejectedError) -> None:
        self.rejected.append(Rejection(rendition=item.rendition, name=item.name, status=exc.status_code))
        self._discard(item)
        if exc.status_code in SESSION_REFUSALS:
            with self._lock:
                first = self.refusal is None
                if first:
                    self.refusal = exc.status_code
            if not first:
                return  # the supervisor is already ending the session: one line is enough
        log.error("session %s: the origin refused %s/%s: %s", self.session, item.rendition, item.name, exc.message)

    def _discard(self, item: _Item) -> None:
        if item.segment:  # done with: disk stays bounded on a long broadcast (the init stays for the tail)
            item.path.unlink(missing_ok=True)


class _Lane:
    """One rendition's queue and sender thread."""

    def __init__(self, uploads: Uploads, rendition: str) -> None:
        self.uploads = uploads
        self._todo: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=f"uploads-{uploads.session}-{rendition}",
                                       daemon=True)  # fmt: skip

    def put(self, item: _Item | None) -> None:
        if item is not None:
            self.uploads._count(1)
        self._todo.put(item)

    def _run(self) -> None:
        sender = self.uploads.ingest.object_sender()
        try:
            while (item := self._todo.get()) is not None:
                try:
                    self.uploads._send(item, sender)
                finally:
                    self.uploads._count(-1)
        finally:
            sender.close()
