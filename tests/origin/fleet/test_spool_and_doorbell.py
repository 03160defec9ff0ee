"""RedisSpool (objects S3 refused, bounded fleet-wide) and RedisDoorbell (rings reach a room's owner anywhere)."""

from __future__ import annotations

import asyncio

import pytest
import redis

from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.errors import UnavailableError
from origin.fleet.doorbell import RedisDoorbell
from origin.fleet.journal import RedisJournal
from origin.fleet.keys import room_keys
from origin.fleet.spool import RedisSpool
from origin.storage.memory import MemoryStorage
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy

KEY = layout.media_segment("launch", "20261126t090000z-aaaa1111", "a64", 3)


def test_the_spool_keeps_bytes_until_uploaded_and_bounds_the_fleet(redis_server: RedisServer, prefix: str) -> None:
    spool = RedisSpool(redis_server.client(), max_bytes=1 << 20, prefix=prefix)
    other = RedisSpool(redis_server.client(), max_bytes=1 << 20, prefix=prefix)  # another instance
    spool.put(KEY, b"x" * 600_000)
    with pytest.raises(UnavailableError):  # the fleet-wide cap, whichever instance asks
        other.put(layout.media_segment("other", "20261126t090000z-aaaa1111", "a64", 0), b"y" * 600_000)
    storage = MemoryStorage()
    other.upload(KEY, storage, headers_for(ObjectKind.SEGMENT))
    assert storage.get(KEY) == b"x" * 600_000
    other.delete(KEY)
    with pytest.raises(KeyError):
        spool.get(KEY)
    spool.put(KEY, b"z" * 600_000)  # the bytes were given back
    spool.delete_room("launch")
    with pytest.raises(KeyError):
        spool.upload(KEY, storage, headers_for(ObjectKind.SEGMENT))


def test_a_fresh_reading_decides_a_refusal(redis_server: RedisServer, prefix: str) -> None:
    now = [0.0]
    spool = RedisSpool(redis_server.client(), max_bytes=1 << 20, prefix=prefix, clock=lambda: now[0])
    other = RedisSpool(redis_server.client(), max_bytes=1 << 20, prefix=prefix, clock=lambda: now[0])
    spool.put(KEY, b"x" * 600_000)
    assert other.held() == 600_000
    other.delete(KEY)  # uploaded by another instance: the stale reading is not what refuses
    spool.put(KEY, b"z" * 600_000)
    assert spool.held(fresh=True) == 600_000
    other_room = layout.media_segment("other", "20261126t090000z-aaaa1111", "a64", 0)
    with pytest.raises(UnavailableError):
        other.put(other_room, b"y" * 500_000)
    now[0] += 2.0
    spool.put(KEY, b"w" * 100_000)  # a smaller object under the same key: the count follows the bytes
    assert other.held() == 100_000
    spool.delete_room("launch")
    assert spool.held(fresh=True) == 0


def test_a_put_or_delete_whose_answer_was_lost_counts_its_bytes_once(redis_server: RedisServer, prefix: str) -> None:
    """redis-py reruns a script whose answer was lost (a Redis restart): the room's count must follow the bytes
    (a separate INCRBY after the script counted such a put twice or not at all, and the cap drifted for good)."""
    count = room_keys(prefix, "launch").spool_bytes
    second = layout.media_segment("launch", "20261126t090000z-aaaa1111", "a64", 4)
    with TcpProxy(redis_server.port) as proxy:
        spool = RedisSpool(redis.Redis(port=proxy.port), max_bytes=1 << 20, prefix=prefix)
        spool.put(KEY, b"x" * 1000)  # the scripts are loaded (a lost NOSCRIPT proves nothing)
        spool.delete(KEY)
        proxy.lose_reply_to(b"EVALSHA")
        spool.put(KEY, b"x" * 1000)
        spool.put(second, b"y" * 300)
        assert proxy.lost == 1 and int(redis_server.client().get(count) or 0) == 1300
        proxy.lose_reply_to(b"EVALSHA")
        spool.delete(KEY)
        assert proxy.lost == 2 and int(redis_server.client().get(count) or 0) == 300
        assert spool.held(fresh=True) == 300
        spool.client.close()


def test_a_ring_reaches_the_owner_on_another_instance(redis_server: RedisServer, prefix: str) -> None:
    asyncio.run(_ring_the_owner(redis_server, prefix))


async def _ring_the_owner(redis_server: RedisServer, prefix: str) -> None:
    owner_journal = RedisJournal(redis_server.client(), worker="owner", prefix=prefix)
    ownership = owner_journal.try_own("launch")
    assert ownership is not None
    heard: asyncio.Queue[tuple[object, ...]] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def bell(worker: str, owns: bool) -> RedisDoorbell:
        return RedisDoorbell(redis_server.client(), prefix=prefix, worker=worker, owns=lambda room: owns,
                             on_ring=lambda room, rendition=None: heard.put_nowait((worker, room, rendition)),
                             on_durable=lambda t: heard.put_nowait((worker, t)))  # fmt: skip

    owner, ingest = bell("owner", True), bell("ingest", False)
    owner.open(loop)
    ingest.open(loop)
    try:
        await asyncio.sleep(0.3)  # subscriptions in place
        ingest.ring("launch", 1234.5)
        got = {await asyncio.wait_for(heard.get(), 5) for _ in range(3)}
        assert got == {("ingest", "launch", None), ("owner", 1234.5), ("owner", "launch", None)}
        ingest.ring("launch", 1235.5, "a64")  # a segment's ring names its rendition (the owner gathers a ladder)
        got = {await asyncio.wait_for(heard.get(), 5) for _ in range(3)}
        assert got == {("ingest", "launch", "a64"), ("owner", 1235.5), ("owner", "launch", "a64")}
    finally:
        owner.close()
        ingest.close()
        ownership.release()
        owner_journal.close()
