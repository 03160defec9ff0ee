"""Ownership leases with fencing tokens: one publisher per room across the fleet.

`claim` is one Lua call: if the room's owner key is free, INCR the room's epoch (the fencing token) and SET
the owner key to "{epoch}|{worker}|{claim id}" with the lease as TTL; otherwise report the owner's remaining
TTL. The keeper thread renews every lease of this process every lease/4, in one pipelined round trip. A renewal also
re-takes a lapsed lease when nobody took the room since (the epoch is still ours), so a Redis outage or a
pause moves a room only if another worker took it meanwhile.

`lost` is true once another owner took the room, or when no renewal succeeded for a whole lease length (then
a successor may exist: stop, and claim again). That is the lease as read; the writes are fenced where they
happen: journal appends carry the token and Lua refuses one that is not the room's newest epoch, and
playlist writes call `verify` (a renewal, now) after observing an object's ETag (fencing.py).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from origin.errors import OwnershipLostError
from origin.fleet.keys import FleetMember, redis_errors, room_keys

log = logging.getLogger(__name__)

# KEYS: owner, epoch. ARGV: "|{worker}|{claim id}", lease ms. Returns {1, value, epoch} taken, {0, value, pttl ms}
# held elsewhere. The value is "{epoch}|{worker}|{claim id}". A value ending with this call's own suffix is this
# call's earlier run, whose answer was lost (redis-py retries a call when Redis restarts): taken, not "elsewhere"
# (which would leave the room unpublished until the lease ran out). Any other claim has another id.
_CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur then
  if string.sub(cur, -string.len(ARGV[1])) == ARGV[1] then
    return {1, cur, tonumber(string.match(cur, '^(%d+)|'))}
  end
  return {0, cur, redis.call('PTTL', KEYS[1])}
end
local epoch = redis.call('INCR', KEYS[2])
local value = epoch .. ARGV[1]
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {1, value, epoch}
"""

# KEYS: owner, epoch. ARGV: value, token, lease ms. Returns 1 held (renewed or re-taken), 0 another owner's.
_RENEW = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if not cur and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0
"""

# KEYS: owner. ARGV: value. Deletes the lease only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisOwnership:
    def __init__(self, keeper: LeaseKeeper, *, room: str, token: int, value: str, renewed_at: float) -> None:
        self.room = room
        self.token = token
        self.value = value
        self.renewed_at = renewed_at  # local monotonic time before the last successful claim or renewal
        self.taken = False  # another owner holds the room: lost for good
        self.released = False
        self._keeper = keeper

    @property
    def lost(self) -> bool:
        return self.taken or self.released or self._keeper.clock() - self.renewed_at >= self._keeper.lease_s

    def verify(self) -> None:
        """Renew now; raise OwnershipLostError if another owner took the room (StorageError: Redis failed)."""
        self._keeper.verify(self)

    def release(self) -> None:
        self._keeper.release(self)


@dataclass(eq=False, kw_only=True)
class LeaseKeeper(FleetMember):
    lease_s: float
    clock: Callable[[], float] = time.monotonic
    on_release: Callable[[str], None] = lambda room: None

    def __post_init__(self) -> None:
        self._lease_ms = int(self.lease_s * 1000)
        self._claim = self.client.register_script(_CLAIM)
        self._renew = self.client.register_script(_RENEW)
        self._release = self.client.register_script(_RELEASE)
        self._held: dict[str, RedisOwnership] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def claim(self, room: str) -> tuple[RedisOwnership | None, float]:
        """(the new ownership, 0) — or (None, seconds the current owner's lease still runs)."""
        keys = room_keys(self.prefix, room)
        started = self.clock()
        with redis_errors("claim", room):
            taken, value, extra = self._claim(keys=[keys.owner, keys.epoch],
                                              args=[f"|{self.worker}|{secrets.token_hex(4)}", self._lease_ms])
        if not int(taken):
            return None, max(0, int(extra)) / 1000
        ownership = RedisOwnership(self, room=room, token=int(extra), value=value.decode(), renewed_at=started)
        with self._lock:
            self._held[room] = ownership
        self._ensure_thread()
        return ownership, 0.0

    def _renew_args(self, o: RedisOwnership) -> tuple[list[str], list[object]]:
        keys = room_keys(self.prefix, o.room)
        return [keys.owner, keys.epoch], [o.value, o.token, self._lease_ms]

    def _renewed(self, o: RedisOwnership, held: int, started: float) -> None:
        if held:
            o.renewed_at = max(o.renewed_at, started)
        else:
            self.superseded(o)

    def superseded(self, o: RedisOwnership) -> None:
        """Another owner took the room (a renewal or a fenced write said so): stop renewing, for good."""
        o.taken = True
        with self._lock:
            if self._held.get(o.room) is o:
                del self._held[o.room]
        log.warning("room=%s lease (owner token %d) taken by another worker", o.room, o.token)

    def verify(self, o: RedisOwnership) -> None:
        if o.taken or o.released:
            raise OwnershipLostError(f"owner token {o.token} no longer holds the room", room=o.room)
        started = self.clock()
        keys, args = self._renew_args(o)
        with redis_errors("lease check", o.room):
            held = int(self._renew(keys=keys, args=args))
        self._renewed(o, held, started)
        if not held:
            raise OwnershipLostError(f"owner token {o.token} superseded", room=o.room)

    def renew_all(self) -> None:
        with self._lock:
            held = list(self._held.values())
        if not held:
            return
        started = self.clock()
        pipe = self.client.pipeline(transaction=False)
        for o in held:
            keys, args = self._renew_args(o)
            self._renew(keys=keys, args=args, client=pipe)
        try:
            results = pipe.execute()
        except redis.RedisError as exc:  # leases run out on their own; `lost` says so after a lease length
            log.warning("lease renewal of %d room(s) failed: %s", len(held), exc)
            return
        for o, held_now in zip(held, results, strict=True):
            self._renewed(o, int(held_now), started)

    def release(self, o: RedisOwnership) -> None:
        if o.released:
            return
        o.released = True
        with self._lock:
            if self._held.get(o.room) is o:
                del self._held[o.room]
        if o.taken:
            return
        self.on_release(o.room)
        try:
            self._release(keys=[room_keys(self.prefix, o.room).owner], args=[o.value])
        except redis.RedisError as exc:  # the lease lapses by itself
            log.warning("room=%s lease release failed (it lapses in %.1f s): %s", o.room, self.lease_s, exc)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                self.renew_all()
            except Exception:  # the keeper must outlive any bug in one round
                log.exception("lease renewal round failed")

    def stop(self) -> None:
        """No more renewals (the leases run out by themselves)."""
        self._stop.set()

    def close(self) -> None:
        self.stop()
        with self._lock:
            held = list(self._held.values())
        for o in held:
            o.release()
