"""The admission HTTP edge in-process (FastAPI TestClient) on real backends, with an injected clock."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from origin.admission.backend import AdmissionBackend
from origin.admission.decision import AdmitResult
from origin.admission.publisher import StatusPublisher
from origin.admission.redis_backend import RedisAdmission, RedisRoomRegistry, connect
from origin.admission.seat_token import verify_seat_token
from origin.admission.setup import AdmissionDeps, build_service
from origin.admission.sfu.gate import SeatGate
from origin.admission.sqlite_backend import SqliteAdmission, SqliteRoomRegistry
from origin.admission.status import BroadcastInfo
from origin.broadcast.view import BroadcastSummary
from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.rooms import RoomRegistry
from origin.storage.filesystem import FilesystemStorage
from origin.web import admin, errors, listeners
from tests.origin.admission.conftest import ManualClock
from tests.support.net import free_port

ADMIN = "admin-token-for-tests-0123456789"
SECRET = b"seat-secret-for-tests-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
LEASE_S = 30.0


class CountingBackend:
    """The real backend, with its admit calls counted (to prove which joins never reach it)."""

    def __init__(self, inner: AdmissionBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.admits = 0

    def admit(self, room: str, *, lease: str, cap: int, now: float, lease_s: float) -> AdmitResult:
        self.admits += 1
        return self.inner.admit(room, lease=lease, cap=cap, now=now, lease_s=lease_s)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


class Broadcasts:
    """A settable BroadcastView (and the admin routes' broadcast side), standing in for the ingest side."""

    def __init__(self) -> None:
        self.info: dict[str, BroadcastInfo] = {}

    def broadcast(self, room: str) -> BroadcastInfo:
        return self.info.get(room, BroadcastInfo())

    def exists(self, room: str) -> bool:
        return room in self.info

    def summary(self, room: str) -> BroadcastSummary | None:
        return None

    def end(self, room: str) -> bool:
        return False

    def delete(self, room: str) -> int:
        self.info.pop(room, None)
        return 0


@dataclass(kw_only=True)
class Harness:
    client: TestClient
    deps: AdmissionDeps
    clock: ManualClock
    backend: CountingBackend
    broadcasts: Broadcasts
    storage: FilesystemStorage

    def room(self, room: str = "launch", **body: object) -> dict[str, object]:
        response = self.client.put(f"/v1/rooms/{room}", json={"realtime_cap": 2, **body}, headers=AUTH)
        assert response.status_code in (200, 201), response.text
        doc: dict[str, object] = response.json()
        return doc

    def join(self, room: str = "launch") -> dict[str, object]:
        response = self.client.post(f"/v1/rooms/{room}/listeners")
        assert response.status_code in (200, 201), response.text
        doc: dict[str, object] = response.json()
        assert (doc["mode"] == "realtime") == (response.status_code == 201)
        return doc


@contextlib.contextmanager
def harness(
    tmp_path: Path,
    *,
    backend: AdmissionBackend | None = None,
    rooms: RoomRegistry | None = None,
    rate_per_minute: int = 10_000,
    admin_token: str = ADMIN,
    gate: Callable[[AdmissionBackend], SeatGate] | None = None,
) -> Iterator[Harness]:
    clock = ManualClock()
    if backend is None:
        sqlite = SqliteAdmission.open(tmp_path / "state")
        backend, rooms = sqlite, SqliteRoomRegistry(sqlite.db)
    assert rooms is not None
    counting = CountingBackend(backend)
    storage = FilesystemStorage(tmp_path / "storage")
    broadcasts = Broadcasts()
    publisher = StatusPublisher(
        storage=storage,
        rooms=rooms,
        backend=counting,
        broadcasts=broadcasts,
        public_base_url="https://cdn.example",
        api_url="https://api.example",
        clock=clock,
    )
    deps = AdmissionDeps(
        rooms=rooms,
        backend=counting,
        publisher=publisher,
        storage=storage,
        broadcasts=broadcasts,
        seat_token_secret=SECRET,
        admin_token=admin_token,
        public_base_url="https://cdn.example",
        api_url="https://api.example",
        lease_s=LEASE_S,
        join_rate_per_minute=rate_per_minute,
        clock=clock,
        run_publisher=False,
        gate=None if gate is None else gate(counting),
    )
    app = FastAPI()
    errors.install(app)
    svc = build_service(deps)
    app.include_router(admin.build_router(admin.AdminDeps(
        admission=svc, broadcasts=broadcasts, on_deleted=lambda room: None, ring=lambda room: None,
        admin_token=admin_token, public_base_url="https://cdn.example", clock=clock,
    )))  # fmt: skip
    app.include_router(listeners.build_router(deps, svc, lambda request: request.client.host if request.client
                                              else "unknown"))  # fmt: skip
    with TestClient(app) as client:
        yield Harness(client=client, deps=deps, clock=clock, backend=counting, broadcasts=broadcasts, storage=storage)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    with harness(tmp_path) as h:
        yield h


def _error(response: object, status: int, code: str) -> object:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error", "detail"} and body["error"] == code, body
    return body["detail"]


# -- rooms (admin) -------------------------------------------------------------------------------------------


def test_admin_auth(tmp_path: Path, h: Harness) -> None:
    r = h.client.put("/v1/rooms/launch", json={"realtime_cap": 1})
    _error(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"] == "Bearer"
    _error(h.client.get("/v1/rooms/launch", headers={"Authorization": "Basic eDp5"}), 401, "unauthorized")
    _error(h.client.get("/v1/rooms/launch", headers={"Authorization": "Bearer wrong"}), 403, "forbidden")
    _error(h.client.get("/v1/rooms/launch", headers={"Authorization": f"Bearer {ADMIN}x"}), 403, "forbidden")
    # auth is checked before the body: a bad body without credentials is still 401
    _error(h.client.put("/v1/rooms/launch", json={"bogus": 1}), 401, "unauthorized")
    assert h.client.put("/v1/rooms/launch", json={"realtime_cap": 1}, headers={"authorization": f"bearer {ADMIN}"})
    with harness(tmp_path / "disabled", admin_token="") as off:
        _error(off.client.get("/v1/rooms/launch", headers={"Authorization": "Bearer "}), 401, "unauthorized")
        _error(off.client.get("/v1/rooms/launch", headers={"Authorization": "Bearer x"}), 403, "forbidden")


def test_create_issues_an_ingest_token_once_and_update_keeps_it(h: Harness) -> None:
    body = {"realtime_cap": 5, "title": "Launch", "host": "Ada", "embed_origins": ["https://News.example/"]}
    r = h.client.put("/v1/rooms/launch", json=body, headers=AUTH)
    assert r.status_code == 201
    created = r.json()
    token = created.pop("ingest_token")
    assert len(token) >= 40
    assert created == {
        "id": "launch", "title": "Launch", "host": "Ada", "realtime_cap": 5,
        "embed_origins": ["https://news.example"], "broadcast": "idle", "seats_taken": 0, "seats_left": 5,
        "hls_listeners_recent": 0, "status_url": "https://cdn.example/rooms/launch/status.json",
        "hls_url": "https://cdn.example/rooms/launch/master.m3u8", "publishing": None,
    }  # fmt: skip
    r = h.client.put("/v1/rooms/launch", json={"realtime_cap": 7}, headers=AUTH)
    assert r.status_code == 200 and "ingest_token" not in r.json()
    assert r.json()["title"] == ""  # PUT replaces the room
    stored = h.deps.rooms.get("launch")
    assert stored is not None and stored.ingest_token == token and stored.realtime_cap == 7
    given = "given-token-0123456789abcdefghij"
    r = h.client.put("/v1/rooms/launch", json={"realtime_cap": 7, "ingest_token": given}, headers=AUTH)
    assert "ingest_token" not in r.json()  # the caller already knows it
    stored = h.deps.rooms.get("launch")
    assert stored is not None and stored.ingest_token == given
    got = h.client.get("/v1/rooms/launch", headers=AUTH).json()
    assert "ingest_token" not in got and got["realtime_cap"] == 7


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"realtime_cap": 1, "extra": True},
        {"realtime_cap": -1},
        {"realtime_cap": 100_001},
        {"realtime_cap": "3"},
        {"realtime_cap": True},
        {"realtime_cap": 1.5},
        {"realtime_cap": 1, "ingest_token": "short"},
        {"realtime_cap": 1, "ingest_token": "has spaces in it 0123456789abcdef"},
        {"realtime_cap": 1, "embed_origins": ["javascript:alert(1)"]},
        {"realtime_cap": 1, "embed_origins": ["https://news.example/path"]},
        {"realtime_cap": 1, "embed_origins": ["https://user:pw@news.example"]},
        {"realtime_cap": 1, "embed_origins": ["https://news.example:0"]},
        {"realtime_cap": 1, "embed_origins": ["https://*.example"]},
        {"realtime_cap": 1, "embed_origins": "https://news.example"},
        {"realtime_cap": 1, "embed_origins": [f"https://n{i}.example" for i in range(33)]},
        {"realtime_cap": 1, "title": "x" * 201},
        {"realtime_cap": 1, "title": "bell\x07"},
        {"realtime_cap": 1, "host": ["Ada"]},
        [1, 2, 3],
    ],
)
def test_bad_room_bodies_are_400(h: Harness, body: object) -> None:
    detail = _error(h.client.put("/v1/rooms/launch", json=body, headers=AUTH), 400, "invalid_request")
    assert detail
    assert h.deps.rooms.get("launch") is None


