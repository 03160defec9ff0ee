"""The narrow storage interface every backend implements (filesystem, S3).

Calls are synchronous and may block (disk, network); async callers run them in a worker thread.
A successful `put` means the object is readable by listeners (S3 has read-after-write consistency; the
filesystem backend writes to a temp file and renames it) and durable — or, with `durable=False`, durable
once the next `sync()` returns: many writes then share one durability barrier (group commit).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Protocol, runtime_checkable

from origin.contract.cache_policy import ObjectHeaders


class Storage(Protocol):
    name: str

    def put(self, key: str, data: bytes, headers: ObjectHeaders, *, durable: bool = True) -> None:
        """Store `data` at `key` with its Content-Type/Cache-Control, atomically. Raises StorageError.

        `durable=False` defers durability to the next `sync()` (the filesystem backend skips its fsyncs): for
        objects a group commit will cover, and for derived objects the origin rewrites from its own state
        (playlists, status.json). They are still replaced atomically, never seen half-written.
        """
        ...

    def sync(self) -> None:
        """Make every `put(..., durable=False)` that returned before this call durable. Raises StorageError."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object (absent is fine). Raises StorageError."""
        ...

    def put_file(self, key: str, source: Path, headers: ObjectHeaders) -> None:
        """Store the file `source` at `key` (durably, like put). `source` is left in place.

        Raises FileNotFoundError if `source` is missing, StorageError on failure.
        """
        ...

    def get(self, key: str) -> bytes:
        """Return the object's bytes. Raises KeyError if absent, StorageError on failure."""
        ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> list[str]:
        """Keys under `prefix` (a key prefix, not necessarily a directory), sorted."""
        ...

    def check(self) -> None:
        """Readiness probe: raises StorageError when the backend cannot be reached or written."""
        ...


@runtime_checkable
class Unpacks(Protocol):
    """A backend that packs small immutable objects while they are written (the filesystem's): `unpack` makes
    them objects of their own under `prefix` once nothing more is written there."""

    def unpack(self, prefix: str) -> int: ...


_GIVE_UP: ContextVar[Callable[[], bool] | None] = ContextVar("storage_give_up", default=None)


def given_up() -> bool:
    """Whether the caller abandoned the write this thread runs (a hedge won, or a newer version of the key was
    issued). A backend checks it before each retry: an abandoned write must not be sent again."""
    check = _GIVE_UP.get()
    return check is not None and check()


@contextlib.contextmanager
def abandon_when(check: Callable[[], bool]) -> Iterator[None]:
    token = _GIVE_UP.set(check)
    try:
        yield
    finally:
        _GIVE_UP.reset(token)
