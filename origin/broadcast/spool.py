"""The local spool: objects storage refused, kept on the origin's disk until an upload succeeds.

Files are named by their storage key under `{state_dir}/spool/`, written atomically and made durable by
the group commit (syncfs of the state filesystem) before ingest answers 201.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from origin.storage.filesystem import validate_key


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def put(self, key: str, data: bytes) -> Path:
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
        return path

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()
