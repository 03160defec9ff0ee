"""Hedged writes: the I/O half, over a scripted in-memory backend and over S3 (moto) behind the fault proxy."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from origin.contract.cache_policy import ObjectHeaders, ObjectKind, headers_for
from origin.errors import StorageError
from origin.storage.base import given_up
from origin.storage.hedge import HedgedStorage
from origin.storage.hedge_policy import HedgePolicy
from origin.storage.memory import MemoryStorage
from origin.storage.s3 import S3Storage
from tests.support.fault_proxy import Delay, FaultProxy, Hang, Reply
from tests.support.moto_server import MotoServer

SEGMENT = headers_for(ObjectKind.SEGMENT)
PLAYLIST = headers_for(ObjectKind.LIVE_PLAYLIST)
FAST = HedgePolicy(initial_delay_s=0.05, min_delay_s=0.05, max_delay_s=0.05, repair_delay_s=0.05)


@dataclass(kw_only=True)
class ScriptedStorage(MemoryStorage):
    """Each put takes the next action of `script` ("ok", "fail", or "hold": wait for `release`, then store)."""

    script: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    abandoned: list[bool] = field(default_factory=list)  # given_up() seen by each held put once released

    def put(self, key: str, data: bytes, headers: ObjectHeaders, *, durable: bool = True) -> None:
        with self._lock:
            action = self.script.pop(0) if self.script else "ok"
        if action == "fail":
            raise StorageError("scripted failure", key=key, backend=self.name)
        if action == "hold":
            assert self.release.wait(10)
            self.abandoned.append(given_up())
        super().put(key, data, headers, durable=durable)


@pytest.fixture
def inner() -> Iterator[ScriptedStorage]:
    storage = ScriptedStorage()
    yield storage
    storage.release.set()


def test_a_fast_write_is_not_hedged(inner: ScriptedStorage) -> None:
    hedged = HedgedStorage(inner, policy=FAST)
    hedged.put("rooms/r/media/s/a64/000000.m4s", b"x", SEGMENT)
    assert (hedged.hedged, hedged.won) == (0, 0)
    assert inner.puts == ["rooms/r/media/s/a64/000000.m4s"]


def test_a_hung_write_is_hedged_and_the_hedge_wins(inner: ScriptedStorage) -> None:
    inner.script = ["hold"]
    hedged = HedgedStorage(inner, policy=FAST)
    started = time.monotonic()
    hedged.put("rooms/r/media/s/a64/000001.m4s", b"seg", SEGMENT)
    assert time.monotonic() - started < 1.0
    assert (hedged.hedged, hedged.won) == (1, 1)
    assert inner.get("rooms/r/media/s/a64/000001.m4s") == b"seg"
    inner.release.set()
    deadline = time.monotonic() + 5
    while not inner.abandoned and time.monotonic() < deadline:
        time.sleep(0.01)
    assert inner.abandoned == [True]  # the loser is told it was abandoned: a backend stops retrying it


def test_three_attempts_at_most_then_the_first_to_answer(inner: ScriptedStorage) -> None:
    inner.script = ["hold", "hold", "hold"]
    hedged = HedgedStorage(inner, policy=FAST)
    done = threading.Event()
    threading.Thread(target=lambda: (hedged.put("k/a.m4s", b"a", SEGMENT), done.set()), daemon=True).start()
    time.sleep(0.5)
    assert not done.is_set() and hedged.hedged == 2  # max_attempts=3: two hedges, then it waits
    inner.release.set()
    assert done.wait(5)


def test_every_attempt_failing_raises(inner: ScriptedStorage) -> None:
    inner.script = ["fail"]
    hedged = HedgedStorage(inner, policy=FAST)
    with pytest.raises(StorageError):
        hedged.put("k/b.m4s", b"b", SEGMENT)
    assert not inner.exists("k/b.m4s")


def test_a_failing_first_attempt_while_a_hedge_is_running_does_not_fail_the_write(inner: ScriptedStorage) -> None:
    inner.script = ["hold", "ok"]
    hedged = HedgedStorage(inner, policy=FAST)
    hedged.put("k/c.m4s", b"c", SEGMENT)
    assert inner.get("k/c.m4s") == b"c"


def test_the_budget_stops_hedging(inner: ScriptedStorage) -> None:
    inner.script = ["hold"]
    hedged = HedgedStorage(inner, policy=HedgePolicy(initial_delay_s=0.05, min_delay_s=0.05, max_delay_s=0.05,
                                                      budget=0.0, burst=0))  # fmt: skip
    done = threading.Event()
    threading.Thread(target=lambda: (hedged.put("k/d.m4s", b"d", SEGMENT), done.set()), daemon=True).start()
    assert not done.wait(0.3) and hedged.hedged == 0
    inner.release.set()
    assert done.wait(5)


def test_an_older_playlist_version_landing_last_is_repaired(inner: ScriptedStorage) -> None:
    key = "rooms/r/live/a64.m3u8"
    inner.script = ["hold"]  # version 1's first attempt hangs; its hedge wins
    hedged = HedgedStorage(inner, policy=FAST)
    hedged.put(key, b"v1", PLAYLIST)
    hedged.put(key, b"v2", PLAYLIST)
    assert inner.text(key) == "v2"
    inner.release.set()  # the hung v1 attempt now lands, after v2
    deadline = time.monotonic() + 5
    while hedged.repaired == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hedged.repaired == 1
    assert inner.text(key) == "v2"
    assert inner.puts.count(key) == 4  # v1 hedge, v2, the late v1, the repair


def test_a_late_attempt_of_the_newest_version_needs_no_repair(inner: ScriptedStorage) -> None:
    key = "rooms/r/live/a48.m3u8"
    inner.script = ["hold"]
    hedged = HedgedStorage(inner, policy=FAST)
    hedged.put(key, b"v1", PLAYLIST)
    inner.release.set()
    time.sleep(0.3)
    assert hedged.repaired == 0 and inner.text(key) == "v1"


def test_s3_write_through_a_hung_connection_answers_at_once(
    moto: MotoServer, bucket: str, aws_env: None
) -> None:
    with FaultProxy(moto.endpoint_url, seed=3) as proxy:
        s3 = S3Storage(bucket=bucket, endpoint_url=proxy.url, read_timeout_s=2.0, connect_timeout_s=1.0)
        hedged = HedgedStorage(s3, policy=HedgePolicy(initial_delay_s=0.2))
        proxy.fail_next(1, Hang(seconds=5.0), methods={"PUT"})
        started = time.monotonic()
        hedged.put("rooms/r/media/s/a64/000002.m4s", b"segment bytes", SEGMENT)
        elapsed = time.monotonic() - started
        assert elapsed < 1.0, f"the hedged write took {elapsed:.2f} s behind a hung connection"
        assert (hedged.hedged, hedged.won) == (1, 1)
        assert s3.get("rooms/r/media/s/a64/000002.m4s") == b"segment bytes"
        hedged.close()


def _versions(moto: MotoServer, bucket: str, key: str) -> list[bytes]:
    """Every version S3 stored under `key`, oldest first (the bucket is versioned)."""
    client = moto.client()
    listed = client.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    ordered = listed[::-1]  # S3 lists a key's versions newest first
    return [client.get_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])["Body"].read() for v in ordered]


def test_s3_a_delayed_older_playlist_version_never_lands_over_a_newer_one(
    moto: MotoServer, bucket: str, aws_env: None
) -> None:
    """The chaos run's case: version 1's first attempt is held by the network for 1.5 s, a hedge stores it,
    version 2 is stored, then the held request reaches S3. Its If-Match names version 0's ETag: refused."""
    moto.client().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key = "rooms/r/live/a64.m3u8"
    with FaultProxy(moto.endpoint_url, seed=5) as proxy:
        s3 = S3Storage(bucket=bucket, endpoint_url=proxy.url, read_timeout_s=5.0, connect_timeout_s=1.0)
        hedged = HedgedStorage(s3, policy=HedgePolicy(initial_delay_s=0.2))
        hedged.put(key, b"#EXTM3U\n# v0\n", PLAYLIST)
        proxy.fail_next(1, Delay(seconds=1.5), methods={"PUT"})
        hedged.put(key, b"#EXTM3U\n# v1\n", PLAYLIST)
        assert hedged.hedged == 1
        hedged.put(key, b"#EXTM3U\n# v2\n", PLAYLIST)
        deadline = time.monotonic() + 5
        while proxy.forwarded().get("PUT", 0) < proxy.counts()["PUT"] and time.monotonic() < deadline:
            time.sleep(0.05)  # until the held request was handed to S3
        time.sleep(0.3)
        assert s3.get(key) == b"#EXTM3U\n# v2\n"
        assert _versions(moto, bucket, key) == [b"#EXTM3U\n# v0\n", b"#EXTM3U\n# v1\n", b"#EXTM3U\n# v2\n"]
        hedged.close()


def test_s3_an_ambiguous_failure_that_landed_counts_as_written(moto: MotoServer, bucket: str, aws_env: None) -> None:
    """A 500 after the write happened: the backend's retry loses its condition (the object is this version
    already); the ETag equals the body's MD5, so the write succeeds without writing again."""
    key = "rooms/r/live/a64.m3u8"
    with FaultProxy(moto.endpoint_url, seed=6) as proxy:
        s3 = S3Storage(bucket=bucket, endpoint_url=proxy.url, read_timeout_s=5.0, connect_timeout_s=1.0)
        hedged = HedgedStorage(s3, policy=HedgePolicy(initial_delay_s=2.0, max_delay_s=2.0))
        hedged.put(key, b"#EXTM3U\n# v0\n", PLAYLIST)
        proxy.fail_next(1, Reply(status=500, forward_first=True), methods={"PUT"})
        hedged.put(key, b"#EXTM3U\n# v1\n", PLAYLIST)
        assert s3.get(key) == b"#EXTM3U\n# v1\n"
        hedged.put(key, b"#EXTM3U\n# v2\n", PLAYLIST)  # the chain goes on from the ETag it learnt
        assert s3.get(key) == b"#EXTM3U\n# v2\n"
        hedged.close()
