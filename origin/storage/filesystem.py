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
import functools
import json
import logging
import os
import re
import stat
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from origin.contract.cache_policy import ERROR_MAX_AGE_S, ObjectHeaders
from origin.errors import StorageError, ValidationError
from origin.storage.atomic_files import (
    INTERNAL_MARK,
    REWRITE_IN_PLACE_MAX_BYTES,
    create_if_absent,
    fsync_dir,
    read_or_none,
    rewrite_small,
    spare_path,
    syncfs,
    tmp_path,
    write_atomic,
)
from origin.storage.packs import PACK_MAX_OBJECT_BYTES, PackError, Packs, is_pack

logger = logging.getLogger(__name__)

BACKEND = "filesystem"
KEY_PART_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
_PREFIX_TAIL_PATTERN = re.compile(r"[A-Za-z0-9._-]*")
MAX_KEY_CHARS = 1024  # S3's limit (in UTF-8 bytes; keys are ASCII here)
MAX_PART_CHARS = 200  # leaves room under NAME_MAX (255) for the sidecar and temp-file decorations
SIDECAR_SUFFIX = "~headers.json"
# Headers shared by the objects of one directory (a media directory holds thousands of segments with identical
# headers): written once, before the first object; an object whose headers differ gets its own sidecar.
DIR_HEADERS_NAME = f".{INTERNAL_MARK}headers.json"
# Headers of an object found without a sidecar (copied in by hand; `put` never leaves one behind).
FALLBACK_HEADERS = ObjectHeaders(
    content_type="application/octet-stream", cache_control=f"public, max-age={ERROR_MAX_AGE_S}"
)
_RETRYABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.EMFILE})
_LOCK_STRIPES = 64


_DIR_CACHE_SIZE = 4096


_KEY_PATTERN = re.compile(rf"(?:[A-Za-z0-9._-]{{1,{MAX_PART_CHARS}}}/)*[A-Za-z0-9._-]{{1,{MAX_PART_CHARS}}}")


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative object key, else raise ValidationError.

    Rules: `/`-separated parts of `[A-Za-z0-9._-]+`, no `.`/`..` part, no empty part (so no leading,
    trailing or doubled slash), at most MAX_KEY_CHARS characters. Used by every backend.
    """
    if not isinstance(key, str) or not key:
        raise ValidationError(f"invalid storage key {key!r}: empty")
    if len(key) > MAX_KEY_CHARS:
        raise ValidationError(f"invalid storage key {key[:80]!r}...: longer than {MAX_KEY_CHARS}")
    if _KEY_PATTERN.fullmatch(key) and "/./" not in f"/{key}/" and "/../" not in f"/{key}/":
        return key  # one match for the whole key (every segment PUT validates its key)
    for part in key.split("/"):
        _check_part(key, part)  # the part to blame
    raise AssertionError(f"unreachable: {key!r}")


def validate_prefix(prefix: str) -> str:
    """Return `prefix` if it can only match valid keys' beginnings (empty is allowed), else raise."""
    if not isinstance(prefix, str):
        raise ValidationError(f"invalid storage prefix {prefix!r}")
    if not prefix:
        return prefix
    if len(prefix) > MAX_KEY_CHARS:
        raise ValidationError(f"invalid storage prefix {prefix[:80]!r}...: longer than {MAX_KEY_CHARS}")
    *dirs, tail = prefix.split("/")
    for part in dirs:
        _check_part(prefix, part)
    if not _PREFIX_TAIL_PATTERN.fullmatch(tail) or len(tail) > MAX_PART_CHARS:
        raise ValidationError(f"invalid storage prefix {prefix[:80]!r}: bad last part {tail[:80]!r}")
    return prefix


def _check_part(key: str, part: str) -> None:
    if part in (".", "..") or not KEY_PART_PATTERN.fullmatch(part) or len(part) > MAX_PART_CHARS:
        raise ValidationError(
            f"invalid storage key {key[:80]!r}: part {part[:80]!r} must match {KEY_PART_PATTERN.pattern}, "
            f"not be '.' or '..', and be at most {MAX_PART_CHARS} characters"
        )


