"""Request collapsing: 2,000 concurrent playlist pollers against the edge while the playlists are rewritten
upstream every ~1.5 s. Storage must see about one request per TTL per rendition, counted AT THE UPSTREAM
(the counting store's own request log; for S3, nginx's upstream log), and listeners must stay fresh."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import pytest

from origin.contract import layout
from origin.contract.cache_policy import LIVE_PLAYLIST_MAX_AGE_S, ObjectKind, headers_for
from tests.cdn_config.conftest import EdgeRig, fresh_room
from tests.cdn_config.stream import media_playlist
from tests.cdn_config.upstream import CountingStore

POLLERS = 2000
DURATION_S = 10.0
REWRITE_EVERY_S = 1.5
RENDITIONS = ("a48", "a64")
# nginx's cache clock counts whole seconds: an object with max-age=N is served for N to N+1 seconds.
MAX_SERVED_AGE_S = 2 * LIVE_PLAYLIST_MAX_AGE_S
_SEQUENCE = re.compile(rb"#EXT-X-MEDIA-SEQUENCE:(\d+)")


@dataclass(kw_only=True)
class PlaylistWriter:
    """Rewrites every rendition's live playlist on a timer, like the origin publishing a new segment."""

    put: Callable[[str, bytes], None]
    room: str
    published_at: dict[int, float] = field(default_factory=dict)  # media sequence → when it became visible
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def publish(self, sequence: int) -> None:
        for rendition in RENDITIONS:
            text = media_playlist(session="sess-0001", rendition=rendition, first=sequence, durations_s=[2.0] * 6)
            self.put(layout.live_playlist(self.room, rendition), text.encode())
        self.published_at[sequence] = time.monotonic()

    def _run(self) -> None:
        sequence = max(self.published_at) + 1
        while not self._stop.wait(REWRITE_EVERY_S):
            self.publish(sequence)
            sequence += 1

    def __enter__(self) -> PlaylistWriter:
        self.publish(0)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


@dataclass(kw_only=True)
class PollResult:
    responses: list[tuple[float, int]] = field(default_factory=list)  # (request sent at, media sequence)
    failures: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


async def _poll(urls: list[str], duration_s: float) -> PollResult:
    result = PollResult()
    deadline = time.monotonic() + duration_s
    connector = aiohttp.TCPConnector(limit=POLLERS, limit_per_host=POLLERS)
    timeout = aiohttp.ClientTimeout(total=10)

    async def poller(url: str, session: aiohttp.ClientSession) -> None:
        while (sent := time.monotonic()) < deadline:
            try:
                async with session.get(url) as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        result.failures.append(f"{resp.status} {url}")
                        continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.failures.append(f"{type(exc).__name__} {url}")
                continue
            match = _SEQUENCE.search(body)
            if match is None:
                result.failures.append(f"no media sequence in {body[:80]!r}")
                continue
            result.responses.append((sent, int(match.group(1))))

    start = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(poller(urls[i % len(urls)], session) for i in range(POLLERS)))
    result.elapsed_s = time.monotonic() - start
    return result


def _max_served_age(result: PollResult, published_at: dict[int, float]) -> float:
    """Longest time a request still got a playlist after its successor had been published (measured from
    when the request was sent, so client-side queueing under load does not count against the edge)."""
    worst = 0.0
    for sent, sequence in result.responses:
        successor = published_at.get(sequence + 1)
        if successor is not None and successor < sent:
            worst = max(worst, sent - successor)
    return worst


def _run_collapse(rig: EdgeRig, upstream_requests: Callable[[str], int]) -> None:
    room = fresh_room(f"collapse-{rig.kind}")
    paths = [layout.live_playlist(room, r) for r in RENDITIONS]

    def put(key: str, data: bytes) -> None:
        rig.store.put(key, data, headers_for(ObjectKind.LIVE_PLAYLIST))

    with PlaylistWriter(put=put, room=room) as writer:
        result = asyncio.run(_poll([f"{rig.url}/{p}" for p in paths], DURATION_S))
    served = len(result.responses)
    counts = {p: upstream_requests(p) for p in paths}
    age = _max_served_age(result, writer.published_at)
    print(f"\n[{rig.kind}] {served} playlist responses in {result.elapsed_s:.1f}s ({served / result.elapsed_s:.0f}/s) "
          f"from {POLLERS} pollers; upstream requests {counts}; oldest served {age:.2f}s after its successor; "
          f"{len(result.failures)} failures")
    assert result.failures == []
    assert served >= 2 * POLLERS  # the load was real: pollers got answers over and over
    per_rendition_cap = DURATION_S / LIVE_PLAYLIST_MAX_AGE_S + 2  # one per TTL, plus the first fill and an edge
    for path, count in counts.items():
        assert 2 <= count <= per_rendition_cap, (path, count)
    assert age <= MAX_SERVED_AGE_S + 0.5
    # Kept up to the end: whatever was published long enough before the last request (one served age) was seen.
    # Compared with the last request, not the writer's last publish, which may land after the pollers stopped.
    last_sent = max(sent for sent, _ in result.responses)
    due = [seq for seq, at in writer.published_at.items() if at <= last_sent - (MAX_SERVED_AGE_S + 0.5)]
    assert due, writer.published_at
    assert max(seq for _, seq in result.responses) >= max(due), (due, writer.published_at, last_sent)


@pytest.mark.timeout(120)
def test_pollers_collapse_to_one_upstream_request_per_ttl(origin_rig: EdgeRig, counting_store: CountingStore) -> None:
    counting_store.delay_s = 0.02  # a store that takes 20 ms per answer widens every race window
    try:
        _run_collapse(origin_rig, lambda key: counting_store.count(f"/{key}"))
    finally:
        counting_store.delay_s = 0.0


@pytest.mark.timeout(120)
def test_pollers_collapse_in_front_of_s3(s3_rig: EdgeRig) -> None:
    _run_collapse(s3_rig, lambda key: len(s3_rig.upstream_hits(key)))
