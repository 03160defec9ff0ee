"""S3 backend against a real moto server: retries through the fault proxy, headers on the wire, public GET."""

from __future__ import annotations

import hashlib
import logging
import os
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.errors import StorageError, ValidationError
from origin.storage.base import abandon_when
from origin.storage.retry import RetryPolicy
from origin.storage.s3 import S3Storage, normalize_prefix
from tests.support.fault_proxy import Delay, Drop, FaultProxy, Hang, Reply
from tests.support.moto_server import MotoServer

SEGMENT = headers_for(ObjectKind.SEGMENT)
PLAYLIST = headers_for(ObjectKind.LIVE_PLAYLIST)
KEY = layout.media_segment("retry-room", "20261126t090301z-3f9a1c0d", "a48", 7)
POLICY = RetryPolicy(max_attempts=4, base_delay_s=0.05, throttle_base_delay_s=0.1, max_delay_s=0.2)


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[FaultProxy]:
    with FaultProxy(moto.endpoint_url, seed=1) as p:
        yield p


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.sleeps: list[float] = []

    def on_error(self, backend: str, kind: str) -> None:
        self.events.append((backend, kind))

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(seconds)


def _storage(
    proxy: FaultProxy, bucket: str, rec: Recorder, *, read_timeout_s: float = 5.0, policy: RetryPolicy = POLICY
) -> S3Storage:
    return S3Storage(
        bucket=bucket,
        endpoint_url=proxy.url,
        read_timeout_s=read_timeout_s,
        connect_timeout_s=1.0,
        retry_policy=policy,
        on_error=rec.on_error,
        sleep=rec.sleep,
        rand=lambda: 0.5,
    )


@pytest.mark.usefixtures("aws_env")
def test_transient_503s_are_retried_until_the_put_succeeds(
    proxy: FaultProxy, bucket: str, moto: MotoServer, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    storage = _storage(proxy, bucket, rec)
    proxy.fail_next(3, Reply(status=503), methods={"PUT"})
    with caplog.at_level(logging.WARNING, logger="origin.storage.s3"):
        storage.put(KEY, b"segment-bytes", SEGMENT)
    assert proxy.counts()["PUT"] == 4
    assert proxy.faulted()["PUT"] == 3
    assert proxy.forwarded()["PUT"] == 1
    assert rec.events == [("s3", "server")] * 3
    assert rec.sleeps == pytest.approx([0.025, 0.05, 0.1])  # rand 0.5 x min(0.2, 0.05 * 2**n)
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 3 and all(KEY in r.getMessage() for r in retries)
    assert moto.client().get_object(Bucket=bucket, Key=KEY)["Body"].read() == b"segment-bytes"


@pytest.mark.usefixtures("aws_env")
def test_throttling_and_dropped_connections_are_retried(proxy: FaultProxy, bucket: str) -> None:
    rec = Recorder()
    storage = _storage(proxy, bucket, rec)
    proxy.fail_next(1, Reply(status=503, code="SlowDown"), methods={"PUT"})
    proxy.fail_next(1, Drop(), methods={"PUT"})
    storage.put(KEY, b"x", SEGMENT)
    assert rec.events == [("s3", "throttle"), ("s3", "connection")]
    assert rec.sleeps == pytest.approx([0.05, 0.05])  # throttle base 0.1; then base 0.05 x 2
    assert proxy.counts()["PUT"] == 3


@pytest.mark.usefixtures("aws_env")
def test_permanent_500_gives_up_after_max_attempts(proxy: FaultProxy, bucket: str) -> None:
    rec = Recorder()
    storage = _storage(proxy, bucket, rec)
    proxy.set_random_faults(1.0, [Reply(status=500)], methods={"PUT"})
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        storage.put(KEY, b"x", SEGMENT)
    elapsed = time.monotonic() - started
    assert info.value.key == KEY and info.value.backend == "s3" and info.value.retryable
    assert proxy.counts()["PUT"] == POLICY.max_attempts
    assert proxy.forwarded().get("PUT", 0) == 0
    assert rec.events == [("s3", "server")] * POLICY.max_attempts
    assert elapsed < 3.0


@pytest.mark.usefixtures("aws_env")
def test_an_abandoned_write_is_not_retried(proxy: FaultProxy, bucket: str) -> None:
    """A hedge won (or a newer playlist version was issued): the failed attempt is never sent again."""
    rec = Recorder()
    storage = _storage(proxy, bucket, rec)
    proxy.fail_next(3, Reply(status=503), methods={"PUT"})
    with abandon_when(lambda: True), pytest.raises(StorageError):
        storage.put(KEY, b"x", SEGMENT)
    assert proxy.counts()["PUT"] == 1
    assert rec.sleeps == []


@pytest.mark.usefixtures("aws_env")
def test_hanging_endpoint_times_out_and_is_retried(proxy: FaultProxy, bucket: str) -> None:
    rec = Recorder()
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.05, max_delay_s=0.1)
    storage = _storage(proxy, bucket, rec, read_timeout_s=0.5, policy=policy)
    proxy.set_random_faults(1.0, [Hang(seconds=30.0)], methods={"PUT"})
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        storage.put(KEY, b"x", SEGMENT)
    elapsed = time.monotonic() - started
    assert info.value.retryable
    assert rec.events == [("s3", "timeout")] * 3
    assert proxy.counts()["PUT"] == 3
    assert 1.5 <= elapsed < 4.0  # three 0.5 s read timeouts plus short backoffs