def _sidecar_path(path: str) -> str:
    directory, _, name = path.rpartition("/")
    return f"{directory}/.{name}{SIDECAR_SUFFIX}"


@functools.lru_cache(maxsize=64)
def _encode_headers(headers: ObjectHeaders) -> bytes:
    doc = {"content_type": headers.content_type, "cache_control": headers.cache_control}
    return json.dumps(doc, sort_keys=True).encode()


def _decode_headers(raw: bytes) -> ObjectHeaders:
    doc = json.loads(raw)
    return ObjectHeaders(content_type=str(doc["content_type"]), cache_control=str(doc["cache_control"]))


class FilesystemStorage:
    """`Storage` on a local directory. Thread-safe; puts of the same key are serialized in-process."""

    name = BACKEND

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self._resolved_root = self.root.resolve()
        self._root_str = str(self.root)
        self._dirs_inside: dict[str, bool] = {}
        self._dirs_made: set[str] = set()
        self._dir_defaults: dict[str, bytes] = {}
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self._packs = Packs()

    def __repr__(self) -> str:
        return f"FilesystemStorage(root={str(self.root)!r})"

    # -- paths ---------------------------------------------------------------------------------------

    def path_for(self, key: str) -> Path:
        """The file that holds `key`. Raises ValidationError for an invalid key or one that escapes root."""
        directory, name = self._locate(key)
        path = os.path.join(directory, name)
        if os.path.islink(path):  # the leaf is checked each time
            raise ValidationError(f"invalid storage key {key[:80]!r}: resolves outside the storage root")
        return Path(path)

    def _locate(self, key: str) -> tuple[str, str]:
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

    def _error(self, key: str, what: str, exc: OSError) -> StorageError:
        retryable = exc.errno in _RETRYABLE_ERRNOS
        return StorageError(f"{what} failed: {exc}", key=key, backend=BACKEND, retryable=retryable)

    def _lock_for(self, key: str) -> threading.Lock:
        return self._locks[zlib.crc32(key.encode()) % _LOCK_STRIPES]

    # -- Storage protocol ----------------------------------------------------------------------------

    def put(self, key: str, data: bytes, headers: ObjectHeaders, *, durable: bool = True) -> None:
        if headers.immutable and len(data) <= PACK_MAX_OBJECT_BYTES:
            directory, name = self._locate(key)  # written into the directory's pack: the leaf is never opened
            try:
                self._packs.put(directory, name, data, headers, durable=durable)
            except OSError as exc:
                raise self._error(key, "put", exc) from exc
            return
        directory, name = self._locate(key)
        path = f"{directory}/{name}"
        if os.path.islink(path):  # rewritten in place, a link would be written through: refuse it
            raise ValidationError(f"invalid storage key {key[:80]!r}: resolves outside the storage root")
        with self._lock_for(key):
            try:
                self._ensure_dir(directory)
                self._store_headers(directory, name, headers, durable=durable)
                # In place for what is rewritten (playlists, status.json); a new immutable object (a part, 15 a
                # second per low-latency room) is a plain create: 0.44 ms of CPU here, 1.02 ms in place.
                if not durable and len(data) <= REWRITE_IN_PLACE_MAX_BYTES and not headers.immutable:
                    rewrite_small(path, data)
                else:
                    write_atomic(Path(path), bytes(data), durable=durable)
                if durable:
                    fsync_dir(directory)
            except OSError as exc:
                raise self._error(key, "put", exc) from exc

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
                self._store_headers(str(path.parent), path.name, headers, durable=True)
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
                raise self._error(key, "put", exc) from exc

    def sync(self) -> None:
        """One syncfs(2) for the whole storage filesystem: the barrier of many non-durable puts."""
        try:
            syncfs(self.root)
        except OSError as exc:
            raise self._error(f"(root {self.root})", "sync", exc) from exc

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        with self._lock_for(key):
            for victim in (str(path), _sidecar_path(str(path)), spare_path(str(path))):
                try:
                    os.unlink(victim)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise self._error(key, "delete", exc) from exc
            try:
                self._packs.delete(str(path.parent), path.name)
            except OSError as exc:
                raise self._error(key, "delete", exc) from exc

    def _ensure_dir(self, directory: str) -> None:
        if directory not in self._dirs_made:
            os.makedirs(directory, exist_ok=True)
            if len(self._dirs_made) > _DIR_CACHE_SIZE:
                self._dirs_made.clear()
            self._dirs_made.add(directory)

    def _store_headers(self, directory: str, name: str, headers: ObjectHeaders, *, durable: bool) -> None:
        """Make `headers` the object's headers before its bytes become visible."""
        encoded = _encode_headers(headers)
        default = self._dir_defaults.get(directory)
        if default is None:
            # As durable as the object it comes with: after a crash, the next put in the directory makes it again.
            shared = Path(directory, DIR_HEADERS_NAME)
            default = read_or_none(shared) or create_if_absent(shared, encoded, durable=durable)
            if len(self._dir_defaults) > _DIR_CACHE_SIZE:
                self._dir_defaults.clear()
            self._dir_defaults[directory] = default
        sidecar = f"{directory}/.{name}{SIDECAR_SUFFIX}"
        if default == encoded:
            if os.path.lexists(sidecar):  # an earlier version had other headers
                os.unlink(sidecar)
        elif read_or_none(Path(sidecar)) != encoded:
            write_atomic(Path(sidecar), encoded, durable=durable)

    def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            pass  # packed, or absent
        except NotADirectoryError:
            raise KeyError(key) from None
        except OSError as exc:
            raise self._error(key, "get", exc) from exc
        try:
            entry = self._packs.find(str(path.parent), path.name)
            if entry is None:
                raise KeyError(key)
            return self._packs.read(str(path.parent), entry)
        except (FileNotFoundError, NotADirectoryError, PackError):
            raise KeyError(key) from None
        except OSError as exc:
            raise self._error(key, "get", exc) from exc

    def exists(self, key: str) -> bool:
        path = self.path_for(key)
        try:
            return path.is_file() or self._packs.find(str(path.parent), path.name) is not None
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise self._error(key, "exists", exc) from exc

    def list(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        dir_key = prefix.rpartition("/")[0]  # the deepest directory every match lives under
        base = self.path_for(dir_key) if dir_key else self.root
        keys: list[str] = []
        try:
            for dirpath, dirnames, filenames in os.walk(base, onerror=_raise_walk_error):
                rel = os.path.relpath(dirpath, self.root)
                rel_key = "" if rel == "." else rel.replace(os.sep, "/") + "/"
                dirnames[:] = [d for d in dirnames if _is_key_part(d)]
                names = [n for n in filenames if _is_key_part(n)]
                if any(is_pack(n) for n in filenames):
                    names = sorted(set(names) | set(self._packs.names(dirpath)))
                for name in names:
                    key = rel_key + name
                    if key.startswith(prefix):
                        keys.append(key)
        except OSError as exc:
            raise self._error(prefix, "list", exc) from exc
        keys.sort()
        return keys

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
            raise self._error(key, "check", exc) from exc

    # -- extras for the serve router ----------------------------------------------------------------------

    def unpack(self, prefix: str, *, pause_every: int = 100, pause_s: float = 0.005) -> int:
        """Turn every packed object under `prefix` into a file of its own, then remove the packs: an ended
        broadcast's storage is a plain tree of objects again (for backups, a sync to S3, any static server).
        Idempotent; run off the event loop, after the last write under `prefix`. It pauses a moment every
        `pause_every` objects, so a long broadcast's tens of thousands of files do not starve the live rooms."""
        base = self.path_for(validate_prefix(prefix).rstrip("/")) if prefix.strip("/") else self.root
        moved = 0
        for dirpath, _dirnames, filenames in os.walk(base):
            if not any(is_pack(n) for n in filenames):
                continue
            unreadable = 0
            try:
                for entry in self._packs.entries(dirpath):
                    path = os.path.join(dirpath, entry.name)
                    if os.path.exists(path):
                        continue
                    try:
                        data = self._packs.read(dirpath, entry)
                    except PackError as exc:  # absent to readers already; its pack is kept as evidence
                        logger.error("unpacking %s: %s", dirpath, exc)
                        unreadable += 1
                        continue
                    self._store_headers(dirpath, entry.name, entry.headers, durable=False)
                    write_atomic(Path(path), data, durable=False)
                    moved += 1
                    if moved % pause_every == 0:
                        time.sleep(pause_s)
                self.sync()  # the files are durable before the packs go
                if not unreadable:
                    self._packs.remove_all(dirpath)
            except OSError as exc:
                raise self._error(prefix, "unpack", exc) from exc
        return moved

    def get_headers(self, key: str) -> ObjectHeaders:
        """Stored Content-Type/Cache-Control of `key`. Raises KeyError if the object is absent."""
        return self.open_object(key, headers_only=True).headers

    def open_object(self, key: str, *, headers_only: bool = False) -> StoredObject:
        """The object's headers, size and modification time, and (unless `headers_only`) an open file with its
        bytes at `start`: for the serve router. Raises KeyError if the object is absent."""
        path = self.path_for(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return self._open_packed(key, path, headers_only=headers_only)
        except OSError as exc:
            raise self._error(key, "open", exc) from exc
        try:
            st = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            raise self._error(key, "open", exc) from exc
        if not stat.S_ISREG(st.st_mode):  # a directory: the key may still be a packed object
            os.close(fd)
            return self._open_packed(key, path, headers_only=headers_only)
        f = os.fdopen(fd, "rb")
        try:
            headers = self._file_headers(key, path)
            found = StoredObject(headers=headers, size=st.st_size, mtime_ns=st.st_mtime_ns,
                                 file=None if headers_only else f, start=0)  # fmt: skip
        except BaseException:
            f.close()
            raise
        if headers_only:
            f.close()
        return found

    def _open_packed(self, key: str, path: Path, *, headers_only: bool) -> StoredObject:
        try:
            entry = self._packs.find(str(path.parent), path.name)
            if entry is None:
                raise KeyError(key)
            f = None if headers_only else open(path.parent / entry.pack, "rb")  # noqa: SIM115 - the caller's
        except (FileNotFoundError, NotADirectoryError):
            raise KeyError(key) from None
        except OSError as exc:
            raise self._error(key, "open", exc) from exc
        return StoredObject(headers=entry.headers, size=entry.length, mtime_ns=entry.mtime_ns, file=f,
                            start=entry.offset)  # fmt: skip

    def _file_headers(self, key: str, path: Path) -> ObjectHeaders:
        try:
            raw = read_or_none(Path(_sidecar_path(str(path)))) or (path.parent / DIR_HEADERS_NAME).read_bytes()
        except FileNotFoundError:
            logger.warning("filesystem object %s has no headers sidecar; serving fallback headers", key)
            return FALLBACK_HEADERS
        except OSError as exc:
            raise self._error(key, "get_headers", exc) from exc
        try:
            return _decode_headers(raw)
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"corrupt headers sidecar: {exc}"
            raise StorageError(msg, key=key, backend=BACKEND, retryable=False) from exc

    def close(self) -> None:
        self._packs.close()


@dataclass(frozen=True, kw_only=True)
class StoredObject:
    """What the serve router needs of an object: its bytes are `size` bytes of `file` from `start` (a pack holds
    many objects); `file` is None when only the headers were asked for. The caller closes `file`."""

    headers: ObjectHeaders
    size: int
    mtime_ns: int
    file: BinaryIO | None
    start: int


def _raise_walk_error(exc: OSError) -> None:
    if exc.errno not in (errno.ENOENT, errno.ENOTDIR):  # a missing prefix directory is an empty listing
        raise exc


def _is_key_part(name: str) -> bool:
    if name in (".", "..") or len(name) > MAX_PART_CHARS:
        return False
    return KEY_PART_PATTERN.fullmatch(name) is not None
