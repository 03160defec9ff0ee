"""SeatGate: makes admission's seats true in the SFU, and keeps them true.

Request path (worker threads, from AdmissionService):
    usable(now)              memory only: False while a recent SFU failure is inside its retry window
    grant(room, lease, now)  the lease's token into the room's allowed list; False (→ HLS) when the SFU fails
    release(room, lease, now) token out, participant kicked; a failure is left to the next sync pass
    touch(room, now)         the room is active on this worker (joins, heartbeats): keep syncing it

Sync loop (`run`, one asyncio task per worker, started by the admission router's lifespan): every
`sync_interval_s` each active room, and every `discover_interval_s` the rooms the SFU itself lists, are
reconciled: expired leases' tokens removed and participants kicked, missing rooms (a restarted Janus)
re-created with the live leases' tokens. `AdmissionBackend.claim(room, task="sfu-sync")` lets one worker
per room and interval do it, across workers and origin instances; every call is idempotent anyway.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from origin.admission.backend import AdmissionBackend
from origin.admission.clock import Clock, wall_clock
from origin.admission.sfu.base import SeatAccess, Sfu, SfuError
from origin.admission.sfu.health import SfuHealth, Transition
from origin.admission.sfu.reconcile import Plan
from origin.errors import OriginError

logger = logging.getLogger(__name__)

SYNC_TASK = "sfu-sync"
SYNC_INTERVAL_S = 2.0  # lease expiry reaches the SFU within about this (plus the lease's own length)
DISCOVER_INTERVAL_S = 10.0  # how often the SFU's own room list is read (rooms no request here touched)
ACTIVE_WINDOW_S = 900.0  # a room is synced this long after its last join/heartbeat/leave on this worker
MAX_ACTIVE_ROOMS = 10_000

SFU_UP = Gauge("spillway_sfu_up", "1 while the SFU answers this worker", ["sfu"], multiprocess_mode="livemin")
SFU_ERRORS = Counter("spillway_sfu_errors", "SFU calls that failed", ["sfu", "op"])
SFU_FALLBACKS = Counter("spillway_sfu_fallbacks", "Joins sent to HLS because the SFU was unavailable", ["sfu"])
SFU_ROOMS_RECREATED = Counter("spillway_sfu_rooms_recreated", "SFU rooms found missing and re-created", ["sfu"])
SFU_KICKS = Counter("spillway_sfu_kicks", "Participants dropped because their lease ended", ["sfu"])


@dataclass(kw_only=True, eq=False)
class SeatGate:
    sfu: Sfu
    backend: AdmissionBackend
    health: SfuHealth = field(default_factory=SfuHealth)
    clock: Clock = wall_clock
    sync_interval_s: float = SYNC_INTERVAL_S
    discover_interval_s: float = DISCOVER_INTERVAL_S

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, float] = {}
        self._discovered: set[str] = set()
        self._last_discover = float("-inf")
        SFU_UP.labels(self.sfu.kind).set(1)

    @property
    def kind(self) -> str:
        return self.sfu.kind

    # -- request path -----------------------------------------------------------------------------------------

    def usable(self, now: float) -> bool:
        with self._lock:
            return self.health.usable(now)

    def touch(self, room: str, now: float) -> None:
        with self._lock:
            if len(self._active) >= MAX_ACTIVE_ROOMS and room not in self._active:
                self._active = {r: t for r, t in self._active.items() if now - t < ACTIVE_WINDOW_S}
                if len(self._active) >= MAX_ACTIVE_ROOMS:
                    self._active.pop(next(iter(self._active)))
            self._active[room] = now

    def access(self, room: str, lease: str, *, now: float, expires_at: float) -> SeatAccess:
        return self.sfu.access(room, lease, now=now, expires_at=expires_at)

    def grant(self, room: str, lease: str, now: float) -> bool:
        """Let the lease into the SFU room. False when the SFU failed: the caller frees the seat, answers HLS."""
        self.touch(room, now)
        if not self._call(room, "grant", lambda: self.sfu.grant(room, lease), now):
            SFU_FALLBACKS.labels(self.kind).inc()
            return False
        return True

    def fallback(self) -> None:
        SFU_FALLBACKS.labels(self.kind).inc()

    def release(self, room: str, lease: str, now: float) -> None:
        self.touch(room, now)
        self._call(room, "revoke", lambda: self.sfu.revoke(room, lease), now)

    # -- sync ---------------------------------------------------------------------------------------------

    def rooms_to_sync(self, now: float) -> list[str]:
        with self._lock:
            self._active = {r: t for r, t in self._active.items() if now - t < ACTIVE_WINDOW_S}
            rooms = set(self._active) | self._discovered
        return sorted(rooms)

    def discover(self, now: float) -> None:
        if now - self._last_discover < self.discover_interval_s:
            return
        self._last_discover = now
        found: list[str] = []

        def list_rooms() -> None:
            found.extend(self.sfu.rooms())

        if self._call("(all)", "list", list_rooms, now):
            with self._lock:
                self._discovered = set(found)

    def sync_room(self, room: str, now: float) -> Plan | None:
        """Reconcile one room if this caller holds its sync claim; the plan applied, or None."""
        try:
            if not self.backend.claim(room, task=SYNC_TASK, now=now, interval_s=self.sync_interval_s * 0.9):
                return None
        except OriginError as exc:  # the backend is down: admission answers 503 already; try next pass
            logger.warning("room %s: SFU sync skipped, admission backend unavailable: %s", room, exc)
            return None

        def live_leases() -> list[str]:  # called by the SFU after it observed the room (reconcile.py)
            return self.backend.live_leases(room, now=now)

        done: list[Plan] = []
        try:
            if not self._call(room, "sync", lambda: done.append(self.sfu.sync(room, live_leases)), now):
                return None
        except OriginError as exc:  # live_leases: the admission backend failed mid-pass
            logger.warning("room %s: SFU sync interrupted, admission backend unavailable: %s", room, exc)
            return None
        todo = done[0]
        if todo.create:
            SFU_ROOMS_RECREATED.labels(self.kind).inc()
            logger.warning("room %s: %s room missing (restarted?): re-created with the live leases", room, self.kind)
        if todo.kick:
            SFU_KICKS.labels(self.kind).inc(len(todo.kick))
            logger.info("room %s: %d participant(s) without a live lease kicked", room, len(todo.kick))
        if todo.add or todo.remove:
            logger.info("room %s: allowed list synced (+%d, -%d)", room, len(todo.add), len(todo.remove))
        return todo

    def sync_pass(self, now: float) -> dict[str, Plan]:
        self.discover(now)
        plans: dict[str, Plan] = {}
        for room in self.rooms_to_sync(now):
            todo = self.sync_room(room, now)
            if todo is not None:
                plans[room] = todo
        return plans

    async def run(self, *, tick_s: float | None = None) -> None:
        """Sync every `tick_s` (default sync_interval_s) until cancelled."""
        tick = tick_s or self.sync_interval_s
        while True:
            started = time.monotonic()
            try:
                await asyncio.to_thread(self.sync_pass, self.clock())
            except Exception:  # a bug must not stop seat enforcement for good
                logger.exception("room (all): SFU sync pass failed; retrying in %.1f s", tick)
            await asyncio.sleep(max(0.05, tick - (time.monotonic() - started)))

    # -- helpers --------------------------------------------------------------------------------------------

    def _call(self, room: str, op: str, action: Callable[[], object], now: float) -> bool:
        try:
            action()
        except SfuError as exc:
            SFU_ERRORS.labels(self.kind, op).inc()
            with self._lock:
                transition = self.health.failed(now, str(exc))
            if transition is Transition.WENT_DOWN:
                SFU_UP.labels(self.kind).set(0)
                logger.error("room %s: SFU %s unavailable (%s failed: %s): joins go to HLS", room, self.kind, op, exc)
            else:
                logger.warning("room %s: SFU %s %s failed: %s", room, self.kind, op, exc)
            return False
        with self._lock:
            transition = self.health.succeeded()
        if transition is Transition.CAME_BACK:
            SFU_UP.labels(self.kind).set(1)
            logger.warning("room %s: SFU %s is back: seats open again, rooms re-synced", room, self.kind)
            self._last_discover = float("-inf")
        return True

    def close(self) -> None:
        self.sfu.close()
