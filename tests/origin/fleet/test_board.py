"""RedisBoard (the fleet's low-latency playlists) and the doorbell's playlist ring, on a real redis-server."""

from __future__ import annotations

import asyncio
import time

import redis

from origin.fleet.board import LL_TTL_S, RedisBoard, board_key
from origin.fleet.doorbell import RedisDoorbell
from tests.support.redis_server import RedisServer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_what_the_owner_writes_every_instance_reads(redis_server: RedisServer, prefix: str) -> None:
    owner, other = RedisBoard(redis_server.client(), prefix=prefix), RedisBoard(redis_server.client(), prefix=prefix)
    assert other.read("launch", "a64") is None
    owner.write("launch", "a64", "#EXTM3U\n# full\n", "#EXTM3U\n# delta\n")
    other.forget("launch")  # the owner's ring
    assert other.read("launch", "a64") == "#EXTM3U\n# full\n"
    assert other.read("launch", "a64", skip=True) == "#EXTM3U\n# delta\n"
    assert 0 < redis_server.client().ttl(board_key(prefix, "launch")) <= LL_TTL_S  # a dead owner's board goes
    owner.clear("launch")
    other.forget("launch")
    assert other.read("launch", "a64") is None


def test_reads_are_kept_until_a_ring_or_a_quarter_second(redis_server: RedisServer, prefix: str) -> None:
    clock = Clock()
    owner = RedisBoard(redis_server.client(), prefix=prefix)
    reader = RedisBoard(redis_server.client(), prefix=prefix, clock=clock)
    owner.write("launch", "a64", "v1", "v1-skip")
    assert reader.read("launch", "a64") == "v1"
    owner.write("launch", "a64", "v2", "v2-skip")
    assert reader.read("launch", "a64") == "v1"  # thousands of held reloads: one HGET per ring, not each
    reader.forget("launch")  # the ring
    assert reader.read("launch", "a64") == "v2"
    owner.write("launch", "a64", "v3", "v3-skip")
    clock.now += 0.3  # the ring was lost: staleness is bounded
    assert reader.read("launch", "a64") == "v3"


class CountingClient:
    """The real client, its HGETs counted and (optionally) slowed: a Redis that answers late."""

    def __init__(self, client: redis.Redis[bytes], delay_s: float = 0.0) -> None:
        self.client, self.delay_s, self.hgets = client, delay_s, 0

    def hget(self, key: str, field: str) -> bytes | None:
        self.hgets += 1
        answer = self.client.hget(key, field)
        time.sleep(self.delay_s)  # the answer comes back late
        return answer


def test_held_reloads_share_one_hget_off_the_loop_and_a_ring_starts_a_new_one(redis_server: RedisServer,
                                                                            prefix: str) -> None:  # fmt: skip
    owner = RedisBoard(redis_server.client(), prefix=prefix)
    counting = CountingClient(redis_server.client(), delay_s=0.2)
    reader = RedisBoard(counting, prefix=prefix, clock=Clock())  # type: ignore[arg-type]  # kept until a ring
    owner.write("launch", "a64", "v1", "v1-skip")

    async def scenario() -> None:
        ticks = 0

        async def ticker() -> None:  # the loop keeps turning while Redis is slow
            nonlocal ticks
            for _ in range(15):
                await asyncio.sleep(0.01)
                ticks += 1

        async def reads() -> tuple[list[str | None], int]:
            texts = await asyncio.gather(*(reader.aread("launch", "a64") for _ in range(500)))
            return texts, ticks  # how far the ticker got while the reads were waiting

        (texts, ticks_meanwhile), _ = await asyncio.gather(reads(), ticker())
        assert set(texts) == {"v1"} and counting.hgets == 1  # 500 held reloads, one HGET
        assert ticks_meanwhile >= 10  # the loop kept turning during the 0.2 s HGET (a blocking read: 0)
        assert await reader.aread("launch", "a64") == "v1" and counting.hgets == 1  # kept until a ring
        owner.write("launch", "a64", "v2", "v2-skip")
        reader.forget("launch")  # ring 1
        slow = asyncio.ensure_future(reader.aread("launch", "a64"))  # its HGET is in flight when ring 2 comes
        await asyncio.sleep(0.05)
        owner.write("launch", "a64", "v3", "v3-skip")
        reader.forget("launch")  # ring 2
        assert await reader.aread("launch", "a64") == "v3"  # a new HGET, not the flight from before the ring
        assert await slow == "v2" and counting.hgets == 3
        assert await reader.aread("launch", "a64") == "v3" and counting.hgets == 3  # the older answer was not kept

    asyncio.run(scenario())


def test_redis_down_answers_none_and_drops_writes(prefix: str) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_timeout=0.2, socket_connect_timeout=0.2)
    board = RedisBoard(dead, prefix=prefix)
    board.write("launch", "a64", "v1", "v1-skip")  # logged: the standard playlists are written anyway
    assert board.read("launch", "a64") is None  # the origin answers the standard playlist from storage


def test_a_playlist_ring_wakes_every_other_worker(redis_server: RedisServer, prefix: str) -> None:
    asyncio.run(_playlist_ring(redis_server, prefix))


async def _playlist_ring(redis_server: RedisServer, prefix: str) -> None:
    heard: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def bell(worker: str) -> RedisDoorbell:
        return RedisDoorbell(redis_server.client(), prefix=prefix, worker=worker, owns=lambda room: False,
                             on_ring=lambda room, rendition=None: None, on_durable=lambda t: None,
                             on_playlist=lambda room: heard.put_nowait((worker, room)))  # fmt: skip

    bells = [bell(w) for w in ("owner", "a", "b")]
    for b in bells:
        b.open(loop)
    try:
        await asyncio.sleep(0.3)  # subscriptions in place
        bells[0].ring_playlist("launch")
        got = {await asyncio.wait_for(heard.get(), 2) for _ in range(3)}
        assert got == {("owner", "launch"), ("a", "launch"), ("b", "launch")}
        await asyncio.sleep(0.2)
        assert heard.empty()  # the owner was told once (at once), not again by its own message
    finally:
        for b in bells:
            b.close()
