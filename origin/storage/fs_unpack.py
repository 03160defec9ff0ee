"""An ended broadcast's packed objects turned into files of their own (the filesystem backend's `unpack`)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from origin.storage.atomic_files import write_atomic
from origin.storage.keys import validate_prefix
from origin.storage.packs import PackError, is_pack

if TYPE_CHECKING:
    from origin.storage.filesystem import FilesystemStorage

logger = logging.getLogger(__name__)


def unpack(storage: FilesystemStorage, prefix: str, *, pause_every: int = 100, pause_s: float = 0.005) -> int:
    """Turn every packed object under `prefix` into a file of its own, then remove the packs: an ended
    broadcast's storage is a plain tree of objects again (for backups, a sync to S3, any static server).
    Idempotent; run off the event loop, after the last write under `prefix`. It pauses a moment every
    `pause_every` objects, so a long broadcast's tens of thousands of files do not starve the live rooms."""
    base = storage.path_for(validate_prefix(prefix).rstrip("/")) if prefix.strip("/") else storage.root
    moved = 0
    for dirpath, _dirnames, filenames in os.walk(base):
        if not any(is_pack(n) for n in filenames):
            continue
        unreadable = 0
        try:
            for entry in storage.packs.entries(dirpath):
                path = os.path.join(dirpath, entry.name)
                if os.path.exists(path):
                    continue
                try:
                    data = storage.packs.read(dirpath, entry)
                except PackError as exc:  # absent to readers already; its pack is kept as evidence
                    logger.error("unpacking %s: %s", dirpath, exc)
                    unreadable += 1
                    continue
                storage.header_files.store(dirpath, entry.name, entry.headers, durable=False)
                write_atomic(Path(path), data, durable=False)
                moved += 1
                if moved % pause_every == 0:
                    time.sleep(pause_s)
            storage.sync()  # the files are durable before the packs go
            if not unreadable:
                storage.packs.remove_all(dirpath)
        except OSError as exc:
            raise storage.error(prefix, "unpack", exc) from exc
    return moved
