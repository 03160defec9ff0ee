"""The spool: objects storage refused, kept until an upload succeeds (`SpoolStore`, two backends).

`Spool` keeps them on the origin's disk: files named by their storage key under `{state_dir}/spool/`,
written atomically and made durable by the group commit (syncfs of the state filesystem) before ingest
answers 201. A fleet keeps them in Redis instead (origin/fleet/spool.py), so any instance's owner can
upload what another instance received.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path
from typing import Protocol

from origin.contract import layout
from origin.contract.cache_policy import ObjectHeaders
from origin.storage.base import Storage
from origin.storage.keys import validate_key


class SpoolStore(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Keep `data` for `key` (durable after the next group commit). Raises UnavailableError when full."""
        ...

    def get(self, key: str) -> bytes:
        """The spooled bytes. Raises KeyError if absent."""
        ...

    def upload(self, key: str, storage: Storage, headers: ObjectHeaders) -> None:
        """Store the spooled copy at `key` in `storage` (left in the spool). KeyError if absent, StorageError."""
        ...

    def delete(self, key: str) -> None: ...

    def delete_room(self, room: str) -> None:
        """Forget everything spooled for the room (the room is being deleted)."""
        ...


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def put(self, key: str, data: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}~{os.getpid()}.{threading.get_ident()}")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def upload(self, key: str, storage: Storage, headers: ObjectHeaders) -> None:
        try:
            storage.put_file(key, self.path(key), headers)  # a hard link when storage is on the same disk
        except FileNotFoundError:
            raise KeyError(key) from None

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def delete_room(self, room: str) -> None:
        shutil.rmtree(self.path(layout.room_prefix(room)), ignore_errors=True)
