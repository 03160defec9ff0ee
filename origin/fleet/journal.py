"""RedisJournal: the room journal of docs/origin.md shared by every instance of a fleet.

A room's journal is a Redis list, one encoded record (records.py) per element; an offset is a list position,
so `read` is one LRANGE of what was appended since. `append` is one Lua call that checks, atomically with
the RPUSH: that the journal lock this process holds is still its own (a holder paused past the lock's TTL
is refused instead of appending out of order), and for an owner's decisions that the fencing token is the
room's newest epoch (OwnershipLostError otherwise), and that the append's random id is not among the room's
last ones (a retry of an append that landed: nothing appended twice). Records are durable as Redis makes them:
its own persistence, plus the barrier in durability.py.

`locked` is a short lock across instances: SET NX PX with a random token, polled while another holder has
it (they hold it for a few round trips), released with a compare-and-delete. Taking it also reads the
journal's length: every append happens under the lock, so while it is held this process knows the length,
and a read from there costs no round trip (each one costs an fsync wait with `appendfsync always`).
`try_own` hands out leases (lease.py); a room found owned elsewhere is not asked again until that owner's
lease would run out.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence

import redis

from origin.broadcast.journal.base import Ownership, RoomLocks
from origin.broadcast.records import JournalError, Record, decode, encode
from origin.errors import OwnershipLostError, UnavailableError
from origin.fleet.keys import DEFAULT_PREFIX, fleet_keys, redis_errors, room_keys
from origin.fleet.lease import LeaseKeeper, RedisOwnership

log = logging.getLogger(__name__)

LOCK_TTL_S = 2.0  # a holder paused longer than this loses the lock (its append is refused)
LOCK_WAIT_S = 5.0  # waiting longer than this for a room's lock answers 503
_POLL_FIRST_S, _POLL_MAX_S = 0.0005, 0.002
# Append ids remembered per room: far more than the appends of one retry window (redis-py's retries last ~3 s).
_APPLIED_KEPT, _APPLIED_TTL_MS = 256, 60_000

# KEYS: lock, journal. ARGV: token, ttl ms. Returns the journal's length once the lock is ours, else -1.
# Already ours: a retry of a call whose answer was lost (redis-py retries on connection errors).
_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] or redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('LLEN', KEYS[2])
end
return -1
"""

# KEYS: journal, lock, epoch, applied. ARGV: append id, lock token or '', fence token or '', records...
# Returns the new length, -1 when the lock is no longer ours, -2 when the fence token is not the room's newest
# epoch. An append whose id is among the last ones applied returns the length and appends nothing: redis-py
# retries a call whose answer was lost (Redis restarting), and neither a second copy nor a -1 after the first
# copy landed may follow (ingest would then delete an object its journal names).
_APPEND = """
if redis.call('LPOS', KEYS[4], ARGV[1]) then return redis.call('LLEN', KEYS[1]) end
if ARGV[2] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[2] then return -1 end
if ARGV[3] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[3] then return -2 end
local length = redis.call('RPUSH', KEYS[1], unpack(ARGV, 4))
redis.call('LPUSH', KEYS[4], ARGV[1])
redis.call('LTRIM', KEYS[4], 0, APPLIED_KEPT - 1)
redis.call('PEXPIRE', KEYS[4], APPLIED_TTL_MS)
return length
"""

