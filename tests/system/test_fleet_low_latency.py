"""Low-latency HLS in a fleet: a listener's blocking reload may reach any instance, not only the owner's.

Two origin instances on Redis and S3 (moto), a real transcoder (`--low-latency`) streaming parts to one of
them. Every instance must answer the room's LL playlist (parts, blocking reload) and wake a held reload when
the owner publishes the part, wherever the owner runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from origin.broadcast.playlist_ll import edge_of
from tests.support.fleet import Fleet, fleet, wait_until
from tests.support.transcoder_proc import transcoder

ROOM = "fleet-ll"
TOKEN = "fleet-ll-ingest-token-0123456789"


@pytest.fixture(scope="module")
def running() -> Iterator[Fleet]:
    with fleet(instances=2) as f:
        f.create_room(ROOM, TOKEN)
        first = f.instances[0].server
        assert first is not None
        with transcoder(origin=first.base_url, room=ROOM, token=TOKEN, extra=("--low-latency",)):
            yield f


def _urls(f: Fleet) -> list[str]:
    return [f"{i.server.base_url}/rooms/{ROOM}/live/a64.m3u8" for i in f.instances if i.server is not None]


def test_every_instance_answers_the_low_latency_playlist(running: Fleet) -> None:
    urls = _urls(running)
    assert wait_until(lambda: all("#EXT-X-PART:" in httpx.get(u, timeout=5).text for u in urls), 40), [
        httpx.get(u, timeout=5).text[:400] for u in urls
    ]
    owners = running.owners()
    assert ROOM in owners  # one instance owns it; the other answers from the fleet's board
    texts = [httpx.get(u, timeout=5).text for u in urls]
    assert all("CAN-BLOCK-RELOAD=YES" in t for t in texts), texts


def test_a_reload_held_on_any_instance_wakes_with_the_part(running: Fleet) -> None:
    urls = _urls(running)
    assert wait_until(lambda: all("#EXT-X-PART:" in httpx.get(u, timeout=5).text for u in urls), 40)

    async def hold(url: str) -> list[float]:
        waits = []
        async with httpx.AsyncClient(timeout=10) as client:
            edge = edge_of((await client.get(url)).text)
            for _ in range(15):
                msn, part = edge.last_msn + 1, edge.next_parts
                t0 = time.monotonic()
                resp = await client.get(url, params={"_HLS_msn": msn, "_HLS_part": part})
                waits.append(time.monotonic() - t0)
                assert resp.status_code == 200, (url, resp.status_code, resp.text[:200])
                edge = edge_of(resp.text)
                assert edge.last_msn >= msn or (edge.last_msn == msn - 1 and edge.next_parts > part), (msn, part)
        return waits

    async def both() -> list[list[float]]:
        return await asyncio.gather(*(hold(u) for u in urls))

    for url, waits in zip(urls, asyncio.run(both()), strict=True):
        # ~5 parts a second: each wait is one part's time, never the 0.5 s re-check or the 3 s hold bound.
        assert sorted(waits)[len(waits) // 2] < 0.35, (url, waits)
        assert max(waits) < 1.0, (url, waits)
