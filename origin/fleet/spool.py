"""RedisSpool: objects S3 refused, kept in Redis until the room's owner uploads them (any instance).

One hash per room (storage key -> bytes), in the room's hash slot, with the room's byte count beside it. A
fleet-wide bound on what the spool may hold (`SPILLWAY_REDIS_SPOOL_MAX_BYTES`): past it ingest answers 503, so
an S3 outage can never fill Redis and take the journals (which live in the same Redis) down with it. Spooled
bytes are as durable as journal records (durability.py): the 201 waits for the same barrier.

Counting. Each room's count changes in the same script as its hash, so it is exact even when redis-py retries a
script whose answer was lost (the rerun changes nothing and adds nothing). Until 2026-12-08 a fleet-wide counter
was moved by a separate INCRBY after the script: a lost answer counted a put twice or not at all, and the
drift never healed (a cap that only ever shrank would have refused every spool put for good). A fleet counter
cannot move in the room's script (another Redis Cluster slot), so the fleet's total is the sum of the rooms'
counts (the rooms listed in a fleet set), read at most once a second per instance and again before refusing:
a refusal is always exact; between two reads other instances may take the spool past the cap by what they put
in that second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from origin.contract.cache_policy import ObjectHeaders
from origin.errors import UnavailableError
from origin.fleet.keys import DEFAULT_PREFIX, fleet_keys, redis_errors, room_keys
from origin.storage.base import Storage
from origin.storage.keys import validate_key

log = logging.getLogger(__name__)

REFRESH_S = 1.0  # how old this instance's reading of the fleet's total may be

# KEYS: room spool hash, room byte count. ARGV: field, bytes. Returns the room's new count.
_PUT = """
local old = redis.call('HSTRLEN', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('INCRBY', KEYS[2], string.len(ARGV[2]) - old)
"""

# KEYS: room spool hash, room byte count. ARGV: field. Returns the room's new count.
_DELETE = """
local old = redis.call('HSTRLEN', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
if old == 0 then return tonumber(redis.call('GET', KEYS[2]) or '0') end
return redis.call('DECRBY', KEYS[2], old)
"""


def _room_of(key: str) -> str:
    parts = validate_key(key).split("/")
    if len(parts) < 3 or parts[0] != "rooms":
        raise ValueError(f"not a room object key: {key!r}")
    return parts[1]


class RedisSpool:
    def __init__(
        self, client: redis.Redis[bytes], *, max_bytes: int, prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.client, self.prefix, self.max_bytes = client, prefix, max_bytes
        self._put, self._delete = client.register_script(_PUT), client.register_script(_DELETE)
        self._rooms = fleet_keys(prefix).spool_rooms
        self._clock = clock
        self._lock = threading.Lock()  # guards the reading below (ingest threads put concurrently)
        self._total, self._read_at, self._added = 0, float("-inf"), 0  # fleet total, when read, put since

    def _keys(self, key: str) -> tuple[str, str, str]:
        room = _room_of(key)
        keys = room_keys(self.prefix, room)
        return room, keys.spool, keys.spool_bytes

    def held(self, *, fresh: bool = False) -> int:
        """The fleet's spooled bytes: the last reading (at most REFRESH_S old, or read now) + this instance's
        puts since."""
        with self._lock:
            if fresh or self._clock() - self._read_at >= REFRESH_S:
                rooms = sorted(r.decode() for r in self.client.smembers(self._rooms))
                pipe = self.client.pipeline(transaction=False)
                for room in rooms:
                    pipe.get(room_keys(self.prefix, room).spool_bytes)
                self._total = sum(int(n or 0) for n in pipe.execute())
                self._read_at, self._added = self._clock(), 0
            return self._total + self._added

    def put(self, key: str, data: bytes) -> None:
        room, spool, count = self._keys(key)
        with redis_errors("spool put", room):
            held = self.held()
            if held + len(data) > self.max_bytes:
                held = self.held(fresh=True)  # refuse only on a fresh reading
            if held + len(data) > self.max_bytes:
                raise UnavailableError(f"the fleet's spool holds {held} bytes (limit {self.max_bytes}): storage has"
                                       " been failing too long", room=room)  # fmt: skip
            self.client.sadd(self._rooms, room)  # before the bytes, so no reading misses them
            self._put(keys=[spool, count], args=[key, data])
            with self._lock:
                self._added += len(data)

    def get(self, key: str) -> bytes:
        room, spool, _ = self._keys(key)
        with redis_errors("spool get", room):
            data = self.client.hget(spool, key)
        if data is None:
            raise KeyError(key)
        return data

    def upload(self, key: str, storage: Storage, headers: ObjectHeaders) -> None:
        storage.put(key, self.get(key), headers)

    def delete(self, key: str) -> None:
        room, spool, count = self._keys(key)
        with redis_errors("spool delete", room):
            self._delete(keys=[spool, count], args=[key])

    def delete_room(self, room: str) -> None:
        keys = room_keys(self.prefix, room)
        with redis_errors("spool delete", room):
            removed = int(self.client.get(keys.spool_bytes) or 0)
            self.client.delete(keys.spool, keys.spool_bytes)
            self.client.srem(self._rooms, room)
        log.info("room=%s spool emptied (%d bytes)", room, removed)
