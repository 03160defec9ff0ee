"""Redis admission backend and room registry, for several origin instances sharing one Redis.

Per room, a sorted set of live leases scored by expiry (Unix s) and a sorted set of ended leases scored by
when they ended (kept GONE_RETENTION_S so a late heartbeat reads 410). Every mutation is one Lua script,
which Redis runs atomically: `admit` is ZCOUNT(live) → if < cap: move expired leases to `gone`
(ZRANGEBYSCORE + ZREMRANGEBYSCORE), ZADD. When the room is full the script stops after the ZCOUNT, so a
flood past the cap performs no writes. Keys carry the room in a hash tag (`{room}`), so one room's keys stay
on one Redis Cluster slot.

Time is the caller's `now` (not Redis TIME) so the contract tests can drive the clock; origin hosts must be
NTP-synchronised (see clock.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import redis

from origin.admission import backend as shared
from origin.admission.decision import GONE_RETENTION_S, AdmitResult, LeaseEndedError, LeaseNotFoundError
from origin.errors import StorageError
from origin.rooms import Room

logger = logging.getLogger(__name__)

BACKEND = "redis"
DEFAULT_PREFIX = "spillway:"
SOCKET_TIMEOUT_S = 2.0

# KEYS: leases, gone. ARGV: now, cap, lease, expires_at, gone_cutoff. Returns {admitted 0|1, live seats}.
_ADMIT = """
local live = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
if live >= tonumber(ARGV[2]) then
  return {0, live}
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('ZADD', KEYS[2], ARGV[1], id)
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
return {1, live + 1}
"""

# KEYS: leases, gone. ARGV: now, lease, new_expiry. Returns 1 renewed, 0 ended, -1 unknown.
_RENEW = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not score then
  if redis.call('ZSCORE', KEYS[2], ARGV[2]) then return 0 end
  return -1
end
if tonumber(score) <= tonumber(ARGV[1]) then
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[2])
return 1
"""

# KEYS: leases, gone. ARGV: now, lease. Returns 1 released, 0 already ended, -1 unknown.
_RELEASE = """
if redis.call('ZREM', KEYS[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
  return 1
end
if redis.call('ZSCORE', KEYS[2], ARGV[2]) then return 0 end
return -1
"""

