"""FencedStorage: what a room's owner writes, fenced where the write happens — in S3 itself.

A paused owner (GC, SIGSTOP, a partition) can wake up after its lease ran out and a successor took the room;
its journal appends are then refused (journal.py), but a playlist write already on its way would land over
the successor's. So every playlist write is a conditional PUT chained on the ETag of the owner's own
previous write (If-Match; If-None-Match: * for a first version):

1. An ETag is used only if this owner got it from its own write, or observed it (HEAD) *before* a fence
   check (`verify`: the lease is still this owner's, renewed now). An ETag seen before the check cannot be
   a successor's, since a successor writes only after it took the room, which is after the check.
2. Every version carries a comment naming its owner's token (`# spillway-owner N`, RFC 8216 §4.1: a line
   starting with "#" but not "#EXT" is a comment players ignore). A successor's versions therefore never
   have the ETag of any version an earlier owner wrote or saw, even when the playlist text is the same.
3. So once a successor wrote a playlist, every later write of an earlier owner fails (412): that owner
   HEADs again, its fence check fails, and it raises OwnershipLostError. It never writes after its successor.

Filler segments are created only if absent (If-None-Match: *): the first version written stays, so an
immutable, CDN-cached name never changes bytes, whichever owner wrote it. Other objects (spooled uploads:
bytes ingest received) and every read go to `others` (the app's storage, hedged or not).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol

from origin.contract.cache_policy import ObjectHeaders
from origin.errors import StorageError
from origin.storage.base import Storage
from origin.storage.delegate import ReadsBelow
from origin.storage.s3 import PreconditionFailedError, S3Storage

log = logging.getLogger(__name__)

ATTEMPTS = 3  # conditional writes per playlist version before the pass gives up (and retries next pass)
_UNKNOWN = object()


class Fence(Protocol):
    room: str
    token: int

    def verify(self) -> None:
        """Raise OwnershipLostError unless this is still the room's newest owner (StorageError: cannot tell)."""
        ...


def owner_marker(token: int) -> bytes:
    return f"# spillway-owner {token}\n".encode()


class FencedStorage(ReadsBelow):
    """`Storage` for one room's owner in a fleet. Safe for concurrent writes of different keys."""

    def __init__(self, storage: S3Storage, fence: Fence, *, others: Storage | None = None) -> None:
        self.storage = storage
        self.below: Storage = others if others is not None else storage  # segments and reads (hedged, if on)
        self.fence = fence
        self.name = storage.name
        self._etags: dict[str, object] = {}  # key -> the ETag of our last version, None: absent, or _UNKNOWN
        self._lock = threading.Lock()

    @staticmethod
    def _fenced(key: str) -> bool:
        """Playlists (conditional, owner-marked) and filler (written once): the writes a stale owner must lose."""
        return key.endswith(".m3u8") or "/fill-" in key

    def put(self, key: str, data: bytes, headers: ObjectHeaders, *, durable: bool = True) -> None:
        if key.endswith(".m3u8"):
            self._put_playlist(key, bytes(data) + owner_marker(self.fence.token), headers)
        elif "/fill-" in key:
            self._put_once(key, data, headers)
        else:
            self.below.put(key, data, headers, durable=durable)

    def _put_playlist(self, key: str, body: bytes, headers: ObjectHeaders) -> None:
        for _ in range(ATTEMPTS):
            with self._lock:
                known = self._etags.get(key, _UNKNOWN)
            if known is _UNKNOWN:
                observed = self.storage.etag(key)  # first look ...
                self.fence.verify()  # ... then check the fence: what we saw is no successor's
                known = observed
            etag = known if isinstance(known, str) else None
            try:
                new = self.storage.put_conditional(key, body, headers, if_match=etag, if_absent=etag is None)
            except PreconditionFailedError:
                with self._lock:
                    self._etags.pop(key, None)  # changed under us: look again, check the fence again
                log.info("room=%s %s changed since owner %d last wrote it: checking the lease", self.fence.room,
                         key, self.fence.token)  # fmt: skip
                continue
            with self._lock:
                self._etags[key] = new
            return
        raise StorageError(f"conditional write lost {ATTEMPTS} times", key=key, backend=self.storage.name)

    def _put_once(self, key: str, data: bytes, headers: ObjectHeaders) -> None:
        try:
            self.storage.put_conditional(key, data, headers, if_absent=True)
        except PreconditionFailedError:
            log.info("room=%s %s exists already: the first version stays", self.fence.room, key)

    # -- the rest of Storage, unchanged ---------------------------------------------------------------------

    def sync(self) -> None:
        self.below.sync()

    def put_file(self, key: str, source: Path, headers: ObjectHeaders) -> None:
        if self._fenced(key):  # small: through put
            self.put(key, source.read_bytes(), headers)
        else:  # a segment from the spool, the replay download: streamed by the store below
            self.below.put_file(key, source, headers)

