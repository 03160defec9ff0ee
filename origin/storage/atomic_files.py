"""Atomic file primitives of the filesystem backend (and the low-latency board): write-then-rename, the
two-inode rewrite of small objects, create-if-absent, syncfs. Readers see the old bytes or the new, never a mix.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import itertools
import os
import threading
from pathlib import Path

INTERNAL_MARK = "~"  # never valid in a key part: marks sidecars, spares and temp files

_libc = ctypes.CDLL(None, use_errno=True)
_tmp_counter = itertools.count()


def tmp_path(path: Path) -> Path:
    """A temp name beside `path`, unique across processes and threads (no random probing as mkstemp does)."""
    return path.with_name(f".{path.name}{INTERNAL_MARK}tmp.{os.getpid()}.{threading.get_ident()}.{next(_tmp_counter)}")


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write `data` to a temp file beside `path`, fsync it (when durable) and rename it over `path`."""
    tmp = tmp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)  # the edge may be another user
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        _swap_into_place(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


_RENAME_EXCHANGE = 2  # renameat2(2) flag
_AT_FDCWD = -100
_exchange_works = True


def _swap_into_place(tmp: Path, path: Path) -> None:
    """Move `tmp` to `path` atomically. Over an existing file, exchange the two and unlink the old one.

    ext4 (auto_da_alloc) starts writeback of the new file's data on a rename that replaces a file: measured
    here at 0.12 ms CPU and 0.22 ms per playlist version, against 0.05 ms for renameat2(RENAME_EXCHANGE) and
    an unlink. Readers see the old bytes or the new, never a mix, either way.
    """
    global _exchange_works
    if _exchange_works:
        if _libc.renameat2(_AT_FDCWD, os.fsencode(tmp), _AT_FDCWD, os.fsencode(path), _RENAME_EXCHANGE) == 0:
            os.unlink(tmp)  # now the previous version
            return
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            _exchange_works = False  # a filesystem or kernel without it: plain renames from now on
        elif err != errno.ENOENT:  # ENOENT: nothing to exchange with, a new name
            raise OSError(err, os.strerror(err), str(path))
    os.replace(tmp, path)


# Small derived objects rewritten every second (live playlists, status.json) cycle between two inodes: the
# next version is written into the spare, then exchanged with the public name. A new inode per version (temp
# file + rename, the old one freed) made ext4's inode allocator (find_inode_bit / recently_deleted) the top
# kernel cost of the origin. A reader that opened the previous version keeps consistent bytes until the one
# after next is written (a second or more): the serve router reads a small object whole, at once.
REWRITE_IN_PLACE_MAX_BYTES = 256 * 1024


def spare_path(path: str) -> str:
    directory, _, name = path.rpartition("/")
    return f"{directory}/.{name}{INTERNAL_MARK}spare"


def rewrite_small(path: Path | str, data: bytes) -> None:
    """Replace a small file's content atomically for readers, reusing two inodes (see above)."""
    path = os.fspath(path)
    spare = spare_path(path)
    while True:
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another process rewriting the same object waits here
            try:
                same = os.fstat(fd).st_ino == os.stat(spare).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the writer before us exchanged it into place: ours is public now, reopen
                continue
            # Over the old bytes, then cut to length: truncating to 0 first freed the file's blocks and the write
            # allocated new ones, every version (ext4, mounted with discard here: 0.21 ms of CPU per rewrite
            # against 0.06 ms in place; tmpfs 0.06 against 0.05).
            view = memoryview(data)
            offset = 0
            while offset < len(view):
                offset += os.pwrite(fd, view[offset:], offset)
            os.ftruncate(fd, len(view))
            _exchange_or_rename(spare, path)
            return
        finally:
            os.close(fd)  # drops the flock


def _exchange_or_rename(spare: str, path: str) -> None:
    """Exchange `spare` with `path` (the old version becomes the spare); a plain rename the first time."""
    global _exchange_works
    if _exchange_works:
        if _libc.renameat2(_AT_FDCWD, os.fsencode(spare), _AT_FDCWD, os.fsencode(path), _RENAME_EXCHANGE) == 0:
            return
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            _exchange_works = False
        elif err != errno.ENOENT:
            raise OSError(err, os.strerror(err), str(path))
    os.replace(spare, path)


def create_if_absent(path: Path, data: bytes, *, durable: bool = True) -> bytes:
    """Atomically create `path` with `data` unless it exists; return the content that won (ours or theirs)."""
    tmp = tmp_path(path)
    write_atomic(tmp, data, durable=durable)
    try:
        os.link(tmp, path)  # fails with EEXIST if another writer got there first: never overwrites
        if durable:
            fsync_dir(path.parent)
        return data
    except FileExistsError:
        return path.read_bytes()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def syncfs(path: Path) -> None:
    """syncfs(2) on the filesystem holding `path` (Linux): flushes every dirty file and directory on it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def fsync_dir(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