# KEYS: claim. ARGV: now, interval_s, ttl_ms. Returns 1 when the caller may publish.
_CLAIM = """
local last = tonumber(redis.call('GET', KEYS[1]))
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
if last and last > now - interval and last <= now + interval then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""


class RedisAdmission:
    """`AdmissionBackend` on Redis (one client, thread-safe connection pool)."""

    name = BACKEND

    def __init__(
        self,
        client: redis.Redis[bytes],
        *,
        prefix: str = DEFAULT_PREFIX,
        gone_retention_s: float = GONE_RETENTION_S,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self._retention_s = gone_retention_s
        self._admit = client.register_script(_ADMIT)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._claim = client.register_script(_CLAIM)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX) -> RedisAdmission:
        return cls(connect(url), prefix=prefix)

    def _keys(self, room: str) -> list[str]:
        return [f"{self.prefix}{{{room}}}:leases", f"{self.prefix}{{{room}}}:gone"]

    def _hls_key(self, room: str, bucket: int) -> str:
        return f"{self.prefix}{{{room}}}:hls:{bucket}"

    @contextlib.contextmanager
    def _errors(self, what: str, room: str) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise StorageError(f"{what} failed: {exc}", key=room, backend=BACKEND) from exc

    def admit(self, room: str, *, lease: str, cap: int, now: float, lease_s: float) -> AdmitResult:
        expires_at = now + lease_s
        with self._errors("admit", room):
            reply: Any = self._admit(
                keys=self._keys(room), args=[repr(now), cap, lease, repr(expires_at), repr(now - self._retention_s)]
            )
        admitted, live = int(reply[0]), int(reply[1])
        if admitted:
            return AdmitResult(admitted=True, seats_taken=live, expires_at=expires_at)
        return AdmitResult(admitted=False, seats_taken=live)

    def renew(self, room: str, *, lease: str, now: float, lease_s: float) -> float:
        expires_at = now + lease_s
        with self._errors("renew", room):
            outcome = int(self._renew(keys=self._keys(room), args=[repr(now), lease, repr(expires_at)]))
        if outcome == 1:
            return expires_at
        if outcome == 0:
            raise LeaseEndedError(f"lease {lease} ended", room=room)
        raise LeaseNotFoundError(f"no lease {lease}", room=room)

    def release(self, room: str, *, lease: str, now: float) -> None:
        with self._errors("release", room):
            outcome = int(self._release(keys=self._keys(room), args=[repr(now), lease]))
        if outcome < 0:
            raise LeaseNotFoundError(f"no lease {lease}", room=room)

    def seats_taken(self, room: str, *, now: float) -> int:
        with self._errors("seats_taken", room):
            return int(self.client.zcount(self._keys(room)[0], f"({now!r}", "+inf"))

    def live_leases(self, room: str, *, now: float) -> list[str]:
        with self._errors("live_leases", room):
            members = self.client.zrangebyscore(self._keys(room)[0], f"({now!r}", "+inf")
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    def claim(self, room: str, *, task: str, now: float, interval_s: float) -> bool:
        ttl_ms = max(1, int(interval_s * 2000))
        key = f"{self.prefix}{{{room}}}:claim:{shared.task_name(task)}"
        with self._errors("claim", room):
            return int(self._claim(keys=[key], args=[repr(now), repr(interval_s), ttl_ms])) == 1

    def claim_publish(self, room: str, *, now: float, interval_s: float) -> bool:
        return self.claim(room, task=shared.PUBLISH_TASK, now=now, interval_s=interval_s)

    def add_hls_answers(self, room: str, *, now: float, count: int) -> None:
        if count <= 0:
            return
        key = self._hls_key(room, shared.hls_bucket(now))
        with self._errors("add_hls_answers", room):
            pipe = self.client.pipeline(transaction=False)
            pipe.incrby(key, count)
            pipe.expire(key, shared.HLS_BUCKET_TTL_S)
            pipe.execute()

    def hls_recent(self, room: str, *, now: float) -> int:
        keys = [self._hls_key(room, bucket) for bucket in shared.hls_window(now)]
        with self._errors("hls_recent", room):
            values = self.client.mget(keys)
        return sum(int(v) for v in values if v is not None)

    def check(self) -> None:
        with self._errors("check", "(ping)"):
            self.client.ping()

    def close(self) -> None:
        self.client.close()


class RedisRoomRegistry:
    """`origin.rooms.RoomRegistry` on Redis: one JSON string per room."""

    def __init__(self, client: redis.Redis[bytes], *, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix

    def _key(self, room_id: str) -> str:
        return f"{self.prefix}room:{room_id}"

    def get(self, room_id: str) -> Room | None:
        try:
            raw = self.client.get(self._key(room_id))
        except redis.RedisError as exc:
            raise StorageError(f"room get failed: {exc}", key=room_id, backend=BACKEND) from exc
        return None if raw is None else shared.room_from_json(raw, backend=BACKEND)

    def put(self, room: Room) -> None:
        try:
            self.client.set(self._key(room.id), shared.room_to_json(room))
        except redis.RedisError as exc:
            raise StorageError(f"room put failed: {exc}", key=room.id, backend=BACKEND) from exc
        self._index(lambda: self.client.sadd(self._ids_key, room.id), room.id)

    @property
    def _ids_key(self) -> str:
        return f"{self.prefix}rooms"

    def _index(self, op: Callable[[], object], room_id: str) -> None:
        try:
            op()
        except redis.RedisError as exc:
            raise StorageError(f"room index update failed: {exc}", key=room_id, backend=BACKEND) from exc

    def ids(self) -> list[str]:
        try:
            members = self.client.smembers(self._ids_key)
        except redis.RedisError as exc:
            raise StorageError(f"room list failed: {exc}", key="rooms", backend=BACKEND) from exc
        return sorted(m.decode() for m in members)

    def delete(self, room_id: str) -> bool:
        try:
            removed = int(self.client.delete(self._key(room_id)))
        except redis.RedisError as exc:
            raise StorageError(f"room delete failed: {exc}", key=room_id, backend=BACKEND) from exc
        self._index(lambda: self.client.srem(self._ids_key, room_id), room_id)
        return removed > 0


def connect(url: str) -> redis.Redis[bytes]:
    client: redis.Redis[bytes] = redis.Redis.from_url(
        url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=SOCKET_TIMEOUT_S, health_check_interval=30
    )
    return client
