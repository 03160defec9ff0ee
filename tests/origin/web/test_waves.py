"""Waves against a real origin: a segment's renditions in one PUT (the transcoder's uploads) are received each as
its own PUT would be — published together, repeats idempotent —, a bad wave is a clear 4xx with nothing stored,
and a wave refused part-way keeps (and publishes) what came before the refusal."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest

from origin.contract.ingest import WAVE_HEADER, format_wave
from origin.storage import packs
from tests.origin.conftest import Fmp4Media
from tests.origin.web.test_ingest import ingest_origin, start_session
from tests.origin.web.test_ingest import stored as stored_with_filler
from tests.support.origin_server import OriginServer

ROOM = "wave-room"
TOKEN = "wave-room-ingest-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NAMES = ["a64", "b64"]  # the same encoding twice: the test media fits both
LADDER = {
    "segment_seconds": 2.0,
    "renditions": [{"name": n, "bitrate": 64_000, "channels": 2, "sample_rate": 48_000} for n in NAMES],
}


@pytest.fixture(scope="module")
def origin() -> Iterator[OriginServer]:
    with ingest_origin(ROOM, TOKEN) as server:
        yield server


@pytest.fixture()
def session(origin: OriginServer, fmp4_media: Fmp4Media) -> str:
    sid = start_session(origin, ROOM, LADDER, AUTH)
    for name in NAMES:
        r = httpx.put(f"{origin.base_url}/ingest/{ROOM}/{sid}/{name}/init.mp4", content=fmp4_media.init, headers=AUTH)
        assert r.status_code == 201, r.text
    return sid


def stored(origin: OriginServer) -> tuple[list[str], list[str]]:
    """What ingest stored, by key: the room is live here, so the origin's filler objects (and the pack files a
    new session's first filler opens) come and go on their own."""
    media, spool = stored_with_filler(origin)
    return [key for key in media if "/fill-" not in key and not packs.is_pack(key.rsplit("/", 1)[-1])], spool


def put_wave(origin: OriginServer, session: str, name: str, pieces: list[tuple[str, bytes]],
             *, framing: str | None = None, auth: dict[str, str] = AUTH) -> httpx.Response:  # fmt: skip
    header = format_wave([(r, len(b)) for r, b in pieces]) if framing is None else framing
    return httpx.put(f"{origin.base_url}/ingest/{ROOM}/{session}/{name}", content=b"".join(b for _, b in pieces),
                     headers={**auth, WAVE_HEADER: header}, timeout=10)  # fmt: skip


def live(origin: OriginServer, rendition: str) -> str:
    r = httpx.get(f"{origin.base_url}/rooms/{ROOM}/live/{rendition}.m3u8", timeout=10)
    return r.text if r.status_code == 200 else ""


def published(origin: OriginServer, session: str, rendition: str, index: int, *, timeout_s: float = 10.0) -> bool:
    uri = f"{session}/{rendition}/{index:06d}.m4s"
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if uri in live(origin, rendition):
            return True
        time.sleep(0.1)
    return False


def test_a_wave_publishes_every_rendition_and_a_repeat_is_idempotent(
    origin: OriginServer, session: str, fmp4_media: Fmp4Media
) -> None:
    seg = fmp4_media.segments[0]
    r = put_wave(origin, session, "000000.m4s", [(n, seg) for n in NAMES])
    assert r.status_code == 201, r.text
    assert all(published(origin, session, n, 0) for n in NAMES)
    before = stored(origin)
    assert put_wave(origin, session, "000000.m4s", [(n, seg) for n in NAMES]).status_code == 201
    assert stored(origin) == before
    # The same objects one by one are repeats too: a sender may fall back to single PUTs.
    r = httpx.put(f"{origin.base_url}/ingest/{ROOM}/{session}/b64/000000.m4s", content=seg, headers=AUTH)
    assert r.status_code == 201, r.text


def test_a_wave_refused_part_way_keeps_and_publishes_what_came_before(
    origin: OriginServer, session: str, fmp4_media: Fmp4Media
) -> None:
    seg = fmp4_media.segments[0]
    r = put_wave(origin, session, "000000.m4s", [("a64", seg), ("b64", os.urandom(len(seg)))])
    assert r.status_code == 400 and r.json()["error"], r.text
    assert published(origin, session, "a64", 0)
    assert f"{session}/b64/" not in live(origin, "b64")
    one = httpx.put(f"{origin.base_url}/ingest/{ROOM}/{session}/a64/000000.m4s", content=seg, headers=AUTH)
    assert one.status_code == 201  # a repeat of what the wave stored


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no_token", 401),
        ("no_framing", 400),
        ("garbled_framing", 400),
        ("duplicate_rendition", 400),
        ("zero_bytes", 400),
        ("body_shorter_than_framing", 400),
        ("body_longer_than_framing", 413),
        ("part_over_cap", 413),
        ("init_name", 404),  # no route: a wave names a segment
        ("bad_segment_name", 400),
        ("dotdot_name", 400),  # the decoded "/" makes it an object PUT with the rendition ".."
        ("unknown_rendition", 404),
        ("not_fmp4", 400),
    ],
)
def test_bad_waves_are_refused_and_nothing_is_stored(
    origin: OriginServer, session: str, fmp4_media: Fmp4Media, case: str, expected: int
) -> None:
    seg = fmp4_media.segments[0]
    pieces = [(n, seg) for n in NAMES]
    both = format_wave([(n, len(seg)) for n in NAMES])
    requests = {
        "no_token": lambda: put_wave(origin, session, "000000.m4s", pieces, auth={}),
        "no_framing": lambda: httpx.put(f"{origin.base_url}/ingest/{ROOM}/{session}/000000.m4s", content=seg * 2,
                                        headers=AUTH),
        "garbled_framing": lambda: put_wave(origin, session, "000000.m4s", pieces, framing="a64:12;b64=x"),
        "duplicate_rendition": lambda: put_wave(origin, session, "000000.m4s", [("a64", seg), ("a64", seg)]),
        "zero_bytes": lambda: put_wave(origin, session, "000000.m4s", pieces, framing=f"{both}, c64=0"),
        "body_shorter_than_framing": lambda: put_wave(origin, session, "000000.m4s", pieces,
                                                      framing=f"a64={len(seg)}, b64={len(seg) + 10}"),
        "body_longer_than_framing": lambda: put_wave(origin, session, "000000.m4s", pieces,
                                                     framing=f"a64={len(seg)}, b64={len(seg) - 10}"),
        "part_over_cap": lambda: put_wave(origin, session, "000000.m4s", pieces, framing=f"a64={9 * 1024 * 1024}"),
        "init_name": lambda: put_wave(origin, session, "init.mp4", pieces),
        "bad_segment_name": lambda: put_wave(origin, session, "x1.m4s", pieces),
        "dotdot_name": lambda: put_wave(origin, session, "..%2F000000.m4s", pieces),
        "unknown_rendition": lambda: put_wave(origin, session, "000000.m4s", [("c64", seg)]),
        "not_fmp4": lambda: put_wave(origin, session, "000000.m4s", [("a64", os.urandom(4000))]),
    }
    before = stored(origin)
    r = requests[case]()
    assert r.status_code == expected, r.text
    assert r.json()["error"]
    assert stored(origin) == before
    assert httpx.get(f"{origin.base_url}/healthz").status_code == 200
