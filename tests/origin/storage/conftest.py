"""Fixtures: a moto S3 server per test session, fake AWS credentials per test, and both backends."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from origin.storage.base import Storage
from origin.storage.filesystem import FilesystemStorage
from origin.storage.s3 import S3Storage
from tests.support.moto_server import MotoServer, apply_fake_aws_env, moto_server

_bucket_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    apply_fake_aws_env(monkeypatch)


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    """A fresh, empty bucket for this test."""
    return moto.create_bucket(f"spillway-test-{next(_bucket_numbers):04d}")


@pytest.fixture
def s3_storage(moto: MotoServer, bucket: str, aws_env: None) -> S3Storage:
    return S3Storage(bucket=bucket, prefix="pfx", endpoint_url=moto.endpoint_url, max_attempts=2)


@pytest.fixture
def fs_storage(tmp_path: Path) -> FilesystemStorage:
    root = tmp_path / "store"
    root.mkdir()
    return FilesystemStorage(root)


@pytest.fixture(params=["filesystem", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    """Each backend in turn: every contract test runs against both."""
    name = "fs_storage" if request.param == "filesystem" else "s3_storage"
    backend: Storage = request.getfixturevalue(name)
    return backend
