"""Fixtures for the fleet's parts: a moto S3 server (versioned buckets keep every write), Redis key prefixes."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest

from origin.fleet.journal import RedisJournal
from origin.storage.s3 import S3Storage
from tests.support.moto_server import MotoServer, apply_fake_aws_env, moto_server
from tests.support.redis_server import RedisServer

_buckets = itertools.count(1)


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with moto_server(atomic_puts=True) as server:
        yield server


@pytest.fixture
def s3(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> S3Storage:
    """A fresh bucket with versioning on: the tests read every version ever written, in order."""
    apply_fake_aws_env(monkeypatch)
    bucket = moto.create_bucket(f"fleet-test-{next(_buckets):04d}")
    moto.client().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return S3Storage(bucket=bucket, endpoint_url=moto.endpoint_url, max_attempts=2)


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def journals(redis_server: RedisServer, prefix: str) -> Iterator[tuple[RedisJournal, RedisJournal]]:
    """Two instances' journals on one Redis, with a 1 s lease."""
    pair = tuple(RedisJournal(redis_server.client(), worker=f"instance-{n}", prefix=prefix, lease_s=1.0)
                 for n in (1, 2))  # fmt: skip
    yield pair[0], pair[1]
    for j in pair:
        j.close()


def versions(s3: S3Storage, key: str) -> list[bytes]:
    """Every version of `key` ever written, oldest first."""
    client = s3.client
    listing = client.list_object_versions(Bucket=s3.bucket, Prefix=key)
    found = [v for v in listing.get("Versions", []) if v["Key"] == key][::-1]  # S3 lists a key's newest first
    return [client.get_object(Bucket=s3.bucket, Key=key, VersionId=v["VersionId"])["Body"].read() for v in found]
