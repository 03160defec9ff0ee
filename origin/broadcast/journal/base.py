"""The narrow interface of a room journal, shared by every backend (tests/origin/broadcast/test_journal.py).

Semantics:
- `append` adds records at the end, atomically per call, visible to every reader at once; durable after
  the next `sync()` (group commit). Records of one `append` are never interleaved with another's.
- `read(room, offset)` returns the complete records after `offset` and the offset to read from next.
- `locked(room)` is a short exclusive section across threads and processes: ingest checks the state and
  appends under it, and the publisher decides and appends under it, so a decision (a seal) and an arrival
  (a late PUT of the sealed session) are always ordered, never interleaved.
- `try_own(room)` makes this process the room's one publisher until `Ownership.release()` or its death
  (or, with leases, until the lease lapses and another process takes the room). Every new owner of a room
  gets a larger `Ownership.token`; an append (or replace) passed `fence=ownership` is refused with
  OwnershipLostError once a later owner exists, so a paused owner that wakes up cannot write decisions
  over its successor's.
- `replace(room, records)` swaps the whole journal at once (only for an ended room, by its owner): a reader
  that held the old one keeps reading it; new readers get the new one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from origin.broadcast.records import Record


class Ownership(Protocol):
    room: str
    token: int  # fencing token: larger for every later owner of the room (0 where the backend needs none)

    @property
    def lost(self) -> bool:
        """Another process may own the room now (lease lapsed or taken): stop publishing, claim it again."""
        ...

    def release(self) -> None: ...


class Journal(Protocol):
    name: str

    def rooms(self) -> list[str]: ...

    def exists(self, room: str) -> bool: ...

    def read(self, room: str, offset: int) -> tuple[list[Record], int]: ...

    def append(self, room: str, records: Sequence[Record], *, fence: Ownership | None = None) -> None: ...

    def locked(self, room: str) -> AbstractContextManager[None]: ...

    def try_own(self, room: str) -> Ownership | None: ...

    def sync(self) -> None: ...

    def delete(self, room: str) -> None: ...

    def replace(self, room: str, records: Sequence[Record], *, fence: Ownership | None = None) -> None:
        """Atomically make `records` the room's whole journal (retention compaction of an ended room)."""
        ...


class RoomLocks:
    """One thread lock per room, made on first use: a room's work in this process queues here first."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, room: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(room)
            if lock is None:
                lock = self._locks[room] = threading.Lock()
            return lock
