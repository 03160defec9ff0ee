"""Sending what ffmpeg wrote to the origin (I/O edge): each rendition's init, then the segments, a segment's
renditions in one request (a wave), in order, with every answer read.

ffmpeg writes to a local directory only (command.py). Its log says when a file is complete (the events
FfmpegProcess parsed): a rendition's init is written and closed just before its first segment is opened, and
a segment is complete at the first "bytes written" after its "Opening" (ffmpeg_log.Closed). ffmpeg cuts every
rendition at the same time and closes their segments one AAC frame apart, so segment N goes out once every
rendition of the ladder closed it (`Waves`), or with the renditions that did once any rendition closed a later
one (a rendition that stalls holds the others back by one segment at most). One wave costs the origin one
request instead of one per rendition (HTTP, auth, the durability wait, the ring): docs/performance.md.

One sender thread per session, on a kept-alive connection (ingest.ObjectSender), sends inits and waves in the
order they became due. Answers: 201 sent (the segments' local files are removed); a 5xx or an unreachable
origin is retried with backoff until `close` gives up (an origin restart or outage is bridged, not lost: the
origin publishes late audio after its filler); 400/413 to a wave → its renditions are sent one by one, so each
gets its own answer (what the origin stored before the refusal is a repeat, answered 201); a 4xx to a single
object is final and kept in `rejected`. 401/403/404/409 refuse the whole session (a token revoked, a session the
origin ended or superseded): `refusal` is set, and the supervisor starts a new session — every later segment of
this one would be refused too.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
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
WAVE_SPLITS = frozenset({400, 413})  # one rendition's bytes refused: each rendition gets its own answer


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


class Waves:
    """Segments closed by rendition, let out as waves: segment N once the whole ladder closed it, or with what
    closed once a later segment did (pure; the reader thread's)."""

    def __init__(self, renditions: Sequence[str]) -> None:
        self.renditions = tuple(renditions)
        self._order = {name: n for n, name in enumerate(self.renditions)}
        self._open: dict[int, dict[str, _Item]] = {}  # index -> rendition -> its closed segment

    def closed(self, index: int, item: _Item) -> list[list[_Item]]:
        """Segment `index` of `item.rendition` closed: the waves now due, oldest first, in ladder order."""
        self._open.setdefault(index, {})[item.rendition] = item
        due = [i for i in sorted(self._open) if i < index or len(self._open[i]) >= len(self.renditions)]
        return [self._take(i) for i in due]

    def rest(self) -> list[list[_Item]]:
        """Everything still gathering (ffmpeg has exited), oldest first."""
        return [self._take(i) for i in sorted(self._open)]

    def _take(self, index: int) -> list[_Item]:
        items = self._open.pop(index)
        return sorted(items.values(), key=lambda item: self._order.get(item.rendition, len(self._order)))


class Uploads:
    def __init__(self, ingest: IngestClient, *, session: str, local_dir: Path, renditions: Sequence[str],
                 clock: Clock = SYSTEM_CLOCK) -> None:  # fmt: skip
        self.ingest = ingest
        self.session = session
        self.local_dir = local_dir
        self.clock = clock
        self.sent: dict[str, list[str]] = {}  # rendition -> names the origin took, in order
        self.waves_sent = 0  # requests that carried more than one rendition
        self.rejected: list[Rejection] = []
        self.unsent: list[str] = []  # "rendition/name" given up on at close
        self.refusal: int | None = None  # the status of the first refusal of the whole session
        self._lock = threading.Lock()  # guards the counter, the refusal and the waves
        self._waves = Waves(renditions)
        self._inits: set[str] = set()
        self._pending = 0
        self._abandon = threading.Event()
        self._todo: queue.SimpleQueue[list[_Item] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"uploads-{session}", daemon=True)
        self._thread.start()

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
        is due; a segment closed → its wave may be due."""
        if isinstance(event, Opened) and event.kind == "segment" and event.rendition not in self._inits:
            self._inits.add(event.rendition)
            path = Path(local_init_path(str(self.local_dir), event.rendition))
            self._due([[_Item(rendition=event.rendition, name=INIT_FILENAME, path=path, segment=False)]])
        elif isinstance(event, Closed):
            path = Path(local_segment_path(str(self.local_dir), event.rendition, event.name))
            item = _Item(rendition=event.rendition, name=event.name, path=path, segment=True)
            with self._lock:
                due = self._waves.closed(event.index, item)
            self._due(due)

    def close(self, timeout_s: float) -> None:
        """Send what is due, for up to `timeout_s` more; then give up on the rest (logged, in `unsent`)."""
        with self._lock:
            rest = self._waves.rest()
        self._due(rest)
        self._todo.put(None)
        self._thread.join(timeout_s)
        self._abandon.set()
        self._thread.join()
        if self.unsent:
            log.error("session %s: %d object(s) not sent before the session ended: %s", self.session,
                      len(self.unsent), ", ".join(self.unsent[:10]))  # fmt: skip

    def _due(self, units: list[list[_Item]]) -> None:
        for unit in units:
            with self._lock:
                self._pending += len(unit)
            self._todo.put(unit)

    def _run(self) -> None:
        sender = self.ingest.object_sender()
        try:
            while (unit := self._todo.get()) is not None:
                try:
                    self._send(unit, sender)
                finally:
                    with self._lock:
                        self._pending -= len(unit)
        finally:
            sender.close()

    def _send(self, unit: list[_Item], sender: ObjectSender) -> None:
        if self._abandon.is_set():
            self.unsent.extend(item.label for item in unit)
            return
        pieces: list[tuple[_Item, bytes]] = []
        for item in unit:
            try:
                pieces.append((item, item.path.read_bytes()))
            except OSError as exc:
                log.error("session %s: %s: ffmpeg's file is unreadable: %s", self.session, item.label, exc)
                self.rejected.append(Rejection(rendition=item.rendition, name=item.name, status=None))
        if len(pieces) > 1:
            try:
                if self._retrying(pieces, sender):
                    self.waves_sent += 1
                return
            except IngestRejectedError as exc:
                if exc.status_code not in WAVE_SPLITS:
                    self._rejected([item for item, _ in pieces], exc)
                    return
                log.warning("session %s: the origin refused wave %s (%s); sending its renditions one by one",
                            self.session, pieces[0][0].name, exc.message)  # fmt: skip
        for piece in pieces:
            try:
                self._retrying([piece], sender)
            except IngestRejectedError as exc:
                self._rejected([piece[0]], exc)

    def _retrying(self, pieces: list[tuple[_Item, bytes]], sender: ObjectSender) -> bool:
        """Send until answered (True); a 5xx or an unreachable origin is retried until `close` gives up (False).
        Raises IngestRejectedError for a refusal."""
        first = pieces[0][0]
        what = first.label if len(pieces) == 1 else f"wave {first.name}"
        delay, failures = RETRY_FIRST_S, 0
        while True:
            try:
                if len(pieces) == 1:
                    sender.put(self.session, first.rendition, first.name, pieces[0][1])
                else:
                    sender.put_wave(self.session, first.name, [(item.rendition, data) for item, data in pieces])
            except OriginUnavailableError as exc:
                failures += 1  # one WARNING per outage, not one per attempt (an outage lasts seconds)
                log.log(logging.WARNING if failures == 1 else logging.DEBUG, "session %s: %s: PUT failed (attempt %d),"
                        " retrying until the session ends: %s", self.session, what, failures, exc.message)  # fmt: skip
                if self._abandon.is_set() or self.clock.sleep(delay, self._abandon):
                    self.unsent.extend(item.label for item, _ in pieces)
                    return False
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if failures:
                log.info("session %s: %s: sent after %d failed attempts", self.session, what, failures)
            for item, _ in pieces:
                self.sent.setdefault(item.rendition, []).append(item.name)
                self._discard(item)
            return True

    def _rejected(self, items: list[_Item], exc: IngestRejectedError) -> None:
        for item in items:
            self.rejected.append(Rejection(rendition=item.rendition, name=item.name, status=exc.status_code))
            self._discard(item)
        if exc.status_code in SESSION_REFUSALS:
            with self._lock:
                first = self.refusal is None
                if first:
                    self.refusal = exc.status_code
            if not first:
                return  # the supervisor is already ending the session: one line is enough
        log.error("session %s: the origin refused %s: %s", self.session, ", ".join(i.label for i in items),
                  exc.message)  # fmt: skip

    def _discard(self, item: _Item) -> None:
        if item.segment:  # done with: disk stays bounded on a long broadcast (the init stays for the tail)
            item.path.unlink(missing_ok=True)
