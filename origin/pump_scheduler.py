"""Runs `Publisher.pump` off the event loop: on demand (after ingest) and periodically (timeouts, retries).

At most one pump per room runs in a worker; requests that arrive meanwhile coalesce into one more pass.
Across workers, the room lock in StateStore serialises passes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from origin.publisher import Publisher, PumpResult

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL_S = 1.0
# Rooms are pinned to one of these single-thread executors, so a room's state connection stays cached on
# its thread and passes of one room never queue behind each other in this worker.
PUMP_SHARDS = 16


class PumpScheduler:
    def __init__(
        self,
        publisher: Publisher,
        *,
        clock: Callable[[], float],
        on_result: Callable[[str, PumpResult], None] | None = None,
    ) -> None:
        self.publisher = publisher
        self.clock = clock
        self.on_result = on_result
        self.shards = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pump{i}") for i in range(PUMP_SHARDS)]
        self.active: set[str] = set()  # rooms this worker keeps an eye on until their broadcast ends
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._forced: set[str] = set()
        self._last_pump: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._maintenance: asyncio.Task[None] | None = None

    def start(self, rooms_to_recover: list[str]) -> None:
        self._loop = asyncio.get_running_loop()
        self.active.update(rooms_to_recover)
        self._maintenance = self._loop.create_task(self._maintain())

    async def stop(self) -> None:
        if self._maintenance:
            self._maintenance.cancel()
        for task in list(self._tasks):
            await asyncio.wait([task], timeout=10)
        for shard in self.shards:
            shard.shutdown(wait=False, cancel_futures=True)

    def request(self, room: str, *, maintenance: bool = False) -> None:
        """Pump `room` soon. Callable from the event loop thread. A maintenance request is skipped by the
        publisher when any worker has passed over the room within the maintenance interval."""
        self.active.add(room)
        if not maintenance:
            self._forced.add(room)
        if room in self._running:
            self._again.add(room)
            return
        if self._loop is None:
            return
        self._running.add(room)
        task = self._loop.create_task(self._run(room))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, room: str) -> None:
        loop = asyncio.get_running_loop()
        shard = self.shards[zlib.crc32(room.encode()) % len(self.shards)]
        try:
            while True:
                self._again.discard(room)
                self._last_pump[room] = self.clock()
                forced = room in self._forced
                self._forced.discard(room)
                try:
                    result = await loop.run_in_executor(
                        shard, functools.partial(self.publisher.pump, room, skip_if_recent_s=None if forced else 0.9)
                    )
                except Exception:
                    log.exception("room=%s publish pass failed; will retry", room)
                    result = None
                if result is not None and self.on_result:
                    self.on_result(room, result)
                if room not in self._again:
                    break
        finally:
            self._running.discard(room)

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(MAINTENANCE_INTERVAL_S / 2)
            now = self.clock()
            for room in list(self.active):
                if now - self._last_pump.get(room, 0.0) >= MAINTENANCE_INTERVAL_S:
                    self.request(room, maintenance=True)

    def forget(self, room: str) -> None:
        """Stop periodic passes for a room whose broadcast has ended."""
        self.active.discard(room)
        self._last_pump.pop(room, None)
