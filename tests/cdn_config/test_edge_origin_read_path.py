"""The edge in front of the real origin (gunicorn) with filesystem storage: `/rooms/...` misses go to the
origin's storage read path, which the edge revalidates with conditional requests once a playlist expires."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from origin.contract.cache_policy import ERROR_MAX_AGE_S, ObjectKind, headers_for
from origin.edge.nginx_process import EdgeOptions, EdgeProcess, run_edge
from origin.storage.filesystem import FilesystemStorage
from tests.cdn_config.conftest import ALLOWED_ORIGIN, fresh_room
from tests.cdn_config.stream import HlsStream, publish
from tests.support.origin_server import OriginServer, origin_server


@pytest.fixture(scope="module")
def origin() -> Iterator[OriginServer]:
    with origin_server(workers=1) as server:
        yield server


@pytest.fixture(scope="module")
def edge(origin: OriginServer) -> Iterator[EdgeProcess]:
    with run_edge(EdgeOptions(origin_url=origin.base_url, allowed_origins=(ALLOWED_ORIGIN,))) as running:
        yield running


def test_stream_through_edge_and_origin_read_path(origin: OriginServer, edge: EdgeProcess,
                                                  hls_stream: HlsStream) -> None:
    storage = FilesystemStorage(origin.storage_root)
    room = publish(storage, hls_stream, room=fresh_room("fs"))
    for kind, key in room.by_kind().items():
        resp = httpx.get(f"{edge.base_url}/{key}", headers={"Origin": ALLOWED_ORIGIN}, timeout=10)
        assert resp.status_code == 200, (kind, resp.text[:200])
        assert resp.headers["content-type"].startswith(headers_for(kind).content_type)
        assert resp.headers["cache-control"] == headers_for(kind).cache_control
        assert resp.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    segment = httpx.get(f"{edge.base_url}/{room.segments[2]}", headers={"Range": "bytes=8-23"}, timeout=10)
    assert (segment.status_code, segment.content) == (206, hls_stream.segments[2][8:24])
    assert httpx.get(f"{edge.base_url}/healthz", timeout=10).json() == {"status": "ok"}


def test_expired_playlist_is_revalidated_not_refetched(origin: OriginServer, edge: EdgeProcess,
                                                       hls_stream: HlsStream) -> None:
    storage = FilesystemStorage(origin.storage_root)
    room = publish(storage, hls_stream, room=fresh_room("reval"))
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        assert httpx.get(f"{edge.base_url}/{room.live_playlist}", timeout=10).status_code == 200
        statuses = [e.upstream_status for e in edge.upstream_log() if e.uri == f"/{room.live_playlist}"]
        if "304" in statuses:
            break
        time.sleep(0.25)
    assert statuses[0] == "200"
    assert "304" in statuses  # the unchanged playlist was revalidated (If-None-Match), not sent again


def test_segment_missing_at_the_origin_appears_quickly(origin: OriginServer, edge: EdgeProcess,
                                                       hls_stream: HlsStream) -> None:
    storage = FilesystemStorage(origin.storage_root)
    key = f"rooms/{fresh_room('late')}/media/sess-0001/a64/000003.m4s"
    missing = httpx.get(f"{edge.base_url}/{key}", timeout=10)
    assert missing.status_code == 404
    assert missing.headers["cache-control"] == f"public, max-age={ERROR_MAX_AGE_S}"
    storage.put(key, hls_stream.segments[0], headers_for(ObjectKind.SEGMENT))
    published = time.monotonic()
    while httpx.get(f"{edge.base_url}/{key}", timeout=10).status_code != 200:
        assert time.monotonic() - published < ERROR_MAX_AGE_S + 1.5
        time.sleep(0.05)
