"""The Storage contract, run against every backend (filesystem in tmp_path, S3 against a real moto server)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from origin.contract import layout
from origin.contract.cache_policy import ObjectHeaders, ObjectKind, headers_for
from origin.errors import StorageError, ValidationError
from origin.storage.base import Storage
from origin.storage.filesystem import FilesystemStorage
from origin.storage.s3 import S3Storage
from tests.support.moto_server import MotoServer
from tests.support.net import free_port

ROOM = "contract-room"
SESSION = "20261126t090301z-3f9a1c0d"
SEGMENT = headers_for(ObjectKind.SEGMENT)
PLAYLIST = headers_for(ObjectKind.LIVE_PLAYLIST)
INVALID_KEYS = [
    "",
    "../x",
    "a/../../x",
    "/abs",
    "a//b",
    "a/./b",
    "a/.",
    "..",
    ".",
    "a/",
    "a\x00b",
    "a\\b",
    "a b",
    "a/b?c",
    "a/%2e%2e/b",
    "rooms/é",
    "x" * 1025,
]


def _get_headers(storage: Storage, key: str) -> ObjectHeaders:
    assert isinstance(storage, FilesystemStorage | S3Storage)
    return storage.get_headers(key)


def test_put_get_exists(storage: Storage) -> None:
    key = layout.media_segment(ROOM, SESSION, "a48", 0)
    assert not storage.exists(key)
    payload = bytes(range(256)) * 40
    storage.put(key, payload, SEGMENT)
    assert storage.exists(key)
    assert storage.get(key) == payload
    assert storage.name in ("filesystem", "s3")


def test_headers_round_trip(storage: Storage) -> None:
    seg = layout.media_segment(ROOM, SESSION, "a48", 1)
    pl = layout.live_playlist(ROOM, "a48")
    storage.put(seg, b"moof", SEGMENT)
    storage.put(pl, b"#EXTM3U\n", PLAYLIST)
    assert _get_headers(storage, seg) == SEGMENT
    assert _get_headers(storage, pl) == PLAYLIST
    assert SEGMENT.cache_control.endswith("immutable") and PLAYLIST.cache_control == "public, max-age=1"
    with pytest.raises(KeyError):
        _get_headers(storage, layout.status(ROOM))


def test_overwrite_replaces_bytes_and_headers_and_reput_is_idempotent(storage: Storage) -> None:
    key = layout.replay_playlist(ROOM, "a48")
    storage.put(key, b"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n", PLAYLIST)
    final = headers_for(ObjectKind.REPLAY_PLAYLIST)
    storage.put(key, b"#EXTM3U\n#EXT-X-ENDLIST\n", final)
    storage.put(key, b"#EXTM3U\n#EXT-X-ENDLIST\n", final)
    assert storage.get(key) == b"#EXTM3U\n#EXT-X-ENDLIST\n"
    assert _get_headers(storage, key) == final
    assert storage.list(layout.room_prefix(ROOM) + "/") == [key]


def test_empty_object(storage: Storage) -> None:
    key = layout.status(ROOM)
    storage.put(key, b"", headers_for(ObjectKind.STATUS))
    assert storage.exists(key)
    assert storage.get(key) == b""


def test_missing_key_raises_key_error(storage: Storage) -> None:
    with pytest.raises(KeyError):
        storage.get(layout.master_playlist("nobody-here"))
    assert not storage.exists(layout.master_playlist("nobody-here"))


def test_list_by_prefix(storage: Storage) -> None:
    written = [
        layout.init_segment(ROOM, SESSION, "a48"),
        layout.media_segment(ROOM, SESSION, "a48", 2),
        layout.media_segment(ROOM, SESSION, "a48", 0),
        layout.media_segment(ROOM, SESSION, "a64", 0),
        layout.live_playlist(ROOM, "a48"),
        layout.master_playlist(ROOM + "x"),  # shares the string prefix "rooms/contract-room"
        layout.master_playlist("other"),
    ]
    for key in written:
        storage.put(key, key.encode(), SEGMENT)
    media_a48 = layout.media_dir(ROOM, SESSION, "a48") + "/"
    assert storage.list(media_a48) == sorted(written[:3])
    assert storage.list(layout.room_prefix(ROOM) + "/") == sorted(written[:5])
    assert storage.list(layout.room_prefix(ROOM)) == sorted(written[:6])  # a key prefix, not a directory
    assert storage.list(media_a48 + "00000") == sorted(written[1:3])
    assert storage.list("") == sorted(written)
    assert storage.list("rooms/nothing-here/") == []
    assert storage.list("nothing") == []


@pytest.mark.parametrize("key", INVALID_KEYS, ids=repr)
def test_invalid_keys_rejected(storage: Storage, key: str) -> None:
    with pytest.raises(ValidationError):
        storage.put(key, b"x", SEGMENT)
    with pytest.raises(ValidationError):
        storage.get(key)
    with pytest.raises(ValidationError):
        storage.exists(key)
    assert storage.list("") == []


@pytest.mark.parametrize("prefix", ["../", "/rooms", "a//", "a/../", "a\\", "a\x00"], ids=repr)
def test_invalid_list_prefix_rejected(storage: Storage, prefix: str) -> None:
    with pytest.raises(ValidationError):
        storage.list(prefix)


def test_overwrite_is_atomic_for_readers(storage: Storage) -> None:
    """A reader hammering get() during overwrites only ever sees one complete version."""
    key = layout.live_playlist(ROOM, "a128")
    versions = [bytes([65 + i]) * (40_000 + 7_919 * i) for i in range(4)]  # distinct sizes and contents
    storage.put(key, versions[0], PLAYLIST)
    stop = threading.Event()
    seen: list[bytes] = []
    failures: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                seen.append(storage.get(key))
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    deadline = time.monotonic() + 10.0
    puts = 0
    try:
        while puts < 24 and time.monotonic() < deadline:
            storage.put(key, versions[puts % len(versions)], PLAYLIST)
            puts += 1
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not failures, failures
    assert puts >= 8
    assert len(seen) >= puts // 2, "the reader must have overlapped the writes"
    bad = [len(b) for b in seen if b not in versions]
    assert not bad, f"partial or mixed reads of sizes {bad[:5]}"
    assert len({len(b) for b in seen}) >= 2, "the reader saw only one version"


def test_check_ok(storage: Storage) -> None:
    storage.check()


def _broken(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if kind == "fs-missing-root":
        return FilesystemStorage(tmp_path / "does-not-exist")
    if kind == "fs-root-is-a-file":
        (tmp_path / "file").write_bytes(b"not a directory")
        return FilesystemStorage(tmp_path / "file")
    request.getfixturevalue("aws_env")
    if kind == "s3-missing-bucket":
        moto: MotoServer = request.getfixturevalue("moto")
        return S3Storage(bucket="no-such-bucket-here", endpoint_url=moto.endpoint_url)
    assert kind == "s3-dead-endpoint"
    return S3Storage(bucket="spillway", endpoint_url=f"http://127.0.0.1:{free_port()}", connect_timeout_s=1.0)


@pytest.mark.parametrize("kind", ["fs-missing-root", "fs-root-is-a-file", "s3-missing-bucket", "s3-dead-endpoint"])
def test_check_fails(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    broken = _broken(kind, request, tmp_path)
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        broken.check()
    assert info.value.backend == broken.name
    assert time.monotonic() - started < 5.0


@pytest.mark.parametrize("kind", ["fs-root-is-a-file", "s3-missing-bucket", "s3-dead-endpoint"])
def test_put_to_broken_storage_raises_storage_error(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    broken = _broken(kind, request, tmp_path)
    with pytest.raises(StorageError) as info:
        broken.put("rooms/r/status.json", b"{}", headers_for(ObjectKind.STATUS))
    assert info.value.key == "rooms/r/status.json"
    assert info.value.backend == broken.name
