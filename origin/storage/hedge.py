"""Hedged writes: a `Storage` wrapper that gives a slow write a second (and third) concurrent attempt.

    storage = HedgedStorage(S3Storage(...), metrics=m)

`put` / `put_file` start one attempt of the inner backend's call (its own retries included) in a thread
pool; if it has not answered within the policy's delay (hedge_policy.py: from recent latency), another
attempt of the same bytes to the same key starts, up to `max_attempts`. The first success returns; a loser
is abandoned (the backend stops retrying it, storage.base.given_up) and its result is ignored. Every attempt
is an idempotent PUT of identical bytes, so which one lands last does not matter — for one version.

Mutable objects (anything not `immutable` in Cache-Control: playlists, status.json) may not let an older
version land after a newer one. Their versions are numbered per key (`Lane`): the attempts of a superseded
version never retry, and when an attempt of an older version ends after a newer one was stored (a hung
request may have landed last), the newest version is written once more (a repair, after `repair_delay_s`).
A store that applies a request long after the client gave up on it is beyond any client: the repair bounds
how long such a stale version stays visible.

A store with conditional PUTs (S3 since 2024, R2, MinIO, moto: `ConditionalStore`) closes that window: each
version of a mutable key is written If-Match the ETag of the version it follows, so a delayed attempt of an
older version finds the object changed (412) and never lands. A lost condition reads the ETag again (HEAD)
and, unless the version was superseded meanwhile, writes on top of what is there; an ETag equal to the
body's MD5 is this very version (an earlier attempt landed). No repair is needed then.
Reads, deletes and listings pass straight through.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeGuard

from origin.contract.cache_policy import ObjectHeaders
from origin.errors import StorageError
from origin.storage.base import Storage, abandon_when
from origin.storage.delegate import ReadsBelow
from origin.storage.hedge_policy import HedgePolicy, Lane, Sample, hedge_delay, may_hedge, recent
from origin.storage.s3 import PreconditionFailedError

log = logging.getLogger(__name__)

HEDGE_THREADS = 64  # losers hold a thread until their own timeout: room for a burst of hung writes
HEDGE_MAX_BYTES = 1 << 20  # live objects are tens of kB; a large upload (the replay download) is not doubled
CHAIN_ATTEMPTS = 3  # conditional writes of one attempt before it gives up (a lost condition reads the ETag again)
_UNKNOWN = "?"  # no ETag known for the key: read it before writing


class ConditionalStore(Protocol):
    """The S3 backend's conditional write (origin.storage.s3.S3Storage)."""

    name: str

    def put_conditional(
        self, key: str, data: bytes, headers: ObjectHeaders, *, if_match: str | None = None, if_absent: bool = False
    ) -> str: ...

    def etag(self, key: str) -> str | None: ...


def md5_etag(data: bytes) -> str:
    """The ETag S3 gives a single-part PUT of `data` without SSE-KMS (quoted, as S3 answers it)."""
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


class HedgeMetrics(Protocol):
    def hedge(self, backend: str, event: str) -> None:
        """event: "hedged" (an extra attempt started), "won" (an extra attempt answered first), "repaired"."""
        ...


@dataclass(kw_only=True)
class _Latest:
    version: int
    data: bytes
    headers: ObjectHeaders
    durable: bool


def chained_put(
    store: ConditionalStore, key: str, data: bytes, headers: ObjectHeaders, known: str | None,
    superseded: Callable[[], bool],
) -> str:  # fmt: skip
    """Write `data` If-Match `known` (the ETag of what it follows; _UNKNOWN: read it first); the new ETag.
    Never lands over a newer version: a lost condition reads the ETag again and, unless superseded, retries."""
    mine = md5_etag(data)
    for _ in range(CHAIN_ATTEMPTS):
        if known == _UNKNOWN:
            known = store.etag(key)
        if superseded():  # checked after the read: an ETag read now may be a newer version's
            raise StorageError("a newer version was issued", key=key, backend=store.name, retryable=False)
        if known == mine:
            return mine  # this version is there already (an earlier attempt landed)
        try:
            return store.put_conditional(key, data, headers, if_match=known, if_absent=known is None)
        except PreconditionFailedError:
            known = _UNKNOWN
    raise StorageError(f"conditional write lost {CHAIN_ATTEMPTS} times", key=key, backend=store.name)


def _is_conditional(store: object) -> TypeGuard[ConditionalStore]:
    return callable(getattr(store, "put_conditional", None)) and callable(getattr(store, "etag", None))