# KEYS: journal, epoch. ARGV: fence token or '', records... Returns 1, or -2 when fenced out.
_REPLACE = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return -2 end
redis.call('DEL', KEYS[1])
if #ARGV > 1 then redis.call('RPUSH', KEYS[1], unpack(ARGV, 2)) end
return 1
"""

# KEYS: lock. ARGV: token.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisJournal:
    name = "redis"

    def __init__(
        self, client: redis.Redis[bytes], *, worker: str, prefix: str = DEFAULT_PREFIX, lease_s: float = 2.0,
        sync: Callable[[], None] = lambda: None, lock_ttl_s: float = LOCK_TTL_S, lock_wait_s: float = LOCK_WAIT_S,
    ) -> None:  # fmt: skip
        self.client = client
        self.prefix = prefix
        self.worker = worker
        self._journals = fleet_keys(prefix).journals
        self.leases = LeaseKeeper(client, prefix=prefix, worker=worker, lease_s=lease_s, on_release=self.note_released)
        self._sync = sync
        self._lock_ttl_ms = int(lock_ttl_s * 1000)
        self._lock_wait_s = lock_wait_s
        self._append = client.register_script(
            _APPEND.replace("APPLIED_KEPT", str(_APPLIED_KEPT)).replace("APPLIED_TTL_MS", str(_APPLIED_TTL_MS)))
        self._replace = client.register_script(_REPLACE)
        self._unlock = client.register_script(_UNLOCK)
        self._lock = client.register_script(_LOCK)
        self._room_lock = RoomLocks()
        self._held: dict[str, str] = {}  # room -> token of the journal lock this process holds
        self._length: dict[str, int] = {}  # room -> its journal's length, while this process holds the lock
        self._indexed: set[str] = set()  # rooms this process knows are in the journals set
        self._elsewhere: dict[str, float] = {}  # room -> monotonic time its current owner's lease runs out

    def rooms(self) -> list[str]:
        with redis_errors("rooms", "(all)"):
            return sorted(m.decode() for m in self.client.smembers(self._journals))

    def exists(self, room: str) -> bool:
        with redis_errors("exists", room):
            return bool(self.client.exists(room_keys(self.prefix, room).journal))

    def read(self, room: str, offset: int) -> tuple[list[Record], int]:
        if room in self._held and self._length.get(room) == offset:
            return [], offset  # nobody else can append while we hold the lock
        with redis_errors("read", room):
            raw = self.client.lrange(room_keys(self.prefix, room).journal, offset, -1)
        records: list[Record] = []
        for line in raw:
            try:
                records.append(decode(line))
            except JournalError as exc:  # not ours (or a bug): skip it, as the file journal skips a torn line
                log.error("room=%s journal: skipping an unreadable record: %s", room, exc)
        return records, offset + len(raw)

    def append(self, room: str, records: Sequence[Record], *, fence: Ownership | None = None) -> None:
        if not records:
            return
        keys = room_keys(self.prefix, room)
        lines = [encode(r)[:-1] for r in records]
        fence_arg = str(fence.token) if fence is not None else ""
        with redis_errors("append", room):
            if room not in self._indexed:  # first: a failure here has appended nothing
                self.client.sadd(self._journals, room)
                self._indexed.add(room)
            args = [secrets.token_hex(8), self._held.get(room, ""), fence_arg, *lines]
            length = int(self._append(keys=[keys.journal, keys.lock, keys.epoch, keys.applied], args=args))
            if length > 0 and room in self._held:
                self._length[room] = length
        self._refused(room, length, fence)

    def _refused(self, room: str, result: int, fence: Ownership | None) -> None:
        if result == -1:
            raise UnavailableError("the room's journal lock ran out while held (a pause longer than its TTL): "
                                   "refused, retry", room=room)  # fmt: skip
        if result == -2:
            token = fence.token if fence is not None else 0
            if isinstance(fence, RedisOwnership):
                self.leases.superseded(fence)
            raise OwnershipLostError(f"owner token {token} superseded: append refused", room=room)

    @contextlib.contextmanager
    def locked(self, room: str) -> Iterator[None]:
        # The thread lock first: this process's threads queue locally instead of polling Redis.
        with self._room_lock(room):
            keys = room_keys(self.prefix, room)
            token, self._length[room] = self._acquire(room, keys.lock, keys.journal)
            self._held[room] = token
            try:
                yield
            finally:
                del self._held[room]
                self._length.pop(room, None)
                try:
                    self._unlock(keys=[keys.lock], args=[token])
                except redis.RedisError as exc:  # it expires by itself
                    log.warning("room=%s journal unlock failed (expires in %d ms): %s", room, self._lock_ttl_ms, exc)

    def _acquire(self, room: str, lock: str, journal: str) -> tuple[str, int]:
        """(the lock's token, the journal's length)."""
        token = secrets.token_hex(8)
        deadline = time.monotonic() + self._lock_wait_s
        delay = _POLL_FIRST_S
        while True:
            with redis_errors("lock", room):
                length = int(self._lock(keys=[lock, journal], args=[token, self._lock_ttl_ms]))
            if length >= 0:
                return token, length
            if time.monotonic() >= deadline:
                raise UnavailableError(f"room journal busy for {self._lock_wait_s:g} s", room=room)
            time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX_S)

    def try_own(self, room: str) -> RedisOwnership | None:
        if time.monotonic() < self._elsewhere.get(room, 0.0):
            return None  # its owner's lease cannot have run out yet: no round trip
        ownership, remaining_s = self.leases.claim(room)
        if ownership is None:
            self._elsewhere[room] = time.monotonic() + remaining_s
            return None
        self._elsewhere.pop(room, None)
        return ownership

    def signature(self, room: str) -> object:
        """The journal's first record: a room deleted and broadcast anew has another (per-room metrics)."""
        with redis_errors("signature", room):
            return self.client.lindex(room_keys(self.prefix, room).journal, 0)

    def lease_remaining(self, room: str) -> float | None:
        """Seconds until the lease this process last found on the room runs out (None: it knows of none)."""
        until = self._elsewhere.get(room)
        return None if until is None else max(0.0, until - time.monotonic())

    def note_released(self, room: str) -> None:
        """This process released the room: it may be taken again at once."""
        self._elsewhere.pop(room, None)

    def sync(self) -> None:
        self._sync()

    def replace(self, room: str, records: Sequence[Record], *, fence: Ownership | None = None) -> None:
        keys = room_keys(self.prefix, room)
        lines = [encode(r)[:-1] for r in records]
        with redis_errors("replace", room):
            result = int(self._replace(keys=[keys.journal, keys.epoch],
                                       args=[str(fence.token) if fence is not None else "", *lines]))  # fmt: skip
        self._refused(room, result, fence)

    def delete(self, room: str) -> None:
        keys = room_keys(self.prefix, room)
        with redis_errors("delete", room):
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(keys.journal, keys.lock, keys.owner, keys.applied)  # the epoch stays: tokens keep growing
            pipe.srem(self._journals, room)
            pipe.execute()
        self._indexed.discard(room)
        self._elsewhere.pop(room, None)

    def close(self) -> None:
        self.leases.close()
