"""build_storage: the settings-to-backend seam."""

from __future__ import annotations

from pathlib import Path

import pytest

from origin.errors import ValidationError
from origin.storage.factory import build_storage
from origin.storage.filesystem import FilesystemStorage
from origin.storage.s3 import S3Storage
from tests.support.moto_server import MotoServer


def test_filesystem_backend_creates_its_root(tmp_path: Path) -> None:
    storage = build_storage(backend="filesystem", root=tmp_path / "a" / "b")
    assert isinstance(storage, FilesystemStorage)
    assert (tmp_path / "a" / "b").is_dir()
    storage.check()


@pytest.mark.usefixtures("aws_env")
def test_s3_backend_from_values(moto: MotoServer, bucket: str) -> None:
    events: list[tuple[str, str]] = []
    storage = build_storage(
        backend="s3",
        bucket=bucket,
        prefix="spillway",
        region="us-east-1",
        endpoint_url=moto.endpoint_url,
        acl="public-read",
        on_error=lambda backend, kind: events.append((backend, kind)),
    )
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix, storage.acl) == (bucket, "spillway/", "public-read")
    storage.check()
    with pytest.raises(KeyError):
        storage.get("rooms/x/status.json")
    assert events == []


@pytest.mark.parametrize(
    "kwargs",
    [{"backend": "filesystem"}, {"backend": "s3", "bucket": ""}, {"backend": "ftp", "root": Path("/tmp")}],
    ids=["fs-without-root", "s3-without-bucket", "unknown"],
)
def test_incomplete_configuration_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        build_storage(**kwargs)  # type: ignore[arg-type]
