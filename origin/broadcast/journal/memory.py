"""In-memory journal: the twin of FileJournal for unit tests (same semantics, one process).

Ownership carries fencing tokens like the Redis journal's leases: `expire(room)` plays a lapsed lease, so
unit tests can make a successor while the first owner still holds its `Ownership`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

from origin.broadcast.journal.base import Ownership
from origin.broadcast.records import Record, decode, encode_all
from origin.errors import OwnershipLostError


class MemoryOwnership:
    def __init__(self, journal: MemoryJournal, room: str, token: int) -> None:
        self.room = room
        self.token = token
        self._journal = journal

    @property
    def lost(self) -> bool:
        return self._journal.epochs.get(self.room) != self.token or self.room not in self._journal.owners

    def release(self) -> None:
        if not self.lost:
            self._journal.owners.discard(self.room)


class MemoryJournal:
    name = "memory"

    def __init__(self) -> None:
        self.data: dict[str, bytearray] = {}
        self.owners: set[str] = set()
        self.epochs: dict[str, int] = {}  # room -> token of its newest owner (never reset: fences stay ordered)
        self.syncs = 0
        self._lock = threading.RLock()

    def rooms(self) -> list[str]:
        return sorted(self.data)

    def exists(self, room: str) -> bool:
        return room in self.data

    def read(self, room: str, offset: int) -> tuple[list[Record], int]:
        with self._lock:
            raw = bytes(self.data.get(room, b"")[offset:])
        return [decode(line) for line in raw.splitlines()], offset + len(raw)

    def _check_fence(self, room: str, fence: Ownership | None) -> None:
        if fence is not None and self.epochs.get(room) != fence.token:
            raise OwnershipLostError(f"owner token {fence.token} superseded", room=room)

    def append(self, room: str, records: Sequence[Record], *, fence: Ownership | None = None) -> None:
        # Encoded and decoded like the file journal, so tests catch a record that does not round-trip.
        with self._lock:
            self._check_fence(room, fence)
            self.data.setdefault(room, bytearray()).extend(encode_all(records))

    @contextlib.contextmanager
    def locked(self, room: str) -> Iterator[None]:
        with self._lock:
            yield

    def try_own(self, room: str) -> MemoryOwnership | None:
        with self._lock:
            if room in self.owners:
                return None
            self.owners.add(room)
            self.epochs[room] = self.epochs.get(room, 0) + 1
            return MemoryOwnership(self, room, self.epochs[room])

    def expire(self, room: str) -> None:
        """The owner's lease lapsed (it was paused): the next `try_own` succeeds with a larger token."""
        with self._lock:
            self.owners.discard(room)

    def sync(self) -> None:
        self.syncs += 1

    def replace(self, room: str, records: Sequence[Record], *, fence: Ownership | None = None) -> None:
        with self._lock:
            self._check_fence(room, fence)
            self.data[room] = bytearray(encode_all(records))

    def delete(self, room: str) -> None:
        with self._lock:
            self.data.pop(room, None)
