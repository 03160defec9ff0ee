"""Filesystem storage: the embedded default, a directory the edge reads through the serve router.

Layout under `root`, for key `rooms/r1/live/a48.m3u8`:

    rooms/r1/live/a48.m3u8                    the object
    rooms/r1/live/.~headers.json              Content-Type/Cache-Control shared by the directory's objects
    rooms/r1/live/.a48.m3u8~headers.json      an object's own headers, only when they differ (sidecar)
    rooms/r1/live/.a48.m3u8~tmp.PID.TID.N     a write in progress (renamed into place, or removed)
    rooms/r1/media/S/a48/.~pack.PID.NONCE      small immutable objects (segments, parts, inits, filler) of the
                                               directory, appended by one process (packs.py: no file each)

Every internal name contains `~`, a character no valid key part may contain, so sidecars, temp files and packs
can never collide with an object, be listed or be served.

A `put` settles the headers (the directory's, created once with link-if-absent so concurrent writers agree,
or the object's own sidecar) BEFORE the object (temp file, fsync, rename), then fsyncs the directory: a visible
object always has its headers, and readers see either the old or the new bytes, never a partial file.
`put_file` hard-links an already durable file (the origin's spool) instead of copying it. An immutable object of
up to 1 MiB goes to the directory's pack instead, with its headers in its record; reads look for a file first,
then in the packs.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
import threading
import zlib
from pathlib import Path

from origin.contract.cache_policy import ObjectHeaders
from origin.errors import StorageError, ValidationError
from origin.storage.atomic_files import (
    INTERNAL_MARK,
    REWRITE_IN_PLACE_MAX_BYTES,
    fsync_dir,
    rewrite_small,
    spare_path,
    syncfs,
    tmp_path,
    write_atomic,
)
from origin.storage.fs_headers import HeaderFiles, sidecar_path
from origin.storage.fs_read import StoredObject, list_keys, open_object
from origin.storage.fs_unpack import unpack
from origin.storage.keys import validate_key
from origin.storage.packs import PACK_MAX_OBJECT_BYTES, PackError, Packs

logger = logging.getLogger(__name__)

BACKEND = "filesystem"
_RETRYABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.EMFILE})
_LOCK_STRIPES = 64


_DIR_CACHE_SIZE = 4096


class FilesystemStorage:
    """`Storage` on a local directory. Thread-safe; puts of the same key are serialized in-process."""

    name = BACKEND

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self._resolved_root = self.root.resolve()
        self._root_str = str(self.root)
        self._dirs_inside: dict[str, bool] = {}
        self._dirs_made: set[str] = set()
        self.header_files = HeaderFiles(backend=BACKEND)
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self.packs = Packs()

    def __repr__(self) -> str:
        return f"FilesystemStorage(root={str(self.root)!r})"

    # -- paths ---------------------------------------------------------------------------------------

    def path_for(self, key: str) -> Path:
        """The file that holds `key`. Raises ValidationError for an invalid key or one that escapes root."""
        directory, name = self.locate(key)
        path = os.path.join(directory, name)
        if os.path.islink(path):  # the leaf is checked each time
            raise ValidationError(f"invalid storage key {key[:80]!r}: resolves outside the storage root")
        return Path(path)

    def locate(self, key: str) -> tuple[str, str]:
        """`key`'s directory (a string: the hot path makes no Path objects) and name, the directory checked to be
        inside root. Defence in depth: a symlink planted under root must not lead outside it. Directories are
        resolved once (the hot path writes into the same few directories every segment)."""
        validate_key(key)
        directory, _, name = os.path.join(self._root_str, key).rpartition("/")
        inside = self._dirs_inside.get(directory)
        if inside is None:
            inside = Path(directory).resolve().is_relative_to(self._resolved_root)
            if len(self._dirs_inside) > _DIR_CACHE_SIZE:
                self._dirs_inside.clear()
            self._dirs_inside[directory] = inside
        if not inside:
            raise ValidationError(f"invalid storage key {key[:80]!r}: resolves outside the storage root")
        return directory, name

    def error(self, key: str, what: str, exc: OSError) -> StorageError:
        retryable = exc.errno in _RETRYABLE_ERRNOS
        return StorageError(f"{what} failed: {exc}", key=key, backend=BACKEND, retryable=retryable)

    def _lock_for(self, key: str) -> threading.Lock:
        return self._locks[zlib.crc32(key.encode()) % _LOCK_STRIPES]

    # -- Storage protocol ----------------------------------------------------------------------------

    def put(self, key: str, data: bytes, headers: ObjectHeaders, *, durable: bool = True) -> None:
        if headers.immutable and len(data) <= PACK_MAX_OBJECT_BYTES:
            directory, name = self.locate(key)  # written into the directory's pack: the leaf is never opened
            try:
                self.packs.put(directory, name, data, headers, durable=durable)
            except OSError as exc:
                raise self.error(key, "put", exc) from exc
            return
        directory, name = self.locate(key)
        path = f"{directory}/{name}"
        if os.path.islink(path):  # rewritten in place, a link would be written through: refuse it
            raise ValidationError(f"invalid storage key {key[:80]!r}: resolves outside the storage root")
        with self._lock_for(key):
            try:
                self._ensure_dir(directory)
                self.header_files.store(directory, name, headers, durable=durable)
                # In place for what is rewritten (playlists, status.json); a new immutable object (a part, 15 a
                # second per low-latency room) is a plain create: 0.44 ms of CPU here, 1.02 ms in place.
                if not durable and len(data) <= REWRITE_IN_PLACE_MAX_BYTES and not headers.immutable:
                    rewrite_small(path, data)
                else:
                    write_atomic(Path(path), bytes(data), durable=durable)
                if durable:
                    fsync_dir(directory)
            except OSError as exc:
                raise self.error(key, "put", exc) from exc

    def put_file(self, key: str, source: Path, headers: ObjectHeaders) -> None:
        """Store the file `source` at `key`: fsynced (next to free when its writer already did, like the spool),
        then a hard link when on the same filesystem, so the bytes are not copied; a durable copy otherwise.
        `source` itself is left in place."""
        path = self.path_for(key)
        with self._lock_for(key):
            try:
                fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)  # FileNotFoundError if missing
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self._ensure_dir(str(path.parent))
                self.header_files.store(str(path.parent), path.name, headers, durable=True)
                tmp = tmp_path(path)
                try:
                    os.link(source, tmp)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                        raise
                    write_atomic(path, source.read_bytes())
                else:
                    try:
                        os.replace(tmp, path)
                    except BaseException:
                        with contextlib.suppress(OSError):
                            os.unlink(tmp)
                        raise
                fsync_dir(path.parent)
            except FileNotFoundError:
                raise
            except OSError as exc:
                raise self.error(key, "put", exc) from exc

    def sync(self) -> None:
        """One syncfs(2) for the whole storage filesystem: the barrier of many non-durable puts."""
        try:
            syncfs(self.root)
        except OSError as exc:
            raise self.error(f"(root {self.root})", "sync", exc) from exc

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        with self._lock_for(key):
            for victim in (str(path), sidecar_path(str(path)), spare_path(str(path))):
                try:
                    os.unlink(victim)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise self.error(key, "delete", exc) from exc
            try:
                self.packs.delete(str(path.parent), path.name)
            except OSError as exc:
                raise self.error(key, "delete", exc) from exc

    def _ensure_dir(self, directory: str) -> None:
        if directory not in self._dirs_made:
            os.makedirs(directory, exist_ok=True)
            if len(self._dirs_made) > _DIR_CACHE_SIZE:
                self._dirs_made.clear()
            self._dirs_made.add(directory)

    def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            pass  # packed, or absent
        except NotADirectoryError:
            raise KeyError(key) from None
        except OSError as exc:
            raise self.error(key, "get", exc) from exc
        try:
            entry = self.packs.find(str(path.parent), path.name)
            if entry is None:
                raise KeyError(key)
            return self.packs.read(str(path.parent), entry)
        except (FileNotFoundError, NotADirectoryError, PackError):
            raise KeyError(key) from None
        except OSError as exc:
            raise self.error(key, "get", exc) from exc

    def exists(self, key: str) -> bool:
        path = self.path_for(key)
        try:
            return path.is_file() or self.packs.find(str(path.parent), path.name) is not None
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise self.error(key, "exists", exc) from exc

    def list(self, prefix: str) -> list[str]:
        return list_keys(self, prefix)

    def check(self) -> None:
        """Raise StorageError unless root is a directory we can create, write, fsync and remove files in."""
        key = f"(root {self.root})"
        if not self.root.is_dir():
            raise StorageError("storage root is not a directory", key=key, backend=BACKEND, retryable=False)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".check{INTERNAL_MARK}")
            try:
                os.write(fd, b"ok")
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(tmp)
        except OSError as exc:
            raise self.error(key, "check", exc) from exc

    # -- extras for the serve router ----------------------------------------------------------------------

    def unpack(self, prefix: str) -> int:
        """Turn the packed objects under `prefix` into files of their own (fs_unpack.py)."""
        return unpack(self, prefix)

    def get_headers(self, key: str) -> ObjectHeaders:
        """Stored Content-Type/Cache-Control of `key`. Raises KeyError if the object is absent."""
        return self.open_object(key, headers_only=True).headers

    def open_object(self, key: str, *, headers_only: bool = False) -> StoredObject:
        """For the serve router: the object's headers, size, time and bytes (fs_read.py)."""
        return open_object(self, key, headers_only=headers_only)

    def close(self) -> None:
        self.packs.close()
