"""The filesystem backend's objects as the serve router reads them: headers, size, time, and the open file their
bytes start in (a pack holds many objects)."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from origin.contract.cache_policy import ObjectHeaders
from origin.storage.keys import is_key_part, validate_prefix
from origin.storage.packs import is_pack

if TYPE_CHECKING:
    from origin.storage.filesystem import FilesystemStorage


@dataclass(frozen=True, kw_only=True)
class StoredObject:
    """What the serve router needs of an object: its bytes are `size` bytes of `file` from `start` (a pack holds
    many objects); `file` is None when only the headers were asked for. The caller closes `file`."""

    headers: ObjectHeaders
    size: int
    mtime_ns: int
    file: BinaryIO | None
    start: int


def open_object(storage: FilesystemStorage, key: str, *, headers_only: bool = False) -> StoredObject:
    """The object's headers, size and modification time, and (unless `headers_only`) an open file with its
    bytes at `start`: for the serve router. Raises KeyError if the object is absent."""
    path = storage.path_for(key)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return _open_packed(storage, key, path, headers_only=headers_only)
    except OSError as exc:
        raise storage.error(key, "open", exc) from exc
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise storage.error(key, "open", exc) from exc
    if not stat.S_ISREG(st.st_mode):  # a directory: the key may still be a packed object
        os.close(fd)
        return _open_packed(storage, key, path, headers_only=headers_only)
    f = os.fdopen(fd, "rb")
    try:
        headers = storage.header_files.read(key, path)
        found = StoredObject(headers=headers, size=st.st_size, mtime_ns=st.st_mtime_ns,
                             file=None if headers_only else f, start=0)  # fmt: skip
    except OSError as exc:
        f.close()
        raise storage.error(key, "get_headers", exc) from exc
    except BaseException:
        f.close()
        raise
    if headers_only:
        f.close()
    return found

def _open_packed(storage: FilesystemStorage, key: str, path: Path, *, headers_only: bool) -> StoredObject:
    try:
        entry = storage.packs.find(str(path.parent), path.name)
        if entry is None:
            raise KeyError(key)
        f = None if headers_only else open(path.parent / entry.pack, "rb")  # noqa: SIM115 - the caller's
    except (FileNotFoundError, NotADirectoryError):
        raise KeyError(key) from None
    except OSError as exc:
        raise storage.error(key, "open", exc) from exc
    return StoredObject(headers=entry.headers, size=entry.length, mtime_ns=entry.mtime_ns, file=f,
                        start=entry.offset)  # fmt: skip


def list_keys(storage: FilesystemStorage, prefix: str) -> list[str]:
    """The keys under `prefix`, sorted: files that are objects, and the live records of each directory's packs."""
    validate_prefix(prefix)
    dir_key = prefix.rpartition("/")[0]  # the deepest directory every match lives under
    base = storage.path_for(dir_key) if dir_key else storage.root
    keys: list[str] = []
    try:
        for dirpath, dirnames, filenames in os.walk(base, onerror=_raise_walk_error):
            rel = os.path.relpath(dirpath, storage.root)
            rel_key = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            dirnames[:] = [d for d in dirnames if is_key_part(d)]
            names = [n for n in filenames if is_key_part(n)]
            if any(is_pack(n) for n in filenames):
                names = sorted(set(names) | set(storage.packs.names(dirpath)))
            keys.extend(rel_key + name for name in names if (rel_key + name).startswith(prefix))
    except OSError as exc:
        raise storage.error(prefix, "list", exc) from exc
    keys.sort()
    return keys


def _raise_walk_error(exc: OSError) -> None:
    if exc.errno not in (errno.ENOENT, errno.ENOTDIR):  # a missing prefix directory is an empty listing
        raise exc
