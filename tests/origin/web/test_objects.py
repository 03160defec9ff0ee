"""The filesystem read router behind a real uvicorn server on a free loopback port."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.storage.filesystem import FilesystemStorage
from origin.web.objects import (
    STREAM_THRESHOLD_BYTES,
    ByteRange,
    RangeNotSatisfiable,
    build_storage_router,
    parse_range,
)
from tests.support.net import free_port

SEGMENT = headers_for(ObjectKind.SEGMENT)
PLAYLIST = headers_for(ObjectKind.LIVE_PLAYLIST)
ROOM = "serve-room"
SEG_KEY = layout.media_segment(ROOM, "20261126t090301z-3f9a1c0d", "a48", 3)
PL_KEY = layout.live_playlist(ROOM, "a48")
BIG_KEY = layout.replay_download(ROOM)
SEG_BODY = bytes(range(256)) * 50  # 12,800 bytes
BIG_BODY = bytes(i % 251 for i in range(STREAM_THRESHOLD_BYTES + 300_000))
SECRET = b"outside the storage root"


@dataclass(kw_only=True)
class Served:
    port: int
    storage: FilesystemStorage

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Send `path` byte for byte (no client-side normalization of `..` or percent-escapes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("serve")
    (base / "secret").write_bytes(SECRET)
    storage = FilesystemStorage(base / "store")
    storage.put(SEG_KEY, SEG_BODY, SEGMENT)
    storage.put(PL_KEY, b"#EXTM3U\n#EXT-X-VERSION:7\n", PLAYLIST)
    storage.put(BIG_KEY, BIG_BODY, headers_for(ObjectKind.DOWNLOAD))
    (storage.root / "rooms" / ROOM / "escape").symlink_to(base / "secret")
    app = FastAPI()
    app.include_router(build_storage_router(storage))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn-serve-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield Served(port=port, storage=storage)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _assert_not_found(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 404
    assert headers["cache-control"] == "public, max-age=1"
    assert SECRET not in body
    if body:  # HEAD has none
        assert json.loads(body)["error"] == "not_found"  # the one error shape


def test_get_serves_bytes_with_stored_headers(served: Served) -> None:
    status, headers, body = served.request("GET", "/" + SEG_KEY)
    assert status == 200
    assert body == SEG_BODY
    assert headers["content-type"] == "audio/mp4"
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["content-length"] == str(len(SEG_BODY))
    assert headers["accept-ranges"] == "bytes"
    assert headers["etag"].startswith('"') and headers["etag"].endswith('"')
    mtime_ns = served.storage.open_object(SEG_KEY, headers_only=True).mtime_ns
    assert headers["last-modified"] == formatdate(mtime_ns / 1e9, usegmt=True)
    status, headers, body = served.request("GET", "/" + PL_KEY)
    assert (status, headers["content-type"], headers["cache-control"]) == (
        200,
        "application/vnd.apple.mpegurl",
        "public, max-age=1",
    )
    assert body.startswith(b"#EXTM3U")


def test_head_has_headers_and_no_body(served: Served) -> None:
    _, get_headers, _ = served.request("GET", "/" + SEG_KEY)
    status, headers, body = served.request("HEAD", "/" + SEG_KEY)
    assert status == 200 and body == b""
    for name in ("content-type", "cache-control", "etag", "last-modified", "accept-ranges", "content-length"):
        assert headers[name] == get_headers[name], name
    status, headers, body = served.request("HEAD", "/" + layout.status("nobody"))
    assert (status, body) == (404, b"") and headers["cache-control"] == "public, max-age=1"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=12700-", 12700, 12799),
        ("bytes=-10", 12790, 12799),
        ("bytes=12000-99999", 12000, 12799),
    ],
)
def test_single_range(served: Served, header: str, start: int, end: int) -> None:
    status, headers, body = served.request("GET", "/" + SEG_KEY, {"Range": header})
    assert status == 206
    assert body == SEG_BODY[start : end + 1]
    assert headers["content-range"] == f"bytes {start}-{end}/{len(SEG_BODY)}"
    assert headers["content-length"] == str(end - start + 1)
    assert headers["content-type"] == "audio/mp4"


def test_unsatisfiable_range_is_416(served: Served) -> None:
    status, headers, body = served.request("GET", "/" + SEG_KEY, {"Range": f"bytes={len(SEG_BODY)}-"})
    assert status == 416
    assert headers["content-range"] == f"bytes */{len(SEG_BODY)}"
    assert json.loads(body)["error"] == "range_not_satisfiable"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-2", "bytes=abc"])
def test_multi_or_malformed_range_serves_whole_object(served: Served, header: str) -> None:
    status, _, body = served.request("GET", "/" + SEG_KEY, {"Range": header})
    assert status == 200 and body == SEG_BODY


def test_if_range_and_conditional_get(served: Served) -> None:
    _, headers, _ = served.request("GET", "/" + SEG_KEY)
    etag = headers["etag"]
    status, _, body = served.request("GET", "/" + SEG_KEY, {"Range": "bytes=0-9", "If-Range": etag})
    assert (status, body) == (206, SEG_BODY[:10])
    status, _, body = served.request("GET", "/" + SEG_KEY, {"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert (status, body) == (200, SEG_BODY)
    status, headers304, body = served.request("GET", "/" + SEG_KEY, {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert headers304["etag"] == etag and headers304["cache-control"] == SEGMENT.cache_control
    status, _, _ = served.request("GET", "/" + SEG_KEY, {"If-None-Match": '"other"'})
    assert status == 200
    status, _, _ = served.request("GET", "/" + SEG_KEY, {"If-Modified-Since": headers["last-modified"]})
    assert status == 304


def test_large_object_is_streamed_whole_and_by_range(served: Served) -> None:
    status, headers, body = served.request("GET", "/" + BIG_KEY)
    assert status == 200 and body == BIG_BODY
    assert headers["content-length"] == str(len(BIG_BODY))
    start = 100_000
    status, headers, body = served.request("GET", "/" + BIG_KEY, {"Range": f"bytes={start}-"})
    assert status == 206 and body == BIG_BODY[start:]


@pytest.mark.parametrize(
    "path",
    [
        "/rooms/serve-room/missing.m3u8",
        "/rooms/",
        "/rooms/../secret",
        "/rooms/../../secret",
        "/rooms/%2e%2e/secret",
        "/rooms/%2E%2E/%2E%2E/secret",
        "/rooms/..%2f..%2fsecret",
        "/rooms/serve-room%2Flive%2Fa48.m3u8",  # an encoded slash is not a path separator here
        "/rooms/serve-room/live/a48.m3u8%00",
        "/rooms//etc/passwd",
        "/rooms/serve-room\\live\\a48.m3u8",
        "/rooms/serve-room/live/.a48.m3u8~headers.json",  # the headers sidecar is never an object
        "/rooms/serve-room/escape",  # a symlink out of the root
        "/rooms/serve-room/live",  # a directory
        "/rooms/./serve-room/live/a48.m3u8",
    ],
)
def test_missing_invalid_and_traversal_paths_are_404(served: Served, path: str) -> None:
    _assert_not_found(*served.request("GET", path))


def test_corrupt_sidecar_is_503_not_500(served: Served) -> None:
    key = layout.status(ROOM)
    served.storage.put(key, b"{}", headers_for(ObjectKind.STATUS))
    sidecar = served.storage.path_for(key).with_name(".status.json~headers.json")
    assert sidecar.exists()
    sidecar.write_bytes(b"{not json")
    status, headers, body = served.request("GET", "/" + key)
    assert status == 503
    assert headers["cache-control"] == "public, max-age=1" and headers["retry-after"] == "1"
    assert json.loads(body) == {"error": "unavailable", "detail": "storage unavailable"}


def test_object_without_sidecar_gets_fallback_headers(served: Served, tmp_path: Path) -> None:
    path = served.storage.path_for(layout.master_playlist("hand-copied"))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"#EXTM3U\n")
    status, headers, body = served.request("GET", "/" + layout.master_playlist("hand-copied"))
    assert (status, body) == (200, b"#EXTM3U\n")
    assert headers["content-type"] == "application/octet-stream"


def test_parse_range_pure() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-4", 10) == ByteRange(start=2, end=4)
    assert parse_range("bytes=-3", 10) == ByteRange(start=7, end=9)
    assert parse_range("bytes=-30", 10) == ByteRange(start=0, end=9)
    assert parse_range("BYTES=5-", 10) == ByteRange(start=5, end=9)
    assert parse_range("bytes=-", 10) is None
    for header, size in (("bytes=10-", 10), ("bytes=-0", 10), ("bytes=0-", 0), ("bytes=-1", 0)):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(header, size)
