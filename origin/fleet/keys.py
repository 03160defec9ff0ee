"""Redis key names of the fleet, what a worker's Redis-backed parts share (`FleetMember`), and the one mapping of
Redis failures to StorageError.

Every key of a room carries the room in a hash tag (`{room}`), so a room's keys share one Redis Cluster slot
and its Lua scripts stay single-slot. The epoch counter is never deleted: fencing tokens must keep growing
across a room's deletion and re-creation, or a stale owner of the old broadcast could match a new one's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import KW_ONLY, dataclass

import redis

from origin.contract import ids
from origin.errors import StorageError

BACKEND = "redis"
DEFAULT_PREFIX = "spillway:"


@dataclass(frozen=True, kw_only=True)
class RoomKeys:
    journal: str  # list: one encoded record per element; offsets are list positions
    lock: str  # the short journal lock (SET NX PX, a random token)
    owner: str  # the ownership lease: "{epoch}|{worker}|{claim id}" with a TTL
    epoch: str  # INCR per new owner: the fencing token
    spool: str  # hash: storage key -> bytes waiting for S3
    spool_bytes: str  # counter: the bytes in `spool`, kept by the same scripts (exact, whatever is retried)
    board: str  # hash: the low-latency playlists, rendition (and rendition.skip) -> text (fleet/board.py)
    applied: str  # list: the ids of the last appends (a retried append finds its own and is not applied twice)


def room_keys(prefix: str, room: str) -> RoomKeys:
    base = f"{prefix}{{{ids.room_id(room)}}}"
    return RoomKeys(journal=f"{base}:journal", lock=f"{base}:lock", owner=f"{base}:owner", epoch=f"{base}:epoch",
                    spool=f"{base}:spool", spool_bytes=f"{base}:spool-bytes", board=f"{base}:ll",
                    applied=f"{base}:applied")  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class FleetKeys:
    journals: str  # set: the rooms that have a journal (Journal.rooms)
    spool_rooms: str  # set: the rooms whose spool may hold bytes (their counts add up to the fleet's)
    ring_prefix: str  # + a worker's name: the channel its doorbell listens on
    playlist_channel: str  # every worker listens: a room's low-latency playlists moved (held reloads re-check)


def fleet_keys(prefix: str) -> FleetKeys:
    return FleetKeys(journals=f"{prefix}journals", spool_rooms=f"{prefix}spool-rooms", ring_prefix=f"{prefix}ring:",
                     playlist_channel=f"{prefix}ll-moved")  # fmt: skip


@dataclass(eq=False)
class FleetMember:
    """One worker's handle on the fleet: the Redis client, the key prefix, and the worker's own name (the base of
    its lease keeper and its doorbell)."""

    client: redis.Redis[bytes]
    _: KW_ONLY
    prefix: str
    worker: str


@contextlib.contextmanager
def redis_errors(what: str, room: str) -> Iterator[None]:
    """Redis unreachable or failing → StorageError (503 at the HTTP edge; a pass retries)."""
    try:
        yield
    except redis.RedisError as exc:
        raise StorageError(f"{what} failed: {exc}", key=room, backend=BACKEND) from exc
