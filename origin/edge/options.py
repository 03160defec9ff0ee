"""Where the edge reads from, derived from the origin's settings (SPILLWAY_*), so a demo or a deployment
points the edge at the same storage the origin writes to without repeating it."""

from __future__ import annotations

from pathlib import Path

from origin.edge.errors import EdgeConfigError
from origin.edge.nginx_config import StorageBackend, origin_storage, s3_regional_endpoint, s3_storage
from origin.edge.nginx_process import EdgeOptions
from origin.settings import Settings


def origin_url_from_settings(settings: Settings) -> str:
    """The origin service as the edge reaches it: its bind address (a wildcard bind is reached on loopback)."""
    host, _, port = settings.bind.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def storage_from_settings(settings: Settings) -> StorageBackend:
    """Filesystem storage → the origin's `/rooms/` read path; S3 → the bucket, path-style, under the prefix."""
    if settings.storage == "filesystem":
        return origin_storage(origin_url_from_settings(settings))
    if not settings.s3_bucket:
        raise EdgeConfigError("SPILLWAY_S3_BUCKET is empty")
    if settings.s3_endpoint_url:
        endpoint = settings.s3_endpoint_url
    elif settings.s3_region:
        endpoint = s3_regional_endpoint(settings.s3_region)
    else:
        raise EdgeConfigError("S3 storage needs SPILLWAY_S3_REGION or SPILLWAY_S3_ENDPOINT_URL for the edge")
    return s3_storage(endpoint_url=endpoint, bucket=settings.s3_bucket, prefix=settings.s3_prefix)


def chosen_storage(
    settings: Settings,
    *,
    origin_url: str | None = None,
    s3_endpoint: str | None = None,
    s3_bucket: str = "",
    s3_prefix: str = "",
) -> StorageBackend:
    """What the caller named (an S3 endpoint, else an origin to read through), else what `settings` say."""
    if s3_endpoint:
        return s3_storage(endpoint_url=s3_endpoint, bucket=s3_bucket, prefix=s3_prefix)
    if origin_url:
        return origin_storage(origin_url)
    return storage_from_settings(settings)


def edge_options_from_settings(
    settings: Settings,
    *,
    listen_host: str = "127.0.0.1",
    listen_port: int | None = None,
    allowed_origins: tuple[str, ...] = (),
    prefix_dir: Path | None = None,
) -> EdgeOptions:
    """EdgeOptions for an edge in front of the origin described by `settings`."""
    return EdgeOptions(
        origin_url=origin_url_from_settings(settings),
        storage=storage_from_settings(settings),
        allowed_origins=allowed_origins,
        listen_host=listen_host,
        listen_port=listen_port,
        prefix_dir=prefix_dir,
    )
