"""StatusPublisher: writes `rooms/{room}/status.json` to Storage, coalesced to ~1 write per second per room.

`note_change(room, now)` is cheap and thread-safe (no I/O); the periodic `flush(now)` (run by `run()` in the
app's lifespan, every TICK_S) does the reads and writes in a worker thread. Across gunicorn workers and
origin instances, `AdmissionBackend.claim_publish` lets one writer per room through per interval.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import InitVar, dataclass

from origin.admission import status
from origin.admission.backend import AdmissionBackend
from origin.admission.clock import Clock, wall_clock
from origin.admission.status import BroadcastView, PublishSchedule
from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.errors import OriginError
from origin.metrics import Metrics
from origin.rooms import RoomRegistry
from origin.storage.base import Storage

logger = logging.getLogger(__name__)

TICK_S = 0.1  # how often `run` flushes: a change after a quiet period is published within ~this
MIN_INTERVAL_S = 1.0  # the STATUS TTL: publishing more often than the CDN refreshes buys nothing
URGENT_INTERVAL_S = 0.25  # ... except when the room fills up or frees its first seat


@dataclass(kw_only=True, eq=False)
class StatusPublisher:
    storage: Storage
    rooms: RoomRegistry
    backend: AdmissionBackend
    broadcasts: BroadcastView
    public_base_url: str
    api_url: str
    min_interval_s: InitVar[float] = MIN_INTERVAL_S
    clock: Clock = wall_clock
    metrics: Metrics | None = None

    def __post_init__(self, min_interval_s: float) -> None:
        self.schedule = PublishSchedule(min_interval_s=min_interval_s, urgent_interval_s=URGENT_INTERVAL_S)
        self.writes = 0  # successful status.json writes by this publisher (for metrics and tests)
        self.failures = 0  # publishing steps that failed (storage or backend down), retried
        self._lock = threading.Lock()
        self._hls_answers: Counter[str] = Counter()

    # -- called on the request path (cheap, no I/O) -------------------------------------------------------

    def note_change(self, room: str, now: float, *, urgent: bool = False) -> None:
        """The room's status may have changed (seat taken or freed, room edited, broadcast started/ended).

        `urgent`: real-time just flipped between open and full; publish after URGENT_INTERVAL_S, not 1 s.
        """
        with self._lock:
            self.schedule.note_change(room, now, urgent=urgent)

    def touch(self, room: str, now: float) -> None:
        with self._lock:
            self.schedule.touch(room, now)

    def forget(self, room: str) -> None:
        """The room was deleted: never write its status.json again (unless it is created anew)."""
        with self._lock:
            self.schedule.forget(room)
            self._hls_answers.pop(room, None)

    def count_hls_answer(self, room: str, now: float) -> None:
        with self._lock:
            self._hls_answers[room] += 1
            self.schedule.touch(room, now)

    # -- periodic I/O ----------------------------------------------------------------------------------------

    def document(self, room: str, now: float) -> dict[str, object] | None:
        cfg = self.rooms.get(room)
        if cfg is None:
            return None
        return status.status_document(
            room=cfg,
            broadcast=self.broadcasts.broadcast(room),
            seats_taken=self.backend.seats_taken(room, now=now),
            hls_recent=self.backend.hls_recent(room, now=now),
            now=now,
            public_base_url=self.public_base_url,
            api_url=self.api_url,
        )

    def flush(self, now: float) -> list[str]:
        """Push pending HLS counts, re-check watched rooms, publish the due ones. Returns rooms written."""
        with self._lock:
            answers, self._hls_answers = self._hls_answers, Counter()
            recheck = self.schedule.to_recheck(now)
            self.schedule.forget_idle(now)
        for room, count in answers.items():
            self._guarded(room, functools.partial(self.backend.add_hls_answers, room, now=now, count=count))
        for room in recheck:
            self._guarded(room, functools.partial(self._recheck, room, now))
        with self._lock:
            due = self.schedule.due(now)
        failures = self.failures
        written = [room for room in due if self._guarded(room, functools.partial(self.publish, room, now))]
        if self.metrics is not None:
            with self._lock:
                pending_s = self.schedule.pending_age_s(now)
            self.metrics.status_flushed(now, pending_age_s=pending_s, written=len(written),
                                        failed=self.failures - failures)  # fmt: skip
        return written

    def _recheck(self, room: str, now: float) -> bool:
        doc = self.document(room, now)
        with self._lock:
            if doc is None:
                self.schedule.forget(room)
                return False
            return self.schedule.checked(room, now, status.fingerprint(doc))

    def publish(self, room: str, now: float) -> bool:
        """Write the room's status.json now if no other writer did within the interval."""
        with self._lock:
            interval_s = self.schedule.interval_s(room)
        if not self.backend.claim_publish(room, now=now, interval_s=interval_s):
            with self._lock:
                self.schedule.deferred(room, now)
            return False
        doc = self.document(room, now)
        if doc is None:  # deleted meanwhile; nothing to tell clients
            with self._lock:
                self.schedule.forget(room)
            return False
        self.storage.put(layout.status(room), status.encode(doc), headers_for(ObjectKind.STATUS))
        with self._lock:
            self.schedule.published(room, now, status.fingerprint(doc))
            self.writes += 1
        logger.debug("room %s: status.json published (%s)", room, doc["realtime"])
        return True

    def _guarded(self, room: str, action: Callable[[], object]) -> bool:
        try:
            return bool(action())
        except OriginError as exc:  # storage or backend down: the room stays dirty and is retried
            logger.warning("room %s: status publishing failed, will retry: %s", room, exc)
            with self._lock:
                self.failures += 1
                self.schedule.deferred(room, self.clock())
            return False

    async def run(self, *, tick_s: float = TICK_S) -> None:
        """Flush every `tick_s` until cancelled (the app lifespan owns the task)."""
        while True:
            try:
                await asyncio.to_thread(self.flush, self.clock())
            except Exception:  # a bug or a failing BroadcastView must not stop status publishing for good
                logger.exception("status publishing pass failed; retrying in %.1f s", tick_s)
            await asyncio.sleep(tick_s)