@pytest.mark.usefixtures("aws_env")
def test_delayed_write_within_the_timeout_succeeds_without_retry(proxy: FaultProxy, bucket: str) -> None:
    rec = Recorder()
    storage = _storage(proxy, bucket, rec, read_timeout_s=2.0)
    proxy.fail_next(1, Hang(seconds=0.3), methods={"HEAD"})  # unrelated method: must not be consumed by PUT
    proxy.set_random_faults(1.0, [Reply(status=503)], methods={"POST"})  # nor this
    proxy.fail_next(1, Delay(seconds=0.3), methods={"PUT"})
    storage.put(KEY, b"late", SEGMENT)
    assert rec.events == []
    assert proxy.counts() == {"PUT": 1}
    assert storage.get(KEY) == b"late"


@pytest.mark.usefixtures("aws_env")
def test_403_is_not_retried(proxy: FaultProxy, bucket: str) -> None:
    rec = Recorder()
    storage = _storage(proxy, bucket, rec)
    proxy.fail_next(1, Reply(status=403, code="AccessDenied"), methods={"PUT"})
    with pytest.raises(StorageError) as info:
        storage.put(KEY, b"x", SEGMENT)
    assert not info.value.retryable
    assert proxy.counts()["PUT"] == 1
    assert rec.events == [("s3", "client")]
    assert rec.sleeps == []


@pytest.mark.usefixtures("aws_env")
def test_get_retries_5xx_but_not_a_missing_key(proxy: FaultProxy, bucket: str) -> None:
    rec = Recorder()
    storage = _storage(proxy, bucket, rec)
    storage.put(KEY, b"payload", SEGMENT)
    proxy.fail_next(2, Reply(status=500), methods={"GET"})
    assert storage.get(KEY) == b"payload"
    assert proxy.counts()["GET"] == 3
    proxy.reset_counts()
    with pytest.raises(KeyError):
        storage.get(KEY + ".missing")
    assert proxy.counts() == {"GET": 1}
    assert not storage.exists(KEY + ".missing")
    assert rec.events == [("s3", "server")] * 2


@pytest.mark.usefixtures("aws_env")
def test_put_file_streams_a_large_file_without_reading_it_into_memory(moto: MotoServer, bucket: str,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    source = tmp_path / "replay.m4a"
    chunk = os.urandom(1 << 20)
    with source.open("wb") as fh:
        for _ in range(24):  # 24 MB: a replay download of ~25 minutes at 128 kb/s
            fh.write(chunk)
    storage = S3Storage(bucket=bucket, endpoint_url=moto.endpoint_url)
    download = headers_for(ObjectKind.DOWNLOAD)
    tracemalloc.start()
    try:
        storage.put_file("rooms/r/replay.m4a", source, download)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"put_file held {peak >> 20} MB"  # reading it whole would be ≥ 24 MB
    got = moto.client().get_object(Bucket=bucket, Key="rooms/r/replay.m4a")
    assert got["ContentLength"] == 24 << 20 and got["ContentType"] == download.content_type
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(source.read_bytes()).digest()


@pytest.mark.usefixtures("aws_env")
def test_put_file_retries_from_the_first_byte(proxy: FaultProxy, bucket: str, moto: MotoServer,
                                              tmp_path: Path) -> None:  # fmt: skip
    source = tmp_path / "replay.m4a"
    source.write_bytes(os.urandom(300_000))
    storage = _storage(proxy, bucket, Recorder())
    proxy.fail_next(2, Reply(status=503), methods={"PUT"})
    storage.put_file("rooms/r/replay.m4a", source, headers_for(ObjectKind.DOWNLOAD))
    assert proxy.counts()["PUT"] == 3
    assert moto.client().get_object(Bucket=bucket, Key="rooms/r/replay.m4a")["Body"].read() == source.read_bytes()
    with pytest.raises(FileNotFoundError):
        storage.put_file("rooms/r/other.m4a", tmp_path / "missing.m4a", headers_for(ObjectKind.DOWNLOAD))


@pytest.mark.usefixtures("aws_env")
def test_put_sends_content_type_and_cache_control(moto: MotoServer, bucket: str) -> None:
    storage = S3Storage(bucket=bucket, prefix="/live/", endpoint_url=moto.endpoint_url)
    key = layout.live_playlist("wire-room", "a64")
    storage.put(key, b"#EXTM3U\n", PLAYLIST)
    head = moto.client().head_object(Bucket=bucket, Key="live/" + key)
    assert head["ContentType"] == PLAYLIST.content_type
    assert head["CacheControl"] == PLAYLIST.cache_control
    assert storage.list("") == [key]


@pytest.mark.usefixtures("aws_env")
def test_anonymous_get_of_public_read_object(moto: MotoServer, bucket: str) -> None:
    public = S3Storage(bucket=bucket, endpoint_url=moto.endpoint_url, acl="public-read")
    private = S3Storage(bucket=bucket, endpoint_url=moto.endpoint_url)
    seg = layout.media_segment("public-room", "20261126t090301z-3f9a1c0d", "a48", 0)
    body = bytes(range(256)) * 64
    public.put(seg, body, SEGMENT)
    private.put(seg + ".private", body, SEGMENT)
    with urllib.request.urlopen(f"{moto.endpoint_url}/{bucket}/{seg}", timeout=5) as resp:
        assert resp.status == 200
        assert resp.read() == body
        assert resp.headers["Content-Type"] == "audio/mp4"
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{moto.endpoint_url}/{bucket}/{seg}.private", timeout=5)
    assert info.value.code == 403


def test_prefix_normalization() -> None:
    assert normalize_prefix("") == ""
    assert normalize_prefix("/") == ""
    assert normalize_prefix("spillway") == "spillway/"
    assert normalize_prefix("/a/b/") == "a/b/"
    for bad in ("a//b", "../x", "a b"):
        with pytest.raises(ValidationError):
            normalize_prefix(bad)


def test_empty_bucket_rejected() -> None:
    with pytest.raises(ValidationError):
        S3Storage(bucket="")