class HedgedStorage(ReadsBelow):
    def __init__(
        self,
        inner: Storage,
        *,
        policy: HedgePolicy | None = None,
        metrics: HedgeMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        threads: int = HEDGE_THREADS,
    ) -> None:
        self.below = inner
        self.name = inner.name
        self.policy = policy or HedgePolicy()
        self.metrics = metrics
        self.clock = clock
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="hedge")
        self._lock = threading.Lock()
        self._samples: deque[Sample] = deque(maxlen=self.policy.max_samples)
        self._writes: deque[float] = deque()  # start times of writes within the horizon (the hedge budget)
        self._hedges: deque[float] = deque()
        self._lanes: dict[str, Lane] = {}
        self._latest: dict[str, _Latest] = {}
        self._etags: dict[str, str | None] = {}  # key -> ETag of the newest version we stored (None: absent)
        self._chained: ConditionalStore | None = inner if _is_conditional(inner) else None
        self.hedged = 0
        self.won = 0
        self.repaired = 0

    def __repr__(self) -> str:
        return f"HedgedStorage({self.below!r})"

    # -- writes ------------------------------------------------------------------------------------------

    def put(self, key: str, data: bytes, headers: ObjectHeaders, *, durable: bool = True) -> None:
        body = bytes(data)
        if len(body) > HEDGE_MAX_BYTES:
            self.below.put(key, body, headers, durable=durable)
        elif headers.immutable:
            self._race(key, lambda: self.below.put(key, body, headers, durable=durable), lambda: False)
        else:
            self._put_version(key, body, headers, durable)

    def put_file(self, key: str, source: Path, headers: ObjectHeaders) -> None:
        if not headers.immutable or source.stat().st_size > HEDGE_MAX_BYTES:  # FileNotFoundError if missing
            self.below.put_file(key, source, headers)
            return
        self._race(key, lambda: self.below.put_file(key, source, headers), lambda: False)

    def _put_version(self, key: str, data: bytes, headers: ObjectHeaders, durable: bool) -> None:
        with self._lock:
            lane = self._lanes.setdefault(key, Lane())
            version = lane.issue()

        def superseded() -> bool:
            with self._lock:
                return lane.superseded(version)

        def late(attempt: Future[None]) -> None:  # an attempt of `version` ended after put() returned
            with self._lock:
                repair = lane.needs_repair(version)
            if repair:
                # It landed (success): rewrite the newest at once. It failed or timed out: the store may still
                # apply it a moment later, so rewrite a little later.
                delay = 0.0 if attempt.exception() is None else self.policy.repair_delay_s
                timer = threading.Timer(delay, self._repair, args=(key,))
                timer.daemon = True
                timer.start()

        if self._chained is not None:
            chained = self._chained
            etags: list[str] = []
            with self._lock:
                known = self._etags.get(key, _UNKNOWN)
            self._race(key, lambda: etags.append(chained_put(chained, key, data, headers, known, superseded)),
                       superseded)  # fmt: skip
            with self._lock:
                lane.landed(version)
                if lane.stored == version and etags:
                    self._etags[key] = etags[0]
            return
        self._race(key, lambda: self.below.put(key, data, headers, durable=durable), superseded, on_late=late)
        with self._lock:
            lane.landed(version)
            if lane.stored == version:
                self._latest[key] = _Latest(version=version, data=data, headers=headers, durable=durable)

    def _repair(self, key: str) -> None:
        """Write the newest stored version of `key` again, unless a newer write is on its way anyway."""
        with self._lock:
            latest, lane = self._latest.get(key), self._lanes.get(key)
            if latest is None or lane is None or lane.issued > latest.version:
                return
        try:
            self._put_version(key, latest.data, latest.headers, latest.durable)
        except StorageError as exc:
            log.warning("repair write of %s failed; the next version will replace it: %s", key, exc)
            return
        self.repaired += 1
        self._report("repaired")

    # -- the race ----------------------------------------------------------------------------------------

    def _race(
        self, key: str, call: Callable[[], None], superseded: Callable[[], bool],
        on_late: Callable[[Future[None]], None] | None = None,
    ) -> None:  # fmt: skip
        """Run `call`, hedged; return on the first success, raise the last error once every attempt failed."""
        done = threading.Event()  # set when this write has an outcome: the losers give up

        def attempt() -> None:
            started = self.clock()
            with abandon_when(lambda: done.is_set() or superseded()):
                call()
            with self._lock:
                self._samples.append(Sample(at=self.clock(), latency_s=self.clock() - started))

        now = self.clock()
        with self._lock:
            self._writes.append(now)
            delay = hedge_delay(self._samples, now, self.policy)
        attempts: list[Future[None]] = [self._pool.submit(attempt)]
        pending: set[Future[None]] = set(attempts)
        error: BaseException | None = None
        try:
            while pending:
                hedge_now = len(attempts) < self.policy.max_attempts and self._may_hedge()
                finished, pending = wait(pending, timeout=delay if hedge_now else None, return_when=FIRST_COMPLETED)
                for f in finished:
                    exc = f.exception()
                    if exc is None:
                        if f is not attempts[0]:
                            self.won += 1
                            self._report("won")
                        return
                    error = exc
                if not finished and hedge_now:
                    attempts.append(self._pool.submit(attempt))
                    pending.add(attempts[-1])
                    self._note_hedge(key, len(attempts), delay)
            assert error is not None
            raise error
        finally:
            done.set()
            if on_late is not None:
                for f in attempts:
                    if not f.done():
                        f.add_done_callback(on_late)

    def _may_hedge(self) -> bool:
        now = self.clock()
        with self._lock:
            for times in (self._writes, self._hedges):
                while times and now - times[0] > self.policy.horizon_s:
                    times.popleft()
            return may_hedge(writes=len(self._writes), hedges=len(self._hedges), policy=self.policy)

    def _note_hedge(self, key: str, attempt: int, delay: float) -> None:
        with self._lock:
            self._hedges.append(self.clock())
        self.hedged += 1
        self._report("hedged")
        log.info("storage write of %s slow after %.3f s: attempt %d started", key, delay, attempt)

    def _report(self, event: str) -> None:
        if self.metrics is not None:
            self.metrics.hedge(self.name, event)

    def delay_s(self) -> float:
        """The hedge delay a write starting now would use (for metrics and tests)."""
        now = self.clock()
        with self._lock:
            return hedge_delay(recent(self._samples, now, self.policy), now, self.policy)

    # -- pass-through ------------------------------------------------------------------------------------

    def sync(self) -> None:
        self.below.sync()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
