"""RedisSpool: objects S3 refused, kept in Redis until the room's owner uploads them (any instance).

One hash per room (storage key -> bytes), in the room's hash slot. A fleet-wide byte count bounds what the
spool may hold (`SPILLWAY_REDIS_SPOOL_MAX_BYTES`): past it ingest answers 503, so an S3 outage can never
fill Redis and take the journals (which live in the same Redis) down with it. Spooled bytes are as durable
as journal records (durability.py): the 201 waits for the same barrier.
"""

from __future__ import annotations

import logging

import redis

from origin.contract.cache_policy import ObjectHeaders
from origin.errors import UnavailableError
from origin.fleet.keys import DEFAULT_PREFIX, fleet_keys, redis_errors, room_keys
from origin.storage.base import Storage
from origin.storage.keys import validate_key

log = logging.getLogger(__name__)

# KEYS: room spool hash. ARGV: field, bytes. Returns the size change.
_PUT = """
local old = redis.call('HSTRLEN', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return string.len(ARGV[2]) - old
"""

# KEYS: room spool hash. ARGV: field. Returns the bytes removed.
_DELETE = """
local old = redis.call('HSTRLEN', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
return old
"""

# KEYS: room spool hash. Returns the bytes removed.
_DELETE_ALL = """
local n = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do n = n + string.len(v) end
redis.call('DEL', KEYS[1])
return n
"""


def _room_of(key: str) -> str:
    parts = validate_key(key).split("/")
    if len(parts) < 3 or parts[0] != "rooms":
        raise ValueError(f"not a room object key: {key!r}")
    return parts[1]


class RedisSpool:
    def __init__(self, client: redis.Redis[bytes], *, max_bytes: int, prefix: str = DEFAULT_PREFIX) -> None:
        self.client, self.prefix, self.max_bytes = client, prefix, max_bytes
        self._put, self._delete, self._delete_all = (client.register_script(s) for s in (_PUT, _DELETE, _DELETE_ALL))
        self._total = fleet_keys(prefix).spool_bytes

    def _hash(self, key: str) -> tuple[str, str]:
        room = _room_of(key)
        return room, room_keys(self.prefix, room).spool

    def put(self, key: str, data: bytes) -> None:
        room, spool = self._hash(key)
        with redis_errors("spool put", room):
            held = int(self.client.get(self._total) or 0)
            if held + len(data) > self.max_bytes:
                raise UnavailableError(f"the fleet's spool holds {held} bytes (limit {self.max_bytes}): storage has"
                                       " been failing too long", room=room)  # fmt: skip
            grown = int(self._put(keys=[spool], args=[key, data]))
            self.client.incrby(self._total, grown)

    def get(self, key: str) -> bytes:
        room, spool = self._hash(key)
        with redis_errors("spool get", room):
            data = self.client.hget(spool, key)
        if data is None:
            raise KeyError(key)
        return data

    def upload(self, key: str, storage: Storage, headers: ObjectHeaders) -> None:
        storage.put(key, self.get(key), headers)

    def delete(self, key: str) -> None:
        room, spool = self._hash(key)
        with redis_errors("spool delete", room):
            removed = int(self._delete(keys=[spool], args=[key]))
            if removed:
                self.client.decrby(self._total, removed)

    def delete_room(self, room: str) -> None:
        with redis_errors("spool delete", room):
            removed = int(self._delete_all(keys=[room_keys(self.prefix, room).spool]))
            if removed:
                self.client.decrby(self._total, removed)
        log.info("room=%s spool emptied (%d bytes)", room, removed)
