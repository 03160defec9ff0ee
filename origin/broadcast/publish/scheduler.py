"""Runs publishing passes for the rooms this worker owns: on a ring, at filler deadlines, and every second.

Ownership: the first worker to take a room's owner lock publishes it until the broadcast ends or the worker
dies (the kernel drops the lock; another worker takes the room at its next sweep). With leases (a fleet,
origin/fleet/) ownership can also be lost: a pass refused with OwnershipLostError, or a lapsed lease, drops
the room here, and it is claimed again like any unowned room (claims.py; remote claims run off the loop).
A pass never runs on the event loop: each room is pinned to one of PASS_SHARDS single-thread executors, so
passes of one room never overlap and requests that arrive meanwhile coalesce into one more pass. With local
storage passes run on the event loop itself (`inline`): they are short, and a thread would only contend for
the GIL — all but a new owner's first pass, which reads the whole journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import zlib
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from origin.broadcast.journal.base import Journal, Ownership
from origin.broadcast.model import BroadcastState
from origin.broadcast.publish.claims import Claims
from origin.broadcast.publish.room import PassResult, RoomPublisher
from origin.broadcast.publish.waves import Waves
from origin.broadcast.states import RoomStates
from origin.errors import OwnershipLostError

log = logging.getLogger(__name__)

PASS_SHARDS = 16
MAINTENANCE_INTERVAL_S = 1.0  # every owned room passes at least this often (timeouts, retries, filler backstop)
SWEEP_INTERVAL_S = 2.0
HOUSEKEEPING_INTERVAL_S = 300.0  # how often unowned live rooms are looked for (a dead worker's rooms)


@dataclass(eq=False, kw_only=True)
class PublishScheduler:
    journal: Journal
    states: RoomStates
    make_publisher: Callable[[str, Ownership], RoomPublisher]
    claims: Claims  # who may take which room (one host: flocks; a fleet: leases)
    clock: Callable[[], float]
    on_result: Callable[[str, PassResult], None]
    # Local storage: a pass (≈ 1 ms of Python and a few file writes) runs on the event loop. A pass in a shard
    # thread fights the loop for the GIL (measured: ~30 futex calls per segment); with remote storage (S3) the
    # network waits make the threads worth it.
    inline: bool = False
    housekeeping: Callable[[], object] | None = None  # run in a thread every HOUSEKEEPING_INTERVAL_S (retention)

    def __post_init__(self) -> None:
        self.shards = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pass{i}") for i in range(PASS_SHARDS)]
        self.claims.on_due = self.request
        self.owned: dict[str, RoomPublisher] = {}
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._urgent_again: set[str] = set()
        self._waves = Waves(enabled=self.inline)  # one pass per segment of a room's ladder (waves.py)
        self._last_pass: dict[str, float] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._maintenance: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._maintenance = self._loop.create_task(self._maintain())

    async def stop(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        for timer in self._timers.values():
            timer.cancel()
        self.claims.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
        for publisher in self.owned.values():
            publisher.close()
        self.owned.clear()
        for shard in self.shards:
            shard.shutdown(wait=False, cancel_futures=True)

    # -- requests ---------------------------------------------------------------------------------------

    def request(self, room: str, rendition: str | None = None, *, urgent: bool = False) -> None:
        """Pass over `room` soon if this worker owns it (taking it if nobody does). Event loop only; cheap.

        `rendition`: a segment of it was recorded (the pass waits for the wave). `urgent`: no gathering delay (a
        filler deadline, maintenance)."""
        if room not in self.owned and not self._claim(room):
            return
        self._waves.rang(room, rendition, expected=self._expected(room), urgent=urgent)
        if room in self._running:
            self._again.add(room)
            if urgent:
                self._urgent_again.add(room)
            return
        self._running.add(room)
        self._spawn(self._run(room, gather=not urgent))

    def _expected(self, room: str) -> int:
        publisher = self.owned.get(room)
        return publisher.expected_renditions if publisher is not None else 0

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _claim(self, room: str) -> bool:
        """Take the room now (a local lock), or start taking it off the loop (a remote lease: False for now)."""
        if not self.claims.allowed(room):
            return False
        if not self.claims.in_thread:
            return self._own(room, self.claims.attempt(room))
        self._spawn(self._claim_off_loop(room))
        return False

    async def _claim_off_loop(self, room: str) -> None:
        if self._own(room, await self.claims.attempt_off_loop(room)):
            self.request(room)

    def _own(self, room: str, ownership: Ownership | None) -> bool:
        if ownership is not None and (room in self.claims.finished or room in self.owned):
            ownership.release()  # ended, or taken by another attempt meanwhile
            return False
        if ownership is not None:
            self.owned[room] = self.make_publisher(room, ownership)
            log.info("room=%s this worker publishes the room now (owner token %d)", room, ownership.token)
        return ownership is not None

    async def _run(self, room: str, *, gather: bool) -> None:
        assert self._loop is not None
        shard = self.shards[zlib.crc32(room.encode()) % PASS_SHARDS]
        try:
            while True:
                if gather and room not in self._urgent_again:  # an urgent request meanwhile: go now
                    await self._waves.gather(room, self._expected(room))
                self._again.discard(room)
                self._urgent_again.discard(room)
                self._waves.started(room)
                publisher = self.owned.get(room)
                if publisher is None or publisher.ownership.lost:
                    self._lose(room, "its lease lapsed or was taken")
                    return
                try:
                    # A new owner's first pass folds the whole journal and rebuilds the DVR (seconds for a
                    # broadcast of hours, bench/takeover.py): never on the loop.
                    result = (publisher.run() if self.inline and publisher.started
                              else await self._loop.run_in_executor(shard, publisher.run))  # fmt: skip
                except OwnershipLostError as exc:  # refused where the write happens: a successor owns the room
                    self._lose(room, str(exc))
                    return
                except Exception:  # a pass must never take the worker down; the next one retries
                    log.exception("room=%s publishing pass failed", room)
                    result = None
                self._last_pass[room] = self.clock()
                if result is not None:
                    self._after(room, result)
                    if result.needs_barrier:
                        # Segments recorded after the last barrier this worker knows of: run one (off the
                        # loop, shared with ingest) and pass again, instead of blocking inside the pass.
                        await publisher.commit.barrier()
                        self._again.add(room)
                        self._urgent_again.add(room)
                if room not in self._again:
                    return
                gather = room not in self._urgent_again
        finally:
            self._running.discard(room)

    def _after(self, room: str, result: PassResult) -> None:
        self.on_result(room, result)
        if result.state is BroadcastState.ENDED:
            self._release(room)
            return
        if result.next_deadline is not None:
            self._arm(room, result.next_deadline)

    def _arm(self, room: str, deadline: float) -> None:
        """A pass when the next filler slot turns late: the live edge advances on time, not on the next tick."""
        assert self._loop is not None
        old = self._timers.pop(room, None)
        if old is not None:
            old.cancel()
        delay = max(0.0, deadline - self.clock()) + 0.005
        self._timers[room] = self._loop.call_later(delay, functools.partial(self.request, room, urgent=True))

    def _release(self, room: str, *, ended: bool = True) -> None:
        publisher = self.owned.pop(room, None)
        if publisher is not None:
            publisher.close()
        timer = self._timers.pop(room, None)
        if timer is not None:
            timer.cancel()
        (self.claims.finished.add if ended else self.claims.lost)(room)
        self._last_pass.pop(room, None)
        self._waves.started(room)
        if ended:
            log.info("room=%s broadcast over: released", room)

    def _lose(self, room: str, why: str) -> None:
        """Stop publishing a room another process may own now; it is claimed again like an unowned room."""
        if room in self.owned:
            self._release(room, ended=False)
            log.warning("room=%s no longer published by this worker: %s", room, why)

    def forget(self, room: str) -> None:
        """The room's state was deleted: stop publishing it; a new broadcast under its id starts afresh."""
        self._release(room)
        self.claims.forget(room)

    # -- periodic ---------------------------------------------------------------------------------------

    async def _maintain(self) -> None:
        last_sweep = 0.0
        last_housekeeping = self.clock()
        while True:
            await asyncio.sleep(MAINTENANCE_INTERVAL_S / 2)
            now = self.clock()
            for room in list(self.owned):
                if now - self._last_pass.get(room, 0.0) >= MAINTENANCE_INTERVAL_S:
                    self.request(room, urgent=True)
            if now - last_sweep >= SWEEP_INTERVAL_S:
                last_sweep = now
                try:
                    orphans = await asyncio.to_thread(self.claims.sweep, self.states, set(self.owned))
                except Exception:
                    log.exception("sweep for unowned rooms failed")
                    continue
                for room in orphans:
                    self.request(room)
            if self.housekeeping is not None and now - last_housekeeping >= HOUSEKEEPING_INTERVAL_S:
                last_housekeeping = now
                try:
                    await asyncio.to_thread(self.housekeeping)
                except Exception:
                    log.exception("housekeeping failed")
