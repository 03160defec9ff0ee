"""Headers of the filesystem backend's files: a directory's shared headers file, and a sidecar for an object
whose headers differ (packed objects carry theirs in their records: packs.py).

    rooms/r1/live/.~headers.json              Content-Type/Cache-Control shared by the directory's objects
    rooms/r1/live/.a48.m3u8~headers.json      an object's own headers, only when they differ (sidecar)
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path

from origin.contract.cache_policy import ERROR_CACHE_CONTROL, ObjectHeaders
from origin.errors import StorageError
from origin.storage.atomic_files import INTERNAL_MARK, create_if_absent, read_or_none, write_atomic

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = "~headers.json"
# Headers shared by the objects of one directory (a media directory holds thousands of segments with identical
# headers): written once, before the first object; an object whose headers differ gets its own sidecar.
DIR_HEADERS_NAME = f".{INTERNAL_MARK}headers.json"
# Headers of an object found without a sidecar (copied in by hand; `put` never leaves one behind).
FALLBACK_HEADERS = ObjectHeaders(
    content_type="application/octet-stream", cache_control=ERROR_CACHE_CONTROL
)
_DIR_CACHE_SIZE = 4096


def sidecar_path(path: str) -> str:
    directory, _, name = path.rpartition("/")
    return f"{directory}/.{name}{SIDECAR_SUFFIX}"


@functools.lru_cache(maxsize=64)
def _encode_headers(headers: ObjectHeaders) -> bytes:
    doc = {"content_type": headers.content_type, "cache_control": headers.cache_control}
    return json.dumps(doc, sort_keys=True).encode()


def _decode_headers(raw: bytes) -> ObjectHeaders:
    doc = json.loads(raw)
    return ObjectHeaders(content_type=str(doc["content_type"]), cache_control=str(doc["cache_control"]))


class HeaderFiles:
    """Writes and reads the headers files of one storage root (the shared file of each directory is cached)."""

    def __init__(self, *, backend: str) -> None:
        self.backend = backend
        self._dir_defaults: dict[str, bytes] = {}

    def store(self, directory: str, name: str, headers: ObjectHeaders, *, durable: bool) -> None:
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

    def read(self, key: str, path: Path) -> ObjectHeaders:
        """The headers of the file object at `path` (OSError as raised; corrupt headers: StorageError)."""
        try:
            raw = read_or_none(Path(sidecar_path(str(path)))) or (path.parent / DIR_HEADERS_NAME).read_bytes()
        except FileNotFoundError:
            log.warning("filesystem object %s has no headers sidecar; serving fallback headers", key)
            return FALLBACK_HEADERS
        try:
            return _decode_headers(raw)
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"corrupt headers sidecar: {exc}"
            raise StorageError(msg, key=key, backend=self.backend, retryable=False) from exc
