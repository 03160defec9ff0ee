"""File journals: `{state_dir}/rooms/{room}/journal.jsonl`, one per room, shared by the host's workers.

Appends are single `write(2)` calls on an O_APPEND descriptor, so records of concurrent writers never
interleave; a torn tail line (a crash mid-write) is closed with a newline before the next append and
skipped by readers with an error log. Durability comes from `sync()` (syncfs of the state filesystem),
which the group commit runs for many appends at once.

`locked` is an flock on the journal (plus a thread lock: flock is per open file, shared by this process's
threads); ownership is an flock on `owner.lock` that the kernel drops if the owner dies. The kernel keeps a
paused owner's flock, so no successor can exist while it lives: fences need no token here (always 0).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path

from origin.broadcast.journal.base import Ownership, RoomLocks
from origin.broadcast.records import JournalError, Record, decode, encode_all
from origin.contract import ids
from origin.storage.atomic_files import syncfs

log = logging.getLogger(__name__)

JOURNAL_NAME = "journal.jsonl"
OWNER_LOCK_NAME = "owner.lock"
OPEN_JOURNALS = 4096  # descriptors kept open per process (a room's journal is read on every PUT)
READ_CHUNK = 1 << 20


class FileOwnership:
    token = 0
    lost = False

    def __init__(self, room: str, fd: int) -> None:
        self.room = room
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class FileJournal:
    name = "files"

    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir) / "rooms"
        self.root.mkdir(parents=True, exist_ok=True)
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._fds_lock = threading.Lock()
        self._room_lock = RoomLocks()
        self._checked_tail: set[str] = set()

    def room_dir(self, room: str) -> Path:
        return self.root / ids.room_id(room)

    def rooms(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / JOURNAL_NAME).exists())

    def exists(self, room: str) -> bool:
        return (self.room_dir(room) / JOURNAL_NAME).exists()

    def _fd(self, room: str, *, create: bool) -> int | None:
        with self._fds_lock:
            fd = self._fds.get(room)
            if fd is not None:
                self._fds.move_to_end(room)
                return fd
        path = self.room_dir(room) / JOURNAL_NAME
        if not create and not path.exists():
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        with self._fds_lock:
            if room in self._fds:  # another thread opened it meanwhile
                os.close(fd)
                return self._fds[room]
            self._fds[room] = fd
            while len(self._fds) > OPEN_JOURNALS:
                _, old = self._fds.popitem(last=False)
                os.close(old)
        return fd

    def read(self, room: str, offset: int) -> tuple[list[Record], int]:
        fd = self._fd(room, create=False)
        if fd is None:
            return [], 0
        size = os.fstat(fd).st_size
        records: list[Record] = []
        while offset < size:
            chunk = os.pread(fd, min(READ_CHUNK, size - offset), offset)
            end = chunk.rfind(b"\n")
            if end < 0:
                if len(chunk) == READ_CHUNK:
                    raise JournalError(f"journal line longer than {READ_CHUNK} bytes at offset {offset}")
                break  # a record being written right now (or a torn tail): read it next time
            for line in chunk[: end + 1].splitlines():
                try:
                    records.append(decode(line))
                except JournalError as exc:
                    log.error("room=%s journal: skipping an unreadable record: %s", room, exc)
            offset += end + 1
        return records, offset

    def append(self, room: str, records: Sequence[Record], *, fence: Ownership | None = None) -> None:
        if not records:
            return
        fd = self._fd(room, create=True)
        assert fd is not None
        if room not in self._checked_tail:
            self._close_torn_tail(fd)
            self._checked_tail.add(room)
        data = encode_all(records)
        written = os.write(fd, data)
        if written != len(data):  # a regular file short-writes only when the disk is full
            raise OSError(f"short journal write ({written} of {len(data)} bytes)")

    @staticmethod
    def _close_torn_tail(fd: int) -> None:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")

    @contextlib.contextmanager
    def locked(self, room: str) -> Iterator[None]:
        fd = self._fd(room, create=True)
        assert fd is not None
        with self._room_lock(room):
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def try_own(self, room: str) -> FileOwnership | None:
        path = self.room_dir(room) / OWNER_LOCK_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for operators: which worker publishes the room
        return FileOwnership(room, fd)

    def sync(self) -> None:
        syncfs(self.root)

    def replace(self, room: str, records: Sequence[Record], *, fence: Ownership | None = None) -> None:
        path = self.room_dir(room) / JOURNAL_NAME
        tmp = path.with_name(f".{JOURNAL_NAME}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(encode_all(records))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        with self._fds_lock:
            fd = self._fds.pop(room, None)
        if fd is not None:
            os.close(fd)  # this process reopens the new file; others keep the old one until they do

    def delete(self, room: str) -> None:
        with self._fds_lock:
            fd = self._fds.pop(room, None)
        if fd is not None:
            os.close(fd)
        self._checked_tail.discard(room)
        shutil.rmtree(self.room_dir(room), ignore_errors=True)
