"""Build the configured Storage backend from plain values (the settings object passes them in)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from origin.errors import ValidationError
from origin.storage.base import Storage
from origin.storage.filesystem import FilesystemStorage
from origin.storage.s3 import ErrorCallback, S3Storage

BackendName = Literal["filesystem", "s3"]


def build_storage(
    *,
    backend: BackendName,
    root: Path | None = None,
    bucket: str = "",
    prefix: str = "",
    region: str | None = None,
    endpoint_url: str | None = None,
    acl: str | None = None,
    timeout_s: float = 2.0,
    on_error: ErrorCallback | None = None,
) -> Storage:
    """Return a ready-to-use backend. The filesystem root is created if missing.

    Raises ValidationError for an incomplete configuration (no root, no bucket, unknown backend).
    """
    if backend == "filesystem":
        if root is None:
            raise ValidationError("filesystem storage needs a root directory")
        root.mkdir(parents=True, exist_ok=True)
        return FilesystemStorage(root)
    if backend == "s3":
        if not bucket:
            raise ValidationError("s3 storage needs a bucket (SPILLWAY_S3_BUCKET)")
        return S3Storage(
            bucket=bucket,
            prefix=prefix,
            region=region or None,
            endpoint_url=endpoint_url or None,
            acl=acl or None,
            # A live segment is tens of kB: a write that has not answered in a couple of seconds is retried
            # rather than waited for, so one hung connection cannot hold the room's playlists for long.
            connect_timeout_s=min(1.0, timeout_s),
            read_timeout_s=timeout_s,
            on_error=on_error,
        )
    raise ValidationError(f"unknown storage backend {backend!r}")
