"""Issue 14, hostile media against a real origin (findings 1, 2, 4, 5, 7): each crafted body is refused with a
clear 400, nothing of it is stored, the room keeps publishing and ends, and the origin logs no traceback.

Each test here failed on the main before the origin rewrite (9999087): the bodies were accepted with 201 or
answered 500, and findings 1, 2 and 4 wedged the room for good.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.origin.conftest import Fmp4Media
from tests.origin.web.hostile import ADMIN, LogWatch, RoomClient, make_room, wait_for
from tests.support import mp4_craft as c
from tests.support.origin_server import OriginServer, origin_server
from tests.support.pusher import new_session_id


@pytest.fixture(scope="module")
def origin() -> Iterator[OriginServer]:
    env = {"SPILLWAY_SESSIONS_PER_MINUTE": "1000", "SPILLWAY_SESSION_TIMEOUT_SECONDS": "2",
           "SPILLWAY_END_GRACE_SECONDS": "1", "SPILLWAY_FILL_GAPS": "false"}  # fmt: skip
    with origin_server(workers=2, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def media_room(origin: OriginServer) -> RoomClient:
    return make_room(origin, "hostile-media")


@pytest.fixture()
def log(origin: OriginServer) -> Iterator[LogWatch]:
    watch = LogWatch(origin.log_path)
    yield watch
    watch.assert_clean()


def published_segments(playlist: str | None) -> int:
    return len(re.findall(r"^#EXTINF", playlist or "", re.M))


def publish_and_end(client: RoomClient, session: str, media: Fmp4Media, *, first_idx: int = 0) -> None:
    """The room still works: real segments are published, and the admin end turns it `ended`."""
    for i, seg in enumerate(media.segments[:2]):
        r = client.put(session, f"{first_idx + i:06d}.m4s", seg)
        assert r.status_code == 201, r.text
    wait_for("2 published segments", lambda: published_segments(client.live_playlist()) >= 2)
    r = httpx.post(f"{client.origin.base_url}/v1/rooms/{client.room}/end", headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    wait_for("the broadcast to end", lambda: client.broadcast_state() == "ended")
    assert "#EXT-X-ENDLIST" in httpx.get(f"{client.origin.base_url}/rooms/{client.room}/replay/a64.m3u8").text


def test_finding_1_a_segment_claiming_2_31_samples_of_0xffffffff_ticks_cannot_wedge_the_room(
    origin: OriginServer, fmp4_media: Fmp4Media, log: LogWatch
) -> None:
    client = make_room(origin, "hostile-wedge")
    session, r = client.start()
    assert r.status_code == 201, r.text
    assert client.put(session, "init.mp4", fmp4_media.init).status_code == 201
    huge = c.media_segment(c.fragment(tfhd_box=c.tfhd(default_duration=0xFFFFFFFF, default_size=1),
                                      truns=lambda off: [c.trun(count=2**31, data_offset=off)],
                                      mdat_payload=b"\0" * 16))  # fmt: skip
    r = client.put(session, "000000.m4s", huge)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    assert client.media_files() == [f"{session}/a64/init.mp4"]
    publish_and_end(client, session, fmp4_media)


def test_finding_2_a_far_segment_index_is_refused_at_once_and_costs_nothing(
    origin: OriginServer, fmp4_media: Fmp4Media, log: LogWatch
) -> None:
    client = make_room(origin, "hostile-gap")
    session, _ = client.start()
    assert client.put(session, "init.mp4", fmp4_media.init).status_code == 201
    r = client.put(session, "999999999.m4s", fmp4_media.segments[0])
    assert r.status_code == 400 and "past the session" in r.json()["detail"], r.text
    assert r.elapsed.total_seconds() < 2.0
    assert httpx.get(f"{origin.base_url}/healthz", timeout=2).status_code == 200
    publish_and_end(client, session, fmp4_media)


def test_finding_4_a_broadcast_that_published_nothing_ends_cleanly(origin: OriginServer, log: LogWatch) -> None:
    client = make_room(origin, "hostile-silent", realtime_cap=5)
    _session, r = client.start()
    assert r.status_code == 201, r.text
    # No segment ever: the session times out (2 s), the grace passes (1 s), the broadcast ends for good.
    wait_for("the empty broadcast to end", lambda: client.broadcast_state() == "ended", timeout_s=30)
    wait_for("status.json to say ended", lambda: client.status().get("state") == "ended", timeout_s=10)
    time.sleep(1.1)  # admission trusts its copy of a room's broadcast state for 1 s (ROOM_CACHE_S)
    for _ in range(3):
        join = httpx.post(f"{origin.base_url}/v1/rooms/{client.room}/listeners", timeout=10)
        assert join.status_code == 409 and join.json()["error"] == "conflict", join.text  # no seat: it has ended
    _, late = client.start()
    assert late.status_code == 409 and "ended" in late.json()["detail"], late.text


def _bad_segments() -> dict[str, bytes]:
    return {
        "empty-mdat": c.media_segment(c.fragment(sizes=(), truns=lambda off: [c.trun(sizes=[10], data_offset=off)])),
        "duration-0xffffffff": c.media_segment(c.fragment(sizes=[100, 100], durations=[1024, 0xFFFFFFFF])),
        "empty-tfdt": c.media_segment(c.fragment(tfdt_box=c.full_box(b"tfdt", 1, 0))),
        # finding 7: these raised struct.error / IndexError (500) on the old main
        "tfhd-cut-at-end": c.media_segment() + c.box(b"moof", c.full_box(b"mfhd", 0, 0, c.u32(2)),
                                                     c.box(b"traf", c.full_box(b"tfhd", 0, 0x020008))),
        "trun-count-past-the-box": c.media_segment(c.fragment(truns=lambda off: [c.trun(sizes=[200], count=10**6,
                                                                                         data_offset=off)])),
        "box-size-past-the-end": c.u32(0xFFFFFFF0) + b"moof" + b"\0" * 64,
        "64-bit-size-overflow": c.u32(1) + b"moof" + c.u64(2**64 - 1) + b"\0" * 32,
    }  # fmt: skip


def _bad_inits() -> dict[str, bytes]:
    return {
        "mdhd-timescale-1": c.init_segment(traks=[c.trak(timescale=1)]),
        "two-traks": c.init_segment(traks=[c.trak(track_id=1), c.trak(track_id=2)]),
        "truncated-moov": c.init_segment()[:-7],
        "esds-cut": c.replace_box(c.init_segment(), b"esds", c.full_box(b"esds", 0, 0, b"\x03\x80")),
    }


@pytest.mark.parametrize("case", sorted(_bad_segments()))
def test_findings_5_and_7_malformed_segments_are_400_and_never_stored(
    origin: OriginServer, media_room: RoomClient, fmp4_media: Fmp4Media, log: LogWatch, case: str
) -> None:
    client = media_room
    session, _ = client.start()
    assert client.put(session, "init.mp4", fmp4_media.init).status_code == 201
    r = client.put(session, "000000.m4s", _bad_segments()[case])
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    assert f"{session}/a64/000000.m4s" not in client.media_files()


@pytest.mark.parametrize("case", sorted(_bad_inits()))
def test_findings_5_and_7_malformed_inits_are_400_and_never_stored(
    origin: OriginServer, media_room: RoomClient, log: LogWatch, case: str
) -> None:
    client = media_room
    session, _ = client.start()
    r = client.put(session, "init.mp4", _bad_inits()[case])
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    assert not [f for f in client.media_files() if f.startswith(session)]


@pytest.mark.parametrize("body", [b'{"reason":"boom"}', b"not json", b"[1,2]", b'{"reason": 7}', b"\xff\xfe"])
def test_finding_7_a_bad_end_body_is_400(
    origin: OriginServer, media_room: RoomClient, log: LogWatch, body: bytes
) -> None:
    client = media_room
    session, _ = client.start()
    url = f"{origin.base_url}/ingest/{client.room}/{session}/end"
    r = httpx.post(url, content=body, headers={**client.auth, "Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    # the session is still open: a good end closes it
    assert httpx.post(url, json={"reason": "eos"}, headers=client.auth, timeout=10).status_code == 200


def test_finding_7_end_of_an_unknown_session_is_404(
    origin: OriginServer, media_room: RoomClient, log: LogWatch
) -> None:
    client = media_room
    url = f"{origin.base_url}/ingest/{client.room}/{new_session_id()}/end"
    assert httpx.post(url, json={"reason": "eos"}, headers=client.auth, timeout=10).status_code == 404
