"""The nginx edge over HTTP, in front of both storage read paths: the origin-style HTTP read path (a
counting store) and an S3 endpoint (moto, path-style, with a key prefix). Real nginx, real ffmpeg media."""

from __future__ import annotations

import time

import httpx
import pytest

from origin.contract.cache_policy import ERROR_MAX_AGE_S, ObjectKind, headers_for
from origin.edge.nginx_config import s3_storage
from origin.edge.nginx_process import EdgeOptions, run_edge
from tests.cdn_config.conftest import (
    ALLOWED_ORIGIN,
    BUCKET,
    OTHER_ALLOWED_ORIGIN,
    S3_PREFIX,
    EdgeRig,
    fresh_room,
    s3_putter,
)
from tests.cdn_config.stream import HlsStream, Published, publish
from tests.cdn_config.upstream import CountingStore
from tests.support.moto_server import MotoServer
from tests.support.net import free_port

NO_GZIP = {"Accept-Encoding": "identity"}


def _get(rig: EdgeRig, key: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{rig.url}/{key}", headers=headers, timeout=10)


@pytest.fixture
def room(rig: EdgeRig, hls_stream: HlsStream) -> Published:
    return publish(rig.store, hls_stream, room=fresh_room(rig.kind))


def test_each_object_kind_keeps_the_headers_the_origin_set(rig: EdgeRig, room: Published) -> None:
    for kind, key in room.by_kind().items():
        first = httpx.get(f"{rig.url}/{key}", headers=NO_GZIP, timeout=10)
        second = httpx.get(f"{rig.url}/{key}", headers=NO_GZIP, timeout=10)
        expected = headers_for(kind)
        for resp in (first, second):
            assert resp.status_code == 200, (kind, key, resp.status_code)
            assert resp.headers["content-type"] == expected.content_type, kind
            assert resp.headers["cache-control"] == expected.cache_control, kind
        assert first.content == second.content
        assert (first.headers["x-cache-status"], second.headers["x-cache-status"]) == ("MISS", "HIT"), kind
        assert len(rig.upstream_hits(key)) == 1, kind


def test_served_bytes_are_the_stored_bytes(rig: EdgeRig, room: Published, hls_stream: HlsStream) -> None:
    assert _get(rig, room.init).content == hls_stream.init
    for key, data in zip(room.segments, hls_stream.segments, strict=True):
        assert _get(rig, key).content == data


def test_storage_headers_do_not_leak(rig: EdgeRig, room: Published) -> None:
    resp = _get(rig, room.segments[0], Origin=ALLOWED_ORIGIN)
    leaked = [name for name in resp.headers if name.lower().startswith("x-amz-")]
    assert leaked == []
    assert "set-cookie" not in resp.headers
    assert [v.strip() for v in resp.headers["vary"].split(",")] == ["Origin"]


def test_cors_echoes_only_allowed_embed_origins(rig: EdgeRig, room: Published) -> None:
    for origin in (ALLOWED_ORIGIN, OTHER_ALLOWED_ORIGIN):
        resp = _get(rig, room.live_playlist, Origin=origin)
        assert resp.headers["access-control-allow-origin"] == origin
        assert "Origin" in resp.headers["vary"]
        assert "X-Cache-Status" in resp.headers["access-control-expose-headers"]
    for origin in ("https://evil.example", "https://news.example.evil.example", "null"):
        resp = _get(rig, room.live_playlist, Origin=origin)
        assert resp.status_code == 200
        assert "access-control-allow-origin" not in resp.headers, origin
        assert "Origin" in resp.headers["vary"]
    assert "access-control-allow-origin" not in _get(rig, room.live_playlist).headers


def test_preflight_is_answered_at_the_edge(rig: EdgeRig, hls_stream: HlsStream) -> None:
    key = publish(rig.store, hls_stream, room=fresh_room(rig.kind)).segments[0]
    request = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range"}
    resp = httpx.options(f"{rig.url}/{key}", headers={"Origin": ALLOWED_ORIGIN, **request}, timeout=10)
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert [m.strip() for m in resp.headers["access-control-allow-methods"].split(",")] == ["GET", "HEAD", "OPTIONS"]
    assert "range" in resp.headers["access-control-allow-headers"].lower()
    assert int(resp.headers["access-control-max-age"]) > 0
    denied = httpx.options(f"{rig.url}/{key}", headers={"Origin": "https://evil.example", **request}, timeout=10)
    assert denied.status_code == 204
    assert "access-control-allow-origin" not in denied.headers
    assert rig.upstream_hits(key) == []  # preflights never reach storage


def test_range_requests_get_206_with_the_right_bytes(rig: EdgeRig, room: Published, hls_stream: HlsStream) -> None:
    key, data = room.segments[1], hls_stream.segments[1]
    for attempt in ("miss", "hit"):
        resp = _get(rig, key, Range="bytes=100-299")
        assert resp.status_code == 206, attempt
        assert resp.content == data[100:300], attempt
        assert resp.headers["content-range"] == f"bytes 100-299/{len(data)}"
        assert resp.headers["cache-control"] == headers_for(ObjectKind.SEGMENT).cache_control
    suffix = _get(rig, key, Range="bytes=-50")
    assert (suffix.status_code, suffix.content) == (206, data[-50:])
    assert _get(rig, key, Range=f"bytes={len(data) + 10}-").status_code == 416
    assert len(rig.upstream_hits(key)) == 1  # storage sent the object once, whole


def test_head_answers_length_without_body(rig: EdgeRig, room: Published, hls_stream: HlsStream) -> None:
    resp = httpx.head(f"{rig.url}/{room.init}", timeout=10)
    assert resp.status_code == 200
    assert int(resp.headers["content-length"]) == len(hls_stream.init)
    assert resp.content == b""


def test_missing_key_is_cached_only_briefly(rig: EdgeRig, hls_stream: HlsStream) -> None:
    room = fresh_room(rig.kind)
    key = f"rooms/{room}/media/sess-0001/a64/000007.m4s"
    first, second = _get(rig, key), _get(rig, key)
    assert (first.status_code, second.status_code) == (404, 404)
    assert second.headers["x-cache-status"] == "HIT"  # errors are cached too, so misses also collapse
    rig.store.put(key, hls_stream.segments[0], headers_for(ObjectKind.SEGMENT))
    published = time.monotonic()
    while (resp := _get(rig, key)).status_code == 404:
        assert time.monotonic() - published < ERROR_MAX_AGE_S + 1.5, "404 cached too long"
        time.sleep(0.05)
    assert resp.status_code == 200
    assert resp.content == hls_stream.segments[0]
    assert len(rig.upstream_hits(key)) <= 2 + 2 * ERROR_MAX_AGE_S


def test_playlists_and_json_are_gzipped_segments_are_not(rig: EdgeRig, room: Published) -> None:
    for key in (room.live_playlist, room.master, room.status):
        zipped = _get(rig, key, **{"Accept-Encoding": "gzip"})
        assert zipped.headers.get("content-encoding") == "gzip", key
        assert "Accept-Encoding" in zipped.headers["vary"]
        plain = _get(rig, key, **NO_GZIP)
        assert "content-encoding" not in plain.headers
        assert zipped.content == plain.content  # httpx decompressed the first
    segment = _get(rig, room.segments[0], **{"Accept-Encoding": "gzip"})
    assert "content-encoding" not in segment.headers


def test_query_strings_do_not_fragment_the_cache(rig: EdgeRig, room: Published) -> None:
    keys = (room.live_playlist, room.segments[0])
    for key in keys:
        bodies = {_get(rig, f"{key}?token=x{n}&_HLS_msnx={n}&_hls_MSN=").content for n in range(5)}
        assert len(bodies) == 1
    assert len(rig.upstream_hits(room.segments[0])) == 1
    # A live playlist asks the origin first: one request for the five, whatever else the query held.
    assert len(rig.upstream_hits(room.live_playlist)) <= 2  # the origin (and storage when it does not know it)


def test_live_playlists_are_keyed_on_the_ll_directives_alone(origin_rig: EdgeRig, counting_store: CountingStore,
                                                             hls_stream: HlsStream) -> None:
    room = publish(counting_store, hls_stream, room=fresh_room("ll-key"))
    queries = ["_HLS_msn=7&_HLS_part=2", "_HLS_part=2&x=1&_HLS_msn=7", "_HLS_msn=7&_HLS_part=2&utm=z",
               "_HLS_msn=7&_HLS_part=2&_HLS_skip=YES", "_HLS_skip=YES&_HLS_msn=7&_HLS_part=2", "_HLS_msn=8"]
    for q in queries:
        assert _get(origin_rig, f"{room.live_playlist}?{q}").status_code == 200
    seen = sorted(r.path for r in counting_store.requests(path=f"/{room.live_playlist}"))
    base = f"/{room.live_playlist}"
    assert seen == sorted([f"{base}?_HLS_msn=7&_HLS_part=2&", f"{base}?_HLS_msn=7&_HLS_part=2&_HLS_skip=YES",
                           f"{base}?_HLS_msn=8&"])  # fmt: skip


def test_other_methods_are_refused_before_storage(rig: EdgeRig, room: Published) -> None:
    for method in ("POST", "PUT", "DELETE"):
        assert httpx.request(method, f"{rig.url}/{room.status}", content=b"x", timeout=10).status_code == 405
    assert rig.upstream_hits(room.status) == []


def test_paths_no_key_can_have_never_reach_storage(rig: EdgeRig) -> None:
    before = len(rig.edge.upstream_log())
    for path in ("/rooms/UPPER/live/a.m3u8", "/rooms/a%0d%0aX:1/live.m3u8", "/rooms/a b.m3u8", "/rooms/", "/x"):
        assert httpx.get(f"{rig.url}{path}", timeout=10).status_code == 404, path
    assert len(rig.edge.upstream_log()) == before


def test_origin_api_paths_pass_through(rig: EdgeRig, counting_store: CountingStore) -> None:
    join = httpx.post(f"{rig.url}/v1/rooms/r1/join", json={"client": "c1"}, timeout=10)
    assert join.status_code == 200
    assert join.json() == {"method": "POST", "path": "/v1/rooms/r1/join", "body": '{"client":"c1"}'}
    before = counting_store.count("/v1/rooms/r1")
    for _ in range(3):
        assert httpx.get(f"{rig.url}/v1/rooms/r1", timeout=10).status_code == 200
    assert counting_store.count("/v1/rooms/r1") == before + 3  # /v1/ is never cached
    embed = f"/embed/{fresh_room('embed')}"
    statuses = [httpx.get(f"{rig.url}{embed}", timeout=10).headers["x-cache-status"] for _ in range(3)]
    assert statuses == ["MISS", "HIT", "HIT"]  # the origin said max-age=30
    assert counting_store.count(embed) == 1
    oembed = httpx.get(f"{rig.url}/oembed?url=https://x.example/r/{fresh_room()}&format=json", timeout=10)
    assert oembed.status_code == 200
    assert httpx.get(f"{rig.url}/healthz", timeout=10).status_code == 200


def test_storage_gets_no_client_headers_cookies_or_query(origin_rig: EdgeRig, counting_store: CountingStore,
                                                         hls_stream: HlsStream) -> None:
    room = publish(counting_store, hls_stream, room=fresh_room("hdr"))
    for key in (room.live_playlist, room.segments[0], room.status):
        resp = httpx.get(
            f"{origin_rig.url}/{key}?session=abc",
            headers={"Cookie": "sid=secret", "Authorization": "Bearer t", "X-Custom": "1", "If-None-Match": '"x"'},
            timeout=10,
        )
        assert resp.status_code == 200
        (seen,) = counting_store.requests(path=f"/{key}")
        assert seen.path == f"/{key}"
        assert set(seen.headers) == {"Host"}, key  # the live playlist went to the origin: Host only, too


def test_private_bucket_403_becomes_a_short_cached_404(hls_stream: HlsStream) -> None:
    # A private bucket (no s3:ListBucket) answers 403 for a missing key.
    with CountingStore(path_prefix="/private-bucket/p/", missing_status=403) as store:
        storage = s3_storage(endpoint_url=store.url, bucket="private-bucket", prefix="p")
        with run_edge(EdgeOptions(origin_url=store.url, storage=storage)) as edge:
            key = f"rooms/{fresh_room('private')}/status.json"
            first = httpx.get(f"{edge.base_url}/{key}", timeout=10)
            second = httpx.get(f"{edge.base_url}/{key}", timeout=10)
            assert (first.status_code, second.status_code) == (404, 404)
            assert second.headers["x-cache-status"] == "HIT"
            assert second.headers["cache-control"] == f"public, max-age={ERROR_MAX_AGE_S}"
            assert store.count(f"/private-bucket/p/{key}") == 1
            store.put(key, b"{}", headers_for(ObjectKind.STATUS))
            deadline = time.monotonic() + ERROR_MAX_AGE_S + 1.5
            while httpx.get(f"{edge.base_url}/{key}", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, "403 cached too long"
                time.sleep(0.05)
        assert not edge.prefix.exists()
        assert edge.proc.poll() is not None


def test_live_playlists_come_from_storage_when_the_origin_is_down(moto: MotoServer, hls_stream: HlsStream) -> None:
    """The live location asks the origin first (blocking reload); an origin that cannot answer (connection
    refused: 502) must not take the room off the air while storage holds the playlist."""
    storage = s3_storage(endpoint_url=moto.endpoint_url, bucket=BUCKET, prefix=S3_PREFIX)
    putter = s3_putter(moto)
    dead_origin = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with run_edge(EdgeOptions(origin_url=dead_origin, storage=storage)) as edge:
        room = publish(putter, hls_stream, room=fresh_room("origin-down"))
        stored = putter.get(room.live_playlist)
        for query in ("", "?_HLS_msn=3&_HLS_part=1", "?_HLS_skip=YES"):
            resp = httpx.get(f"{edge.base_url}/{room.live_playlist}{query}", timeout=10)
            assert resp.status_code == 200, (query, resp.status_code, resp.text[:200])
            assert resp.content == stored, query
            assert resp.headers["cache-control"] == headers_for(ObjectKind.LIVE_PLAYLIST).cache_control
