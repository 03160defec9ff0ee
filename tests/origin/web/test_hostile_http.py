"""Issue 14, hostile HTTP against a real origin (findings 3, 6, 9, 10): bounded bodies checked after the
credentials, read deadlines, per-room bounds, rate limits that a header cannot dodge, ASCII-only names, no
Host reflection, no leaked spool files, room deletion, bearer parsing, clean logs, strict room fields.

Each test here failed on the main before the origin rewrite (9999087).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from origin.storage import packs
from origin.storage.filesystem import FilesystemStorage
from tests.origin.conftest import Fmp4Media
from tests.origin.web.hostile import (
    ADMIN,
    LADDER,
    LogWatch,
    RoomClient,
    make_room,
    raw_request,
    status_of,
    token_for,
    wait_for,
)
from tests.support.origin_server import OriginServer, origin_server
from tests.support.pusher import new_session_id

WORKERS = 2
JOIN_RATE = 30  # SPILLWAY_JOIN_RATE_PER_MINUTE's default, per client address (and per worker)
HUGE = 256 * 1024 * 1024


@pytest.fixture(scope="module")
def origin() -> Iterator[OriginServer]:
    with origin_server(workers=WORKERS, env={"SPILLWAY_FILL_GAPS": "false"}) as server:
        yield server


@pytest.fixture()
def log(origin: OriginServer) -> Iterator[LogWatch]:
    watch = LogWatch(origin.log_path)
    yield watch
    time.sleep(0.3)  # let the origin log what the test's last request caused
    watch.assert_clean()


@pytest.fixture(scope="module")
def room(origin: OriginServer) -> RoomClient:
    return make_room(origin, "hostile-http", realtime_cap=2)


def head(method: str, path: str, *headers: str) -> str:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{h}\r\n" for h in headers) + "\r\n"


# ---- finding 3: bodies are bounded and read only after the credentials; slow clients are cut off -----------


@pytest.mark.parametrize(
    ("path", "auth", "expected"),
    [
        ("/ingest/hostile-http/{sid}/start", "", 401),
        ("/ingest/hostile-http/{sid}/start", f"Bearer {token_for('hostile-http')}", 413),
        ("/ingest/hostile-http/{sid}/end", "", 401),
        ("/ingest/hostile-http/{sid}/a64/000000.m4s", "", 401),
        ("/ingest/hostile-http/{sid}/a64/000000.m4s", f"Bearer {token_for('hostile-http')}", 413),
        ("/v1/rooms/hostile-http", "", 401),
        ("/v1/rooms/hostile-http", "Bearer test-admin-token", 413),
    ],
)
def test_finding_3_a_256_mb_body_is_refused_before_a_byte_of_it_is_read(
    origin: OriginServer, room: RoomClient, log: LogWatch, path: str, auth: str, expected: int
) -> None:
    method = "PUT" if path.startswith("/v1/") or path.endswith(".m4s") else "POST"
    headers = [f"Content-Length: {HUGE}", "Content-Type: application/json"] + ([f"Authorization: {auth}"] if auth
                                                                               else [])  # fmt: skip
    answer = raw_request(origin.base_url, head(method, path.format(sid=new_session_id()), *headers))
    assert status_of(answer) == expected, answer[:300]


def test_finding_3_a_chunked_body_is_cut_at_the_cap(origin: OriginServer, room: RoomClient, log: LogWatch) -> None:
    chunk = b"x" * 65536
    body = b"".join(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(4))
    path = f"/ingest/{room.room}/{new_session_id()}/start"
    answer = raw_request(origin.base_url, head("POST", path, "Transfer-Encoding: chunked",
                                               f"Authorization: Bearer {token_for(room.room)}"), body)  # fmt: skip
    assert status_of(answer) == 413, answer[:300]


def test_finding_3_slow_headers_and_slow_bodies_are_timed_out(origin: OriginServer, log: LogWatch) -> None:
    """25 connections trickle their headers and 25 stall their body: all are closed by the origin's deadlines
    (headers 10 s, body idle 15 s; origin/web/protocol.py) while it keeps serving everyone else."""
    host, port = origin.base_url.removeprefix("http://").split(":")
    slow_head, slow_body = [], []
    for _ in range(25):
        s = socket.create_connection((host, int(port)))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        slow_head.append(s)
        b = socket.create_connection((host, int(port)))
        b.sendall(head("PUT", "/v1/rooms/slow-body", "Content-Length: 10000", "Authorization: Bearer test-admin-token",
                       "Content-Type: application/json").encode() + b'{"realti')  # fmt: skip
        slow_body.append(b)
    closed: dict[socket.socket, float] = {}
    started = time.monotonic()
    while len(closed) < 50 and time.monotonic() - started < 25:
        assert httpx.get(f"{origin.base_url}/healthz", timeout=2).status_code == 200
        for s in slow_head + slow_body:
            if s in closed:
                continue
            try:
                if s in slow_head:
                    s.sendall(b"a")  # one header byte a second: never a complete head
                s.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    if s.recv(4096) == b"":
                        closed[s] = time.monotonic() - started
            except OSError:
                closed[s] = time.monotonic() - started
            finally:
                s.setblocking(True)
        time.sleep(1.0)
    for s in slow_head + slow_body:
        s.close()
    assert len(closed) == 50, f"{50 - len(closed)} slow connections still open after 25 s"
    assert max(closed.get(s, 99) for s in slow_head) < 14
    assert max(closed.get(s, 99) for s in slow_body) < 19


# ---- finding 6: sessions and renditions per room are bounded -------------------------------------------------


def test_finding_6_renditions_and_session_starts_per_room_are_bounded(origin: OriginServer, log: LogWatch) -> None:
    client = make_room(origin, "hostile-sessions")
    nine = {**LADDER, "renditions": [{**LADDER["renditions"][0], "name": f"a{i}"} for i in range(9)]}  # type: ignore[dict-item]
    _, r = client.start(body=nine)
    assert r.status_code == 400, r.text
    answers = [client.start()[1] for _ in range(14)]
    assert [a.status_code for a in answers[:12]] == [201] * 12
    assert {a.status_code for a in answers[12:]} == {429}
    assert int(answers[-1].headers["Retry-After"]) >= 1


# ---- finding 9: rate limits --------------------------------------------------------------------------------


def test_finding_9_a_forwarded_for_that_is_not_an_address_does_not_dodge_the_join_limit(
    origin: OriginServer, room: RoomClient, log: LogWatch
) -> None:
    url = f"{origin.base_url}/v1/rooms/{room.room}/listeners"
    started = time.monotonic()
    codes = [httpx.post(url, headers={"X-Forwarded-For": f"not-an-ip-{i}"}, timeout=5).status_code
             for i in range(100)]  # fmt: skip
    refill = (time.monotonic() - started) * JOIN_RATE / 60 + 1  # the bucket refills while the loop runs
    budget = (JOIN_RATE + refill) * WORKERS  # each worker limits on its own
    assert sum(c != 429 for c in codes) <= budget, codes


def test_finding_9_heartbeats_and_leaves_are_rate_limited(
    origin: OriginServer, room: RoomClient, log: LogWatch
) -> None:
    base = f"{origin.base_url}/v1/rooms/{room.room}/listeners"
    with httpx.Client(timeout=5, headers={"X-Forwarded-For": "203.0.113.9"}) as http:
        codes = []
        for i in range(300):
            lease = secrets.token_urlsafe(16)
            r = http.post(f"{base}/{lease}/heartbeat") if i % 2 else http.delete(f"{base}/{lease}")
            codes.append(r.status_code)
    assert set(codes) <= {404, 429}
    assert codes.count(429) >= 300 - 120 * WORKERS, codes  # 120 seat calls a minute per address


# ---- finding 10 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["%D9%A1%D9%A2.m4s", "init_%D9%A1.mp4", "%EF%BC%91.m4s", "%F0%9D%9F%8F.m4s"])
def test_finding_10_unicode_digits_in_object_names_are_refused(
    origin: OriginServer, room: RoomClient, fmp4_media: Fmp4Media, log: LogWatch, name: str
) -> None:
    session, _ = room.start()
    body = fmp4_media.init if name.startswith("init") else fmp4_media.segments[0]
    r = room.put(session, name, body)
    assert r.status_code == 400, r.text
    assert not [f for f in room.media_files() if f.startswith(session)]


@pytest.mark.parametrize("path", ["/v1/rooms/", "/healthz/", "/v1/rooms/hostile-http/", "/embed/hostile-http/"])
def test_finding_10_the_host_header_is_never_reflected_in_a_redirect(
    origin: OriginServer, log: LogWatch, path: str
) -> None:
    r = httpx.get(f"{origin.base_url}{path}", headers={"Host": "evil.example", **ADMIN}, timeout=5)
    assert not 300 <= r.status_code < 400, r.headers
    assert "evil.example" not in r.headers.get("location", "") and "evil.example" not in r.text


def test_finding_10_a_re_put_object_leaves_no_spool_file(
    origin: OriginServer, room: RoomClient, fmp4_media: Fmp4Media, log: LogWatch
) -> None:
    session, _ = room.start()
    for name, body in (("init.mp4", fmp4_media.init), ("000000.m4s", fmp4_media.segments[0])):
        assert room.put(session, name, body).status_code == 201
    wait_for("segment 0 published", lambda: session in (room.live_playlist() or ""))
    for name, body in (("init.mp4", fmp4_media.init), ("000000.m4s", fmp4_media.segments[0])):
        assert room.put(session, name, body).status_code == 201  # an identical repeat: idempotent
    assert room.put(session, "000000.m4s", fmp4_media.segments[1]).status_code == 409  # names are immutable
    time.sleep(1.0)
    spool = origin.state_dir / "spool"
    assert not [p for p in spool.rglob("*") if p.is_file()] if spool.exists() else True


def test_finding_10_a_room_can_be_deleted_with_everything_it_published(
    origin: OriginServer, fmp4_media: Fmp4Media, log: LogWatch
) -> None:
    client = make_room(origin, "hostile-delete")
    session, _ = client.start()
    for name, body in (("init.mp4", fmp4_media.init), ("000000.m4s", fmp4_media.segments[0])):
        assert client.put(session, name, body).status_code == 201
    wait_for("a playlist", client.live_playlist)
    url = f"{origin.base_url}/v1/rooms/{client.room}"
    assert httpx.delete(url, headers=ADMIN, timeout=10).status_code == 409  # on air: end it first
    assert httpx.post(f"{url}/end", headers=ADMIN, timeout=10).status_code == 200
    wait_for("the end", lambda: client.broadcast_state() == "ended")
    r = httpx.delete(url, headers=ADMIN, timeout=30)
    assert r.status_code == 200 and r.json()["deleted"] is True, r.text
    assert httpx.get(url, headers=ADMIN, timeout=10).status_code == 404
    assert httpx.delete(url, headers=ADMIN, timeout=10).status_code == 404
    time.sleep(1.5)  # status.json is written on its own schedule: a deleted room must not get one back
    assert FilesystemStorage(origin.storage_root).list(f"rooms/{client.room}/") == []
    left = origin.storage_root / "rooms" / client.room  # the packs' bytes went too, not just their names
    assert not [p for p in left.rglob("*") if p.is_file() and packs.is_pack(p.name)] if left.exists() else True
    assert not (origin.state_dir / "rooms" / client.room).exists()
    assert httpx.get(f"{origin.base_url}/rooms/{client.room}/live/a64.m3u8", timeout=5).status_code == 404


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [("bearer {t}", 201), ("BEARER {t}", 201), ("Bearer   {t}  ", 201), ("Bearer ", 401), ("Bearer", 401),
     ("Basic {t}", 401), ("", 401), ("Bearer wrong-token-0123456789abcdef", 403)],
)  # fmt: skip
def test_finding_10_ingest_reads_the_bearer_scheme_like_admin_does(
    origin: OriginServer, room: RoomClient, log: LogWatch, authorization: str, expected: int
) -> None:
    body = json.dumps(LADDER).encode()
    auth = [f"Authorization: {authorization.format(t=token_for(room.room))}"] if authorization else []
    path = f"/ingest/{room.room}/{new_session_id()}/start"  # a raw request: httpx refuses odd header values
    answer = raw_request(origin.base_url, head("POST", path, f"Content-Length: {len(body)}",
                                               "Content-Type: application/json", *auth), body)  # fmt: skip
    assert status_of(answer) == expected, answer[:400]
    if expected == 401:
        assert b"\r\nwww-authenticate: Bearer" in answer.lower().replace(b"bearer", b"Bearer")


def test_finding_10_an_aborted_upload_is_logged_without_a_traceback(
    origin: OriginServer, room: RoomClient, log: LogWatch
) -> None:
    session, _ = room.start()
    host, port = origin.base_url.removeprefix("http://").split(":")
    for _ in range(3):
        with socket.create_connection((host, int(port))) as s:
            s.sendall(head("PUT", f"/ingest/{room.room}/{session}/a64/000001.m4s", "Content-Length: 100000",
                           f"Authorization: Bearer {token_for(room.room)}").encode() + b"\0" * 1000)  # fmt: skip
            time.sleep(0.2)
    seen = ""

    def logged() -> bool:
        nonlocal seen
        seen += log.new_text()
        return seen.count("aborted by the client") >= 3

    wait_for("three INFO lines for the aborted uploads", logged, timeout_s=10)
    assert "Traceback" not in seen and "[ERROR]" not in seen, seen[-3000:]
    assert not [f for f in room.media_files() if f.startswith(session)]


@pytest.mark.parametrize("text", ["evil\u202eexe.mp3", "zero\u200bwidth", "line\u2028sep", "para\u2029sep",
                                  "nel\u0085", "bom\ufeff", "tag\U000e0041", "bell\x07"])  # fmt: skip
def test_finding_10_titles_and_hosts_with_bidi_format_or_control_characters_are_refused(
    origin: OriginServer, log: LogWatch, text: str
) -> None:
    for field in ("title", "host"):
        body = {"realtime_cap": 0, field: text}
        r = httpx.put(f"{origin.base_url}/v1/rooms/hostile-title", json=body, headers=ADMIN, timeout=10)
        assert r.status_code == 400, (field, r.text)


def test_finding_10_ordinary_unicode_titles_are_kept(origin: OriginServer, log: LogWatch) -> None:
    body = {"realtime_cap": 0, "title": "Café — 会議 ٣ 🎙", "host": "Zoë O'Brien"}
    r = httpx.put(f"{origin.base_url}/v1/rooms/hostile-title", json=body, headers=ADMIN, timeout=10)
    assert r.status_code in (200, 201) and r.json()["title"] == body["title"], r.text


@pytest.mark.parametrize("value", ["http://127.1", "http://0x7f.0.0.1", "http://2130706433", "http://127.0.0.01",
                                   "http://017700000001", "http://1.2.3.4.5", "https://example.123"])  # fmt: skip
def test_finding_10_numeric_hosts_other_than_dotted_quad_ipv4_are_refused_as_embed_origins(
    origin: OriginServer, log: LogWatch, value: str
) -> None:
    body = {"realtime_cap": 0, "embed_origins": [value]}
    r = httpx.put(f"{origin.base_url}/v1/rooms/hostile-origins", json=body, headers=ADMIN, timeout=10)
    assert r.status_code == 400, r.text


def test_finding_10_canonical_embed_origins_are_accepted(origin: OriginServer, log: LogWatch) -> None:
    good = ["http://127.0.0.1:8080", "https://news.example", "https://a-1.example.co.uk:8443"]
    body = {"realtime_cap": 0, "embed_origins": good}
    r = httpx.put(f"{origin.base_url}/v1/rooms/hostile-origins", json=body, headers=ADMIN, timeout=10)
    assert r.status_code in (200, 201) and r.json()["embed_origins"] == good, r.text
