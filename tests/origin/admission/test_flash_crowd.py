"""The real origin (gunicorn, 4 uvicorn workers) under a flash crowd, for each admission backend.

2,000 concurrent joins for a cap of 100 → exactly 100 seats and 1,900 HLS answers; status.json reaches
storage, the origin's read path and the nginx edge with the STATUS cache policy; bad input gets clear 4xx
and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from origin.admission.seat_token import verify_seat_token
from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.edge.nginx_process import EdgeOptions, run_edge
from origin.storage.filesystem import FilesystemStorage
from tests.origin.admission.crowd import crowd
from tests.support.origin_server import ADMIN_TOKEN, OriginServer, origin_server
from tests.support.redis_server import RedisServer

WORKERS = 4
CROWD = 2_000
CAP = 100
SEAT_SECRET = "flash-crowd-seat-secret-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CROWD_DEADLINE_S = 30.0

pytestmark = pytest.mark.timeout(180)


@dataclass(kw_only=True)
class Origin:
    backend: str
    server: OriginServer


@pytest.fixture(scope="module", params=["embedded", "redis"])
def origin(request: pytest.FixtureRequest) -> Iterator[Origin]:
    env = {
        "SPILLWAY_ADMISSION_BACKEND": request.param,
        "SPILLWAY_JOIN_RATE_PER_MINUTE": "1000000",  # one client address sends the whole crowd
        "SPILLWAY_SEAT_TOKEN_SECRET": SEAT_SECRET,
    }
    if request.param == "redis":
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        env["SPILLWAY_REDIS_URL"] = redis_server.url
    with origin_server(workers=WORKERS, env=env) as server:
        yield Origin(backend=request.param, server=server)


def _new_room(origin: Origin, cap: int) -> str:
    room = f"crowd-{uuid.uuid4().hex[:10]}"
    r = httpx.put(f"{origin.server.base_url}/v1/rooms/{room}", json={"realtime_cap": cap}, headers=AUTH, timeout=10)
    assert r.status_code == 201, r.text
    return room


def test_two_thousand_concurrent_joins_take_exactly_cap_seats(origin: Origin) -> None:
    room = _new_room(origin, CAP)
    assert len(origin.server.worker_pids()) == WORKERS
    started = time.monotonic()
    url = f"{origin.server.base_url}/v1/rooms/{room}/listeners"
    responses = asyncio.run(crowd("POST", url, CROWD, deadline_s=CROWD_DEADLINE_S))
    elapsed = time.monotonic() - started
    statuses = Counter(r.status for r in responses)
    assert statuses == {201: CAP, 200: CROWD - CAP}, (statuses, origin.server.log_tail())
    bodies = [r.json() for r in responses]
    seats = [b for b in bodies if b["mode"] == "realtime"]
    assert len({s["lease"]["id"] for s in seats}) == CAP
    now = time.time()
    for seat in seats:
        assert (
            verify_seat_token(seat["seat_token"], SEAT_SECRET.encode(), now=now, room=room).seat == seat["lease"]["id"]
        )
    hls = [b for b in bodies if b["mode"] == "hls"]
    assert {h["hls_url"] for h in hls} == {f"{origin.server.base_url}/rooms/{room}/master.m3u8"}
    assert {h["reason"] for h in hls} == {"full"}
    view = httpx.get(f"{origin.server.base_url}/v1/rooms/{room}", headers=AUTH, timeout=10).json()
    assert (view["seats_taken"], view["seats_left"]) == (CAP, 0)
    print(f"{origin.backend}: {CROWD} joins in {elapsed:.2f} s ({CROWD / elapsed:.0f}/s)")


def _wait_for_status(
    storage: FilesystemStorage, room: str, want_open: bool, timeout_s: float = 5.0
) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    doc: dict[str, object] = {}
    while time.monotonic() < deadline:
        try:
            doc = json.loads(storage.get(layout.status(room)))
        except KeyError:
            doc = {}
        if doc and doc["realtime"]["open"] is want_open:  # type: ignore[index]
            return doc
        time.sleep(0.05)
    raise AssertionError(f"status.json of {room} never showed open={want_open}: {doc}")


def test_status_json_follows_the_seats_through_storage_origin_and_edge(origin: Origin) -> None:
    base = origin.server.base_url
    room = _new_room(origin, 2)
    storage = FilesystemStorage(origin.server.storage_root)
    doc = _wait_for_status(storage, room, want_open=True)
    assert doc["realtime"] == {"open": True, "cap": 2, "seats_taken": 0, "seats_left": 2}
    assert doc["hls_url"] == f"{base}/rooms/{room}/master.m3u8"
    assert storage.get_headers(layout.status(room)) == headers_for(ObjectKind.STATUS)

    seats = [httpx.post(f"{base}/v1/rooms/{room}/listeners", timeout=10).json() for _ in range(3)]
    assert [s["mode"] for s in seats] == ["realtime", "realtime", "hls"]
    doc = _wait_for_status(storage, room, want_open=False)
    assert doc["realtime"] == {"open": False, "cap": 2, "seats_taken": 2, "seats_left": 0}

    via_origin = httpx.get(f"{base}/rooms/{room}/status.json", timeout=10)
    assert via_origin.status_code == 200
    assert via_origin.headers["cache-control"] == headers_for(ObjectKind.STATUS).cache_control
    assert via_origin.headers["content-type"].startswith("application/json")
    with run_edge(EdgeOptions(origin_url=base)) as edge:
        via_edge = httpx.get(f"{edge.base_url}/rooms/{room}/status.json", timeout=10)
        assert via_edge.status_code == 200
        assert via_edge.headers["cache-control"] == headers_for(ObjectKind.STATUS).cache_control
        assert via_edge.json()["realtime"]["open"] is False
        # Promotion back: a seat is freed, status.json says so at the edge within ~TTL + publish interval.
        lease = seats[0]["lease"]["id"]
        assert httpx.delete(f"{edge.base_url}/v1/rooms/{room}/listeners/{lease}", timeout=10).status_code == 204
        deadline = time.monotonic() + 6
        while httpx.get(f"{edge.base_url}/rooms/{room}/status.json", timeout=10).json()["realtime"]["open"] is False:
            assert time.monotonic() < deadline, "the edge never showed the freed seat"
            time.sleep(0.1)
        joined = httpx.post(f"{edge.base_url}/v1/rooms/{room}/listeners", timeout=10)
        assert joined.status_code == 201, joined.text


def test_bad_input_gets_clear_4xx_and_the_server_keeps_serving(origin: Origin) -> None:
    base = origin.server.base_url
    room = _new_room(origin, 1)
    bad = [
        httpx.post(f"{base}/v1/rooms/NOT_VALID/listeners", timeout=10),
        httpx.post(f"{base}/v1/rooms/no-such-room-{uuid.uuid4().hex[:6]}/listeners", timeout=10),
        httpx.post(f"{base}/v1/rooms/{room}/listeners/%2e%2e/heartbeat", timeout=10),
        httpx.post(f"{base}/v1/rooms/{room}/listeners/{'Z' * 22}/heartbeat", timeout=10),
        httpx.put(f"{base}/v1/rooms/{room}", content=b"\xff\xfe{", headers=AUTH, timeout=10),
        httpx.put(f"{base}/v1/rooms/{room}", json={"realtime_cap": 1}, timeout=10),
        httpx.put(f"{base}/v1/rooms/{room}", json={"realtime_cap": 1}, headers={"Authorization": "Bearer x"}),
        httpx.put(f"{base}/v1/rooms/{room}", content=b"{" * 100_000, headers=AUTH, timeout=10),
    ]
    assert [r.status_code for r in bad] == [400, 404, 400, 404, 400, 401, 403, 413]
    for r in bad:
        assert set(r.json()) == {"error", "detail"}, r.text
    assert httpx.post(f"{base}/v1/rooms/{room}/listeners", timeout=10).status_code == 201
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
