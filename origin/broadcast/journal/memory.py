"""In-memory journal: the twin of FileJournal for unit tests (same semantics, one process)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

from origin.broadcast.records import Record, decode, encode_all


class MemoryOwnership:
    def __init__(self, journal: MemoryJournal, room: str) -> None:
        self.room = room
        self._journal = journal

    def release(self) -> None:
        self._journal.owners.discard(self.room)


class MemoryJournal:
    name = "memory"

    def __init__(self) -> None:
        self.data: dict[str, bytearray] = {}
        self.owners: set[str] = set()
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

    def append(self, room: str, records: Sequence[Record]) -> None:
        # Encoded and decoded like the file journal, so tests catch a record that does not round-trip.
        with self._lock:
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
            return MemoryOwnership(self, room)

    def sync(self) -> None:
        self.syncs += 1

    def replace(self, room: str, records: Sequence[Record]) -> None:
        with self._lock:
            self.data[room] = bytearray(encode_all(records))

    def delete(self, room: str) -> None:
        with self._lock:
            self.data.pop(room, None)
