"""Packs: the filesystem backend's small immutable objects (segments, parts, inits, filler) appended to one
file per writing process and directory, instead of a file each.

Why: a file per segment (≈ 900 a second on a busy host) made ext4's inode allocation the origin's largest
kernel cost — on a journal-less ext4 it skips every inode freed in the last minute, each checked through the
buffer cache, so a create cost 0.1–1.4 ms of CPU depending on what the machine had just deleted — and the
temp-file rename doubled it. An append to an open pack is one pwrite(2): 0.02 ms for a 14 KB segment.

A pack `{directory}/.~pack.{writer}` is a run of records (pack_records.py), each written with one pwrite.
Readers find a record once it is wholly in the file with its CRC matching: one that runs past the end is
still being written, or was torn by a crash (its writer was that process: nothing is appended after it). A
name resolves to its newest record across the directory's packs; a tombstone (flag 1, no data) deletes it.
Durability is the caller's: `durable=True` fdatasyncs the pack (and the directory for a new pack); otherwise
the group commit's syncfs covers it, like every other write.

Deletion of a directory's last object removes its packs. A writer appends under a shared flock and checks its
pack still has a link; the remover takes the exclusive flock before unlinking, so no record ever lands in an
unlinked pack.

`PackDirectory` is one directory's index (built by scanning, refreshed from where it stopped); `Packs` holds this
process's writers and indexes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from origin.contract.cache_policy import ObjectHeaders
from origin.storage.atomic_files import fsync_dir
from origin.storage.pack_records import (
    PACK_MAX_OBJECT_BYTES,
    PACK_PREFIX,
    Entry,
    PackError,
    encode_header,
    encode_record,
    is_pack,
    parse_header,
    scan,
)

WRITERS_KEPT = 2048  # open packs per process (directories written recently); a dropped one is reopened
INDEXES_KEPT = 1024  # directory indexes per process


@dataclass(kw_only=True)
class PackDirectory:
    """One directory's packed objects, as this process last scanned them. Hold `lock` around every use."""

    path: str
    entries: dict[str, Entry] = field(default_factory=dict)  # name -> newest record (tombstones included)
    scanned: dict[str, int] = field(default_factory=dict)  # pack file -> offset scanned up to
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self) -> None:
        """Read what was appended since the last scan, and packs that appeared (or went away)."""
        try:
            packs = [n for n in os.listdir(self.path) if is_pack(n)]
        except FileNotFoundError:
            packs = []
        if set(self.scanned) - set(packs):  # a pack was removed: start over
            self.entries.clear()
            self.scanned.clear()
        for pack in packs:
            try:
                fd = os.open(os.path.join(self.path, pack), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                size = os.fstat(fd).st_size
                start = self.scanned.get(pack, 0)
                if size <= start:
                    continue
                try:
                    found, self.scanned[pack] = scan(fd, start, size)
                except PackError:
                    self.scanned[pack] = size  # bytes that are not a record: nothing after them is read
                    continue
            finally:
                os.close(fd)
            for header, offset in found:
                self.add(Entry(name=header.name, pack=pack, offset=offset, length=header.length, crc=header.crc,
                               mtime_ns=header.mtime_ns, headers=header.headers, tombstone=header.tombstone))

    def add(self, entry: Entry) -> None:
        current = self.entries.get(entry.name)
        if current is None or entry.newer_than(current):
            self.entries[entry.name] = entry

    def live(self, name: str) -> Entry | None:
        entry = self.entries.get(name)
        return entry if entry is not None and not entry.tombstone else None

    def names(self) -> list[str]:
        return [n for n, e in self.entries.items() if not e.tombstone]

    def read(self, entry: Entry) -> bytes:
        fd = os.open(os.path.join(self.path, entry.pack), os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.pread(fd, entry.length, entry.offset)
        finally:
            os.close(fd)
        if len(data) != entry.length or zlib.crc32(data) != entry.crc:
            raise PackError(f"{entry.name}: record in {entry.pack} does not match its checksum")
        return data


@dataclass(kw_only=True)
class _Writer:
    directory: str
    name: str
    fd: int
    offset: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False

    def append(self, header: bytes, data: bytes) -> bool:
        """Append a record under the shared flock (hold `lock`); False when the pack lost its link (removed)."""
        fcntl.flock(self.fd, fcntl.LOCK_SH)
        try:
            if os.fstat(self.fd).st_nlink == 0:
                return False
            total = len(header) + len(data)
            written = os.pwritev(self.fd, [header, data], self.offset)  # one write, no joined copy
            if written < total:  # a short write (a full disk, a signal): the rest, then it is whole
                rest = memoryview(header + data)[written:]
                while rest:
                    n = os.pwrite(self.fd, rest, self.offset + total - len(rest))
                    rest = rest[n:]
            self.offset += total
            return True
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            os.close(self.fd)


class Packs:
    """This process's pack writers (one per directory it writes) and directory indexes. Thread-safe."""

    def __init__(self, *, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.writer_id = f"{os.getpid()}.{secrets.token_hex(4)}"
        self._clock_ns = clock_ns
        self._writers: OrderedDict[str, _Writer] = OrderedDict()
        self._indexes: OrderedDict[str, PackDirectory] = OrderedDict()
        self._guard = threading.Lock()

    # -- writing ------------------------------------------------------------------------------------------

    def put(self, directory: str, name: str, data: bytes, headers: ObjectHeaders, *, durable: bool,
            tombstone: bool = False) -> None:  # fmt: skip
        mtime_ns = self._clock_ns()
        crc = zlib.crc32(data)
        header = encode_header(name, len(data), crc, headers, mtime_ns, tombstone=tombstone)
        while True:
            writer, created = self._writer(directory)
            with writer.lock:
                if not writer.closed and writer.append(header, data):
                    if durable:
                        os.fdatasync(writer.fd)
                        if created:
                            fsync_dir(directory)
                    offset = writer.offset - len(data)
                    break
            if not writer.closed:  # its pack was removed (the directory's objects deleted): start a new one
                self._drop_writer(writer)
        index = self._index(directory, create=False)
        if index is not None:  # this process reads the directory too: it knows the record without a scan
            with index.lock:
                index.add(Entry(name=name, pack=writer.name, offset=offset, length=len(data), crc=crc,
                                mtime_ns=mtime_ns, headers=headers, tombstone=tombstone))  # fmt: skip

    def _writer(self, directory: str) -> tuple[_Writer, bool]:
        with self._guard:
            writer = self._writers.get(directory)
            if writer is not None:
                self._writers.move_to_end(directory)
                return writer, False
        name = f"{PACK_PREFIX}{self.writer_id}"
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)  # the same pack after an eviction
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        writer = _Writer(directory=directory, name=name, fd=fd, offset=os.fstat(fd).st_size)
        evicted: list[_Writer] = []
        with self._guard:
            existing = self._writers.get(directory)
            if existing is not None:  # another thread opened it meanwhile
                writer.close()
                return existing, False
            self._writers[directory] = writer
            while len(self._writers) > WRITERS_KEPT:
                evicted.append(self._writers.popitem(last=False)[1])
        for old in evicted:
            with old.lock:
                old.close()
        return writer, writer.offset == 0

    def _drop_writer(self, writer: _Writer) -> None:
        with self._guard:
            if self._writers.get(writer.directory) is writer:
                del self._writers[writer.directory]
        with writer.lock:
            writer.close()

    # -- reading ------------------------------------------------------------------------------------------

    def _index(self, directory: str, *, create: bool = True) -> PackDirectory | None:
        with self._guard:
            index = self._indexes.get(directory)
            if index is not None:
                self._indexes.move_to_end(directory)
            elif create:
                index = self._indexes[directory] = PackDirectory(path=directory)
                while len(self._indexes) > INDEXES_KEPT:
                    self._indexes.popitem(last=False)
            return index

    def find(self, directory: str, name: str) -> Entry | None:
        """The live record of `name` in `directory`; on a miss, what was appended since the last look is read."""
        index = self._index(directory)
        assert index is not None
        with index.lock:
            entry = index.live(name)
            if entry is None:
                index.refresh()
                entry = index.live(name)
            return entry

    def read(self, directory: str, entry: Entry) -> bytes:
        index = self._index(directory)
        assert index is not None
        return index.read(entry)

    def entries(self, directory: str) -> list[Entry]:
        """Every live record of `directory`, read afresh."""
        index = self._index(directory)
        assert index is not None
        with index.lock:
            index.refresh()
            return [e for e in index.entries.values() if not e.tombstone]

    def names(self, directory: str) -> list[str]:
        index = self._index(directory)
        assert index is not None
        with index.lock:
            index.refresh()
            return index.names()

    # -- deleting -----------------------------------------------------------------------------------------

    def delete(self, directory: str, name: str) -> None:
        """Delete `name` (a tombstone); once the directory's packs hold no live object, remove them."""
        if self.find(directory, name) is None:
            return
        self.put(directory, name, b"", _TOMBSTONE_HEADERS, durable=False, tombstone=True)
        if not self.names(directory):
            self.remove_all(directory)

    def remove_all(self, directory: str) -> None:
        """Unlink every pack of `directory`, each under its exclusive flock (writers then start anew)."""
        with self._guard:
            mine = self._writers.get(directory)
        if mine is not None:
            self._drop_writer(mine)
        try:
            packs = [n for n in os.listdir(directory) if is_pack(n)]
        except FileNotFoundError:
            packs = []
        for pack in packs:
            try:
                fd = os.open(os.path.join(directory, pack), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(directory, pack))
            finally:
                os.close(fd)
        with self._guard:
            self._indexes.pop(directory, None)

    def close(self) -> None:
        with self._guard:
            writers, self._writers = list(self._writers.values()), OrderedDict()
        for writer in writers:
            with writer.lock:
                writer.close()


_TOMBSTONE_HEADERS = ObjectHeaders(content_type="", cache_control="")


__all__ = ["PACK_MAX_OBJECT_BYTES", "Entry", "PackDirectory", "PackError", "Packs", "encode_record", "is_pack",
           "parse_header"]  # fmt: skip
