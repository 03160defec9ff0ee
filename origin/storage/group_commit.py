"""Group commit: one durability barrier shared by every write that is waiting for it.

Ingest writes a segment (storage, `durable=False`) and appends its journal record, then waits here before
answering 201. One committer thread runs the barrier (`sync`: syncfs of the filesystems involved); every
writer that arrived while the previous barrier ran is released by the next one. At 900 segment PUTs/s that
is a handful of barriers per second instead of three fsyncs per segment.

Waiters are asyncio futures (request handlers: no thread is held while waiting) or blocking calls (the
publish pass, in its own thread). A failed barrier fails every waiter of that batch with its error.

The committer lingers `linger_s` after the first waiter of a batch so that the writes of concurrent
requests share the barrier (a few ms on a 201, for many fewer syncs). `durable_before` is the wall-clock
start of the newest barrier known to have succeeded — here or, told by the doorbell, in another worker of
the host (a filesystem-wide sync covers every process's writes): anything written before it is durable.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class _Waiter:
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[None] | None = None
    event: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def release(self, error: BaseException | None) -> None:
        if self.future is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(_settle, self.future, error)
        else:
            self.error = error
            self.event.set()


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class GroupCommit:
    def __init__(
        self,
        sync: Callable[[], None],
        *,
        name: str = "group-commit",
        linger_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sync = sync
        self.linger_s = linger_s
        self.clock = clock
        self.durable_before = 0.0
        self._queue: queue.SimpleQueue[_Waiter | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self._start_lock = threading.Lock()
        self.barriers = 0  # barriers run (for metrics and tests)

    def _ensure_started(self) -> None:
        if not self._started:
            with self._start_lock:
                if not self._started:
                    self._thread.start()
                    self._started = True

    async def barrier(self) -> None:
        """Return once everything written before the call is durable (raises the barrier's error)."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop=loop, future=loop.create_future())
        self._ensure_started()
        self._queue.put(waiter)
        assert waiter.future is not None
        await waiter.future

    def barrier_blocking(self) -> None:
        waiter = _Waiter()
        self._ensure_started()
        self._queue.put(waiter)
        waiter.event.wait()
        if waiter.error is not None:
            raise waiter.error

    def note_durable(self, started_at: float) -> None:
        """Another process's barrier that started at `started_at` succeeded."""
        self.durable_before = max(self.durable_before, started_at)

    def close(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            if self.linger_s > 0 and first is not None:
                time.sleep(self.linger_s)  # let concurrent writers join this barrier
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(w is None for w in batch)
            waiters = [w for w in batch if w is not None]
            if waiters:
                error: BaseException | None = None
                started = self.clock()
                try:
                    self._sync()
                    self.durable_before = max(self.durable_before, started)
                except Exception as exc:  # handed to every waiter of this batch
                    log.error("durability barrier failed for %d writes: %s", len(waiters), exc)
                    error = exc
                self.barriers += 1
                for w in waiters:
                    w.release(error)
            if stop:
                return
