"""RedisBoard: the low-latency playlists of a fleet, where every instance's workers can read them.

On one host the owner leaves each rendition's LL playlist in files (publish/lowlatency.py Board) and rings the
host's workers. In a fleet a listener's blocking reload reaches any instance, so the texts live in Redis: one
hash per room (`{prefix}{room}:ll`, fields `{rendition}` and `{rendition}.skip`, written together by one
HSET), expiring LL_TTL_S after the owner's last write so a dead owner leaves nothing behind for long. The
owner's ring goes to every worker of the fleet (fleet/doorbell.py, `ring_playlist`).

Reads come from the event loop, thousands of held requests per worker re-reading at each ring: the last text
read is kept per (room, rendition, skip) until the room's next ring (`forget`) or CACHE_S, whichever is first,
and `aread` sends a miss to a thread, with every request that misses meanwhile waiting for the same HGET: a ring
costs one HGET per rendition and worker, not one per held request, and a slow Redis never stalls the loop.
Redis failing is not the listener's problem: a read answers None (the origin serves the standard playlist from
storage) and a write is logged and dropped (the standard playlists are written anyway; the next part writes again).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import redis

from origin.contract import ids
from origin.fleet.keys import room_keys

log = logging.getLogger(__name__)

LL_TTL_S = 30  # an owner writes every part (~0.2 s); a room nobody writes for this long has no LL playlist
CACHE_S = 0.25  # a lost ring costs at most this much staleness (held reloads also re-check every 0.5 s)
READ_TIMEOUT_S = 0.5


def board_key(prefix: str, room: str) -> str:
    return room_keys(prefix, room).board


class RedisBoard:
    def __init__(self, client: redis.Redis[bytes], *, prefix: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.prefix = prefix
        self.clock = clock
        self._cache: dict[tuple[str, str, bool], tuple[float, str | None]] = {}
        self._lock = threading.Lock()
        self._rings: dict[str, int] = {}  # per room, how many rings so far: a read older than a ring is not kept
        self._flights: dict[tuple[str, str, bool, int], asyncio.Future[str | None]] = {}  # misses in a thread

    def write(self, room: str, rendition: str, text: str, skip_text: str) -> None:
        name = ids.rendition_name(rendition)
        key = board_key(self.prefix, room)
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(key, mapping={name: text.encode(), f"{name}.skip": skip_text.encode()})
            pipe.expire(key, LL_TTL_S)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("room=%s low-latency playlist %s not written to Redis: %s", room, name, exc)
            return
        now = self.clock()
        with self._lock:
            self._cache[(room, name, False)] = (now, text)
            self._cache[(room, name, True)] = (now, skip_text)

    def _cached(self, key: tuple[str, str, bool], now: float) -> tuple[bool, str | None]:
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < CACHE_S:
            return True, hit[1]
        return False, None

    def read(self, room: str, rendition: str, *, skip: bool = False) -> str | None:
        name = ids.rendition_name(rendition)
        now = self.clock()
        found, text = self._cached((room, name, skip), now)
        if found:
            return text
        with self._lock:
            rings = self._rings.get(room, 0)
        try:
            raw = self.client.hget(board_key(self.prefix, room), f"{name}.skip" if skip else name)
        except redis.RedisError as exc:
            log.warning("room=%s low-latency playlist %s unreadable (%s): the standard playlist answers", room, name,
                        exc)  # fmt: skip
            return None
        text = None if raw is None else raw.decode()
        with self._lock:
            if self._rings.get(room, 0) == rings:  # no ring since the HGET was sent: the text is current
                self._cache[(room, name, skip)] = (now, text)
        return text

    async def aread(self, room: str, rendition: str, *, skip: bool = False) -> str | None:
        name = ids.rendition_name(rendition)
        found, text = self._cached((room, name, skip), self.clock())
        if found:
            return text
        with self._lock:
            flight_key = (room, name, skip, self._rings.get(room, 0))  # a ring starts a new flight
        flight = self._flights.get(flight_key)
        if flight is None:
            flight = asyncio.ensure_future(asyncio.to_thread(self.read, room, rendition, skip=skip))
            self._flights[flight_key] = flight
            flight.add_done_callback(lambda _done: self._flights.pop(flight_key, None))
        return await asyncio.shield(flight)

    def forget(self, room: str) -> None:
        """The room's LL playlists moved (a ring): the next read asks Redis."""
        with self._lock:
            self._rings[room] = self._rings.get(room, 0) + 1
            if len(self._rings) > 10_000:
                self._rings = {room: self._rings[room]}
            for key in [k for k in self._cache if k[0] == room]:
                del self._cache[key]

    def clear(self, room: str) -> None:
        try:
            self.client.delete(board_key(self.prefix, room))
        except redis.RedisError as exc:
            log.warning("room=%s low-latency playlists not removed from Redis (they expire in %d s): %s", room,
                        LL_TTL_S, exc)  # fmt: skip
        self.forget(room)
