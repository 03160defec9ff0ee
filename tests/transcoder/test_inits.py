"""InitForwarder over real HTTP (the ingest receiver): ffmpeg's log cues the PUT of each rendition's local init;
5xx and an unreachable origin are retried, a 4xx is final, and `close` bounds the wait."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.transcoder.receiver import Receiver
from transcoder.command import local_init_path
from transcoder.ffmpeg_log import Event, event_of, parse_line
from transcoder.ingest import IngestClient
from transcoder.inits import InitForwarder
from transcoder.ladder import parse_ladder

SESSION = "20261208t003000z-1a2b3c4d"
INIT = b"\x00\x00\x00\x18ftypiso6" + bytes(range(200))


def _event(line: str) -> Event:
    """What FfmpegProcess hands the forwarder for a line of ffmpeg's stderr."""
    event = event_of(parse_line(line))
    assert event is not None
    return event


def _opening(url: str, rendition: str, index: int) -> str:
    return f"[hls @ 0x1] [info] Opening '{url}/ingest/r1/{SESSION}/{rendition}/{index:06d}.m4s' for writing"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(token="tok") as r:
        yield r


@pytest.fixture
def local(tmp_path: Path) -> Path:
    for rendition in ("a48", "a64"):
        Path(local_init_path(str(tmp_path), rendition)).write_bytes(INIT + rendition.encode())
    return tmp_path


def _client(url: str, token: str = "tok") -> IngestClient:
    return IngestClient(origin_url=url, room="r1", token=token, timeout_seconds=2)


def _inits(receiver: Receiver) -> list[tuple[str, str, bytes, int]]:
    with receiver.lock:
        return [(p.rendition, p.name, p.body, p.status) for p in receiver.puts]


def test_each_renditions_init_is_put_once_at_its_first_segment(receiver: Receiver, local: Path) -> None:
    with _client(receiver.url) as ingest:
        ingest.start(SESSION, parse_ladder("a48:48k:1,a64:64k:2"), 1.0)
        with InitForwarder(ingest, session=SESSION, local_dir=local) as inits:
            inits.feed(_event(f"[hls @ 0x1] [info] Opening '{local}/index_a48.m3u8.tmp' for writing"))
            for rendition, index in (("a48", 0), ("a64", 0), ("a48", 1), ("a64", 1)):
                inits.feed(_event(_opening(receiver.url, rendition, index)))
            inits.close(5.0)
    assert sorted(_inits(receiver)) == [("a48", "init.mp4", INIT + b"a48", 201),
                                        ("a64", "init.mp4", INIT + b"a64", 201)]  # fmt: skip
    assert sorted(inits.sent) == ["a48", "a64"] and inits.rejected == []


def test_a_5xx_is_retried_and_a_4xx_is_final(receiver: Receiver, local: Path) -> None:
    with _client(receiver.url) as ingest:
        ingest.start(SESSION, parse_ladder("a48:48k:1,a64:64k:2"), 1.0)
        receiver.put_statuses.extend([503, 502, 201, 409])
        with InitForwarder(ingest, session=SESSION, local_dir=local) as inits:
            inits.feed(_event(_opening(receiver.url, "a48", 0)))
            inits.feed(_event(_opening(receiver.url, "a64", 0)))
            inits.close(5.0)
    assert [(r, status) for r, _, _, status in _inits(receiver)] == [("a48", 503), ("a48", 502), ("a48", 201),
                                                                     ("a64", 409)]  # fmt: skip
    assert inits.sent == ["a48"] and inits.rejected == ["a64"]


def test_an_unreachable_origin_is_retried_until_close_gives_up(local: Path) -> None:
    with _client(f"http://127.0.0.1:{free_port()}") as ingest:
        inits = InitForwarder(ingest, session=SESSION, local_dir=local).__enter__()
        inits.feed(_event(_opening("http://127.0.0.1:9", "a48", 0)))
        time.sleep(0.5)  # a few refused connections, backing off
        started = time.monotonic()
        inits.close(0.2)
    assert time.monotonic() - started < 2.5 and inits.sent == [] and inits.rejected == []