def test_unparseable_and_oversized_bodies(h: Harness) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    _error(h.client.put("/v1/rooms/launch", content=b'{"realtime_cap": ', headers=headers), 400, "invalid_request")
    big = json.dumps({"realtime_cap": 1, "title": "x" * 20_000}).encode()
    _error(h.client.put("/v1/rooms/launch", content=big, headers=headers), 413, "body_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the stream itself is bounded
        yield b'{"realtime_cap": 1, "title": "'
        for _ in range(40):
            yield b"x" * 1000
        yield b'"}'

    _error(h.client.put("/v1/rooms/launch", content=chunks(), headers=headers), 413, "body_too_large")
    assert h.client.put("/v1/rooms/launch", json={"realtime_cap": 1}, headers=AUTH).status_code == 201


@pytest.mark.parametrize("room", ["UPPER", "-lead", "trail-", "a_b", "x" * 65, "dots.dots"])
def test_bad_room_ids_are_400_everywhere(h: Harness, room: str) -> None:
    lease = "L" * 22
    _error(h.client.put(f"/v1/rooms/{room}", json={"realtime_cap": 1}, headers=AUTH), 400, "invalid_request")
    _error(h.client.get(f"/v1/rooms/{room}", headers=AUTH), 400, "invalid_request")
    _error(h.client.post(f"/v1/rooms/{room}/listeners"), 400, "invalid_request")
    _error(h.client.post(f"/v1/rooms/{room}/listeners/{lease}/heartbeat"), 400, "invalid_request")
    _error(h.client.delete(f"/v1/rooms/{room}/listeners/{lease}"), 400, "invalid_request")


def test_unknown_room_is_404_everywhere(h: Harness) -> None:
    lease = "L" * 22
    _error(h.client.get("/v1/rooms/nowhere", headers=AUTH), 404, "not_found")
    _error(h.client.post("/v1/rooms/nowhere/listeners"), 404, "not_found")
    _error(h.client.post(f"/v1/rooms/nowhere/listeners/{lease}/heartbeat"), 404, "not_found")
    _error(h.client.delete(f"/v1/rooms/nowhere/listeners/{lease}"), 404, "not_found")


# -- joining ---------------------------------------------------------------------------------------------------


def test_seats_up_to_the_cap_then_hls(h: Harness) -> None:
    h.room(realtime_cap=2)
    h.broadcasts.info["launch"] = BroadcastInfo(state="live", segment_s=2.048)
    h.clock.advance(2)  # past the worker's room cache
    seats = [h.join(), h.join()]
    for seat in seats:
        assert seat["mode"] == "realtime"
        lease = seat["lease"]
        assert isinstance(lease, dict)
        assert lease["expires_at"] == h.clock.now + LEASE_S
        assert lease["heartbeat_interval_seconds"] == LEASE_S / 3
        claims = verify_seat_token(str(seat["seat_token"]), SECRET, now=h.clock.now, room="launch")
        assert claims.seat == lease["id"]
        assert claims.exp >= lease["expires_at"]
    assert seats[0]["lease"] != seats[1]["lease"]
    hls = h.join()
    assert hls == {
        "mode": "hls", "room": "launch", "reason": "full",
        "hls_url": "https://cdn.example/rooms/launch/master.m3u8", "expected_delay_seconds": pytest.approx(8.192),
        "status_url": "https://cdn.example/rooms/launch/status.json",
    }  # fmt: skip


def test_past_the_cap_joins_do_not_reach_the_backend(h: Harness) -> None:
    h.room(realtime_cap=2)
    h.join(), h.join()
    assert h.join()["mode"] == "hls"  # this one asks the backend, which says full
    admits = h.backend.admits
    for _ in range(200):
        assert h.join()["mode"] == "hls"
    assert h.backend.admits == admits  # the per-worker hint answered all of them


def test_a_freed_seat_is_seen_within_the_hint_ttl(h: Harness) -> None:
    h.room(realtime_cap=1)
    seat = h.join()
    assert h.join()["mode"] == "hls"
    lease = seat["lease"]["id"]  # type: ignore[index]
    h.backend.release("launch", lease=lease, now=h.clock.now)  # freed by another worker
    assert h.join()["mode"] == "hls"  # this worker still trusts its hint ...
    h.clock.advance(1.0)
    assert h.join()["mode"] == "realtime"  # ... for one second at most: promotion back


def test_leave_frees_the_seat_at_once(h: Harness) -> None:
    h.room(realtime_cap=1)
    seat = h.join()
    assert h.join()["mode"] == "hls"
    lease = seat["lease"]["id"]  # type: ignore[index]
    assert h.client.delete(f"/v1/rooms/launch/listeners/{lease}").status_code == 204
    assert h.client.delete(f"/v1/rooms/launch/listeners/{lease}").status_code == 204  # idempotent
    assert h.join()["mode"] == "realtime"  # this worker cleared its hint
    _error(h.client.delete(f"/v1/rooms/launch/listeners/{'N' * 22}"), 404, "not_found")


def test_heartbeat_renews_and_refreshes_the_token(h: Harness) -> None:
    h.room(realtime_cap=1)
    seat = h.join()
    lease = seat["lease"]["id"]  # type: ignore[index]
    h.clock.advance(20)
    r = h.client.post(f"/v1/rooms/launch/listeners/{lease}/heartbeat")
    assert r.status_code == 200
    renewed = r.json()
    assert renewed["lease"] == {"id": lease, "expires_at": h.clock.now + LEASE_S, "heartbeat_interval_seconds": 10.0}
    assert verify_seat_token(renewed["seat_token"], SECRET, now=h.clock.now + 25).exp >= h.clock.now + LEASE_S
    h.clock.advance(25)  # 45 s after joining: the seat is still held thanks to the heartbeat
    assert h.join()["mode"] == "hls"


def test_heartbeat_errors_are_clear(h: Harness) -> None:
    h.room(realtime_cap=1)
    lease = h.join()["lease"]["id"]  # type: ignore[index]
    _error(h.client.post("/v1/rooms/launch/listeners/bad!/heartbeat"), 400, "invalid_request")
    _error(h.client.post(f"/v1/rooms/launch/listeners/{'U' * 22}/heartbeat"), 404, "not_found")
    h.clock.advance(LEASE_S)
    detail = _error(h.client.post(f"/v1/rooms/launch/listeners/{lease}/heartbeat"), 410, "lease_ended")
    assert "expired" in str(detail)


def test_expired_leases_free_seats(h: Harness) -> None:
    h.room(realtime_cap=2)
    h.join(), h.join()
    assert h.join()["mode"] == "hls"
    h.clock.advance(LEASE_S)
    assert [h.join()["mode"] for _ in range(3)] == ["realtime", "realtime", "hls"]


def test_cap_zero_sends_everyone_to_hls_without_the_backend(h: Harness) -> None:
    h.room(realtime_cap=0)
    assert h.join()["reason"] == "no_realtime"
    assert h.backend.admits == 0


def test_an_ended_broadcast_is_409_with_the_replay(h: Harness) -> None:
    h.room(realtime_cap=5)
    replay = "https://cdn.example/rooms/launch/replay.m3u8"
    h.broadcasts.info["launch"] = BroadcastInfo(state="ended", replay_url=replay)
    h.clock.advance(2)
    detail = _error(h.client.post("/v1/rooms/launch/listeners"), 409, "conflict")
    assert detail == {"message": "the broadcast in room 'launch' has ended", "replay_url": replay}


def test_rate_limit_per_client_with_retry_after(tmp_path: Path) -> None:
    with harness(tmp_path, rate_per_minute=3) as h:
        h.room(realtime_cap=1)
        for _ in range(3):
            h.join()
        r = h.client.post("/v1/rooms/launch/listeners")
        _error(r, 429, "rate_limited")
        assert r.headers["Retry-After"] == "20"
        h.clock.advance(20)
        h.join()
        _error(h.client.post("/v1/rooms/nowhere/listeners"), 429, "rate_limited")  # limited before any lookup


def test_room_view_counts(h: Harness) -> None:
    h.room(realtime_cap=3)
    h.join(), h.join()
    h.clock.advance(2)
    for _ in range(4):
        h.join()  # 1 seat, then 3 HLS answers
    h.deps.publisher.flush(h.clock.now)
    view = h.client.get("/v1/rooms/launch", headers=AUTH).json()
    assert (view["seats_taken"], view["seats_left"], view["hls_listeners_recent"]) == (3, 0, 3)


def test_status_json_is_published_with_the_status_cache_policy(h: Harness) -> None:
    h.room(realtime_cap=1, title="Launch")
    h.deps.publisher.flush(h.clock.now)
    key = layout.status("launch")
    assert json.loads(h.storage.get(key))["realtime"]["open"] is True
    assert h.storage.get_headers(key) == headers_for(ObjectKind.STATUS)
    h.join()
    h.clock.advance(1.0)
    h.deps.publisher.flush(h.clock.now)
    doc = json.loads(h.storage.get(key))
    assert doc["realtime"] == {"open": False, "cap": 1, "seats_taken": 1, "seats_left": 0}
    assert doc["title"] == "Launch"


def test_backend_down_is_503_and_the_server_keeps_serving(tmp_path: Path) -> None:
    dead = connect(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    with harness(tmp_path, backend=RedisAdmission(dead), rooms=RedisRoomRegistry(dead)) as h:
        for _ in range(3):
            r = h.client.post("/v1/rooms/launch/listeners")
            _error(r, 503, "unavailable")
            assert r.headers["Retry-After"] == "1"
        _error(h.client.get("/v1/rooms/launch", headers=AUTH), 503, "unavailable")
        _error(h.client.post("/v1/rooms/BAD/listeners"), 400, "invalid_request")
