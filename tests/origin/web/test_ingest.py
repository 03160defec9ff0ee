"""Bad ingest input against a real origin: clear 4xx, nothing stored, the server keeps serving."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from origin.storage import packs
from origin.storage.filesystem import FilesystemStorage
from tests.origin.conftest import Fmp4Media
from tests.support.origin_server import OriginServer, origin_server
from tests.support.pusher import new_session_id

ROOM = "press-room"
TOKEN = "press-room-ingest-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LADDER = {
    "segment_seconds": 2.0,
    "renditions": [{"name": "a64", "bitrate": 64_000, "channels": 2, "sample_rate": 48_000}],
}


@contextlib.contextmanager
def ingest_origin(room: str, token: str) -> Iterator[OriginServer]:
    """A 2-worker origin with one room, whose sessions may restart freely."""
    with origin_server(workers=2, env={"SPILLWAY_SESSIONS_PER_MINUTE": "1000"}) as server:
        server.create_room(room, ingest_token=token)
        yield server


def start_session(origin: OriginServer, room: str, ladder: dict[str, object], auth: dict[str, str]) -> str:
    sid = new_session_id()
    r = httpx.post(f"{origin.base_url}/ingest/{room}/{sid}/start", json=ladder, headers=auth)
    assert r.status_code == 201, r.text
    return sid


@pytest.fixture(scope="module")
def origin() -> Iterator[OriginServer]:
    with ingest_origin(ROOM, TOKEN) as server:
        yield server


@pytest.fixture()
def session(origin: OriginServer) -> str:
    return start_session(origin, ROOM, LADDER, AUTH)


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


def stored(origin: OriginServer) -> tuple[list[str], list[str]]:
    """Media objects in storage (files, or records in packs) and files of the ingest spool (status.json is
    written on its own schedule)."""
    media = [k for k in FilesystemStorage(origin.storage_root).list("rooms/") if "/media/" in k]
    packed = [f for f in files_under(origin.storage_root / "rooms") if packs.is_pack(f.rsplit("/", 1)[-1])]
    return media + packed, files_under(origin.state_dir / "spool")


def put(origin: OriginServer, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.put(f"{origin.base_url}{path}", content=body, headers=AUTH if headers is None else headers)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no_token", 401),
        ("wrong_token", 403),
        ("unknown_room", 403),
        ("uppercase_room", 400),
        ("dotdot_room", 404),  # the encoded "/" splits the path: no route
        ("encoded_dotdot_session", 400),
        ("dotdot_rendition", 400),
        ("unknown_rendition", 404),
        ("unknown_session", 404),
        ("bad_name", 404),
        ("bad_name_plain", 400),
        ("not_fmp4", 400),
        ("init_as_segment", 400),
        ("oversize", 413),
        ("oversize_chunked", 413),
    ],
)
def test_bad_ingest_is_refused_and_nothing_is_stored(
    origin: OriginServer, session: str, fmp4_media: Fmp4Media, case: str, expected: int
) -> None:
    before = stored(origin)
    seg = fmp4_media.segments[0]
    base = f"/ingest/{ROOM}/{session}/a64"
    requests = {
        "no_token": lambda: put(origin, f"{base}/000000.m4s", seg, headers={}),
        "wrong_token": lambda: put(origin, f"{base}/000000.m4s", seg, headers={"Authorization": "Bearer nope"}),
        "unknown_room": lambda: put(origin, f"/ingest/no-such-room/{session}/a64/000000.m4s", seg),
        "uppercase_room": lambda: put(origin, f"/ingest/Press-Room/{session}/a64/000000.m4s", seg),
        "dotdot_room": lambda: put(origin, f"/ingest/..%2F..%2Fetc/{session}/a64/000000.m4s", seg),
        "encoded_dotdot_session": lambda: put(origin, f"/ingest/{ROOM}/%2e%2e/a64/000000.m4s", seg),
        "dotdot_rendition": lambda: put(origin, f"/ingest/{ROOM}/{session}/%2e%2e/000000.m4s", seg),
        "unknown_rendition": lambda: put(origin, f"/ingest/{ROOM}/{session}/a999/000000.m4s", seg),
        "unknown_session": lambda: put(origin, f"/ingest/{ROOM}/{new_session_id()}/a64/000000.m4s", seg),
        "bad_name": lambda: put(origin, f"{base}/..%2F..%2Fx.m4s", seg),
        "bad_name_plain": lambda: put(origin, f"{base}/segment.ts", seg),
        "not_fmp4": lambda: put(origin, f"{base}/000000.m4s", os.urandom(4000)),
        "init_as_segment": lambda: put(origin, f"{base}/000000.m4s", fmp4_media.init),
        "oversize": lambda: put(origin, f"{base}/000000.m4s", b"\x00" * (8 * 1024 * 1024 + 1)),
        "oversize_chunked": lambda: put(origin, f"{base}/000000.m4s", iter([b"\x00" * 1024 * 1024] * 9)),  # type: ignore[arg-type]
    }
    r = requests[case]()
    assert r.status_code == expected, r.text
    assert r.json()["error"]  # a clear message
    assert stored(origin) == before
    assert httpx.get(f"{origin.base_url}/healthz").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"segment_seconds": 2.0, "renditions": []},
        {"segment_seconds": 0, "renditions": LADDER["renditions"]},
        {"segment_seconds": 2.0, "renditions": [{"name": "A B", "bitrate": 1, "channels": 7, "sample_rate": 1}]},
        {**LADDER, "extra": True},
        {"segment_seconds": 2.0, "renditions": LADDER["renditions"] * 2},  # duplicate names
    ],
)
def test_bad_start_bodies_are_refused(origin: OriginServer, body: dict[str, object]) -> None:
    r = httpx.post(f"{origin.base_url}/ingest/{ROOM}/{new_session_id()}/start", json=body, headers=AUTH)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]


def test_a_valid_segment_is_accepted_and_repeats_are_idempotent(
    origin: OriginServer, session: str, fmp4_media: Fmp4Media
) -> None:
    base = f"/ingest/{ROOM}/{session}/a64"
    assert put(origin, f"{base}/init_0.mp4", fmp4_media.init).status_code == 201
    assert put(origin, f"{base}/000000.m4s", fmp4_media.segments[0]).status_code == 201
    assert put(origin, f"{base}/000000.m4s", fmp4_media.segments[0]).status_code == 201
    # ffmpeg's own playlist is accepted and dropped: the origin builds its own.
    assert put(origin, f"{base}/index.m3u8", b"#EXTM3U\n").status_code == 204
    assert not (origin.storage_root / "rooms" / ROOM / "media" / session / "a64" / "index.m3u8").exists()


def test_ended_broadcast_refuses_new_sessions(fmp4_media: Fmp4Media) -> None:
    with origin_server(workers=1) as origin:
        origin.create_room(ROOM, ingest_token=TOKEN)
        sid = new_session_id()
        assert httpx.post(f"{origin.base_url}/ingest/{ROOM}/{sid}/start", json=LADDER, headers=AUTH).status_code == 201
        assert origin.end_broadcast(ROOM).status_code == 200
        late = httpx.post(f"{origin.base_url}/ingest/{ROOM}/{new_session_id()}/start", json=LADDER, headers=AUTH)
        assert late.status_code == 409 and late.json()["error"] == "conflict" and "ended" in late.json()["detail"]
        seg = put(origin, f"/ingest/{ROOM}/{sid}/a64/000000.m4s", fmp4_media.segments[0])
        assert seg.status_code == 409


def test_admin_end_needs_the_admin_token(origin: OriginServer) -> None:
    url = f"{origin.base_url}/v1/rooms/{ROOM}/end"
    assert httpx.post(url).status_code == 401
    assert httpx.post(url, headers={"Authorization": "Bearer wrong"}).status_code == 403
    # Admin endpoints check credentials first: an ingest token is not an admin token, whatever the path.
    assert httpx.post(f"{origin.base_url}/v1/rooms/Bad..Room/end", headers=AUTH).status_code == 403
    admin = {"Authorization": "Bearer test-admin-token"}
    assert httpx.post(f"{origin.base_url}/v1/rooms/Bad..Room/end", headers=admin).status_code == 400


def rejected(origin: OriginServer) -> dict[str, float]:
    text = httpx.get(f"{origin.base_url}/metrics").text
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r'^spillway_ingest_rejected_total\{reason="([a-z_]+)"\} (\S+)$', text, re.M)}  # fmt: skip


def test_refusals_are_counted_by_code(origin: OriginServer, session: str) -> None:
    before = rejected(origin)
    assert before.keys() >= {"forbidden", "invalid_request", "rate_limited", "unavailable"}  # created at 0 up front
    assert put(origin, f"/ingest/{ROOM}/{session}/a64/000000.m4s", b"x", {"Authorization": "Bearer nope"}
               ).status_code == 403  # fmt: skip
    assert put(origin, f"/ingest/{ROOM}/{session}/a64/000000.m4s", b"not fmp4").status_code == 400
    assert httpx.post(f"{origin.base_url}/v1/rooms/{ROOM}/listeners").status_code in (200, 201)  # not ingest
    after = rejected(origin)
    assert after["forbidden"] - before["forbidden"] == 1
    assert after["invalid_request"] - before["invalid_request"] == 1
    assert sum(after.values()) - sum(before.values()) == 2
