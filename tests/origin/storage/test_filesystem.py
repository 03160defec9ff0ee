"""Filesystem backend specifics: on-disk layout, sidecars, leftovers of crashed writes, key validation."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.errors import StorageError, ValidationError
from origin.storage.filesystem import FilesystemStorage
from origin.storage.keys import validate_key, validate_prefix

SEGMENT = headers_for(ObjectKind.SEGMENT)
SESSION = "20261126t090301z-3f9a1c0d"


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_layout_packed_immutable_objects_and_files_with_directory_headers(fs_storage: FilesystemStorage) -> None:
    key = layout.init_segment("fs-room", SESSION, "a48")
    fs_storage.put(key, b"ftypmoov", SEGMENT)
    seg = layout.media_segment("fs-room", SESSION, "a48", 0)
    fs_storage.put(seg, b"moofmdat", SEGMENT)
    media = f"rooms/fs-room/media/{SESSION}/a48"
    # Small immutable objects: one pack per writing process and directory, headers in each record.
    (pack,) = _files(fs_storage.root)
    assert pack.startswith(f"{media}/.~pack.{os.getpid()}.")
    mode = stat.S_IMODE((fs_storage.root / pack).stat().st_mode)
    assert mode == 0o644  # readable by an edge running as another user
    assert fs_storage.list("") == sorted([key, seg])
    assert (fs_storage.get(key), fs_storage.get(seg)) == (b"ftypmoov", b"moofmdat")
    # Other objects are files; objects sharing their directory's headers need no sidecar of their own.
    live = layout.live_playlist("fs-room", "a48")
    fs_storage.put(live, b"#EXTM3U\n", headers_for(ObjectKind.LIVE_PLAYLIST))
    assert sorted(f for f in _files(fs_storage.root) if "/live/" in f) == [f"rooms/fs-room/live/{n}" for n in
                                                                          (".~headers.json", "a48.m3u8")]  # fmt: skip
    shared = json.loads((fs_storage.root / "rooms/fs-room/live/.~headers.json").read_text())
    assert shared == {"content_type": "application/vnd.apple.mpegurl", "cache_control": "public, max-age=1"}


def test_an_object_with_other_headers_gets_its_own_sidecar_and_loses_it_again(fs_storage: FilesystemStorage) -> None:
    key = layout.replay_playlist("fs-room", "a48")
    fs_storage.put(key, b"#EXTM3U\n", headers_for(ObjectKind.EVENT_PLAYLIST))
    fs_storage.put(key, b"#EXTM3U\n#EXT-X-ENDLIST\n", headers_for(ObjectKind.REPLAY_PLAYLIST))
    assert fs_storage.get_headers(key) == headers_for(ObjectKind.REPLAY_PLAYLIST)
    assert fs_storage.path_for(key).with_name(".a48.m3u8~headers.json").exists()
    fs_storage.put(key, b"#EXTM3U\n", headers_for(ObjectKind.EVENT_PLAYLIST))
    assert fs_storage.get_headers(key) == headers_for(ObjectKind.EVENT_PLAYLIST)
    assert not fs_storage.path_for(key).with_name(".a48.m3u8~headers.json").exists()


def test_put_file_links_the_source_and_keeps_it(fs_storage: FilesystemStorage, tmp_path: Path) -> None:
    source = fs_storage.root / "spool-file"  # same filesystem: a hard link, no copy
    source.write_bytes(b"moofmdat")
    key = layout.media_segment("fs-room", SESSION, "a64", 3)
    fs_storage.put_file(key, source, SEGMENT)
    assert fs_storage.get(key) == b"moofmdat" and source.exists()
    assert fs_storage.path_for(key).stat().st_ino == source.stat().st_ino
    other = tmp_path / "elsewhere"
    other.write_bytes(b"moofmdat2")
    fs_storage.put_file(layout.media_segment("fs-room", SESSION, "a64", 4), other, SEGMENT)
    assert fs_storage.get(layout.media_segment("fs-room", SESSION, "a64", 4)) == b"moofmdat2"
    with pytest.raises(FileNotFoundError):
        fs_storage.put_file(layout.media_segment("fs-room", SESSION, "a64", 5), tmp_path / "missing", SEGMENT)


def test_leftover_temp_files_are_invisible(fs_storage: FilesystemStorage) -> None:
    key = layout.live_playlist("fs-room", "a48")
    fs_storage.put(key, b"#EXTM3U\n", headers_for(ObjectKind.LIVE_PLAYLIST))
    # What a crash between write and rename leaves behind: never listed, never a valid key.
    leftover = fs_storage.path_for(key).with_name(".a48.m3u8~tmp.abc123")
    leftover.write_bytes(b"#EXTM3U\n#EXTINF:2.0,\npartial")
    assert fs_storage.list("") == [key]
    with pytest.raises(ValidationError):
        fs_storage.get("rooms/fs-room/live/.a48.m3u8~tmp.abc123")


def test_sidecar_names_cannot_be_used_as_keys(fs_storage: FilesystemStorage) -> None:
    with pytest.raises(ValidationError):
        fs_storage.put("rooms/r/.a~headers.json", b"{}", SEGMENT)


def test_failed_object_write_leaves_no_visible_object(fs_storage: FilesystemStorage) -> None:
    playlist = headers_for(ObjectKind.LIVE_PLAYLIST)
    fs_storage.put("rooms/r/a", b"file", playlist)
    for headers in (SEGMENT, playlist):  # a packed object and a file of its own
        with pytest.raises(StorageError) as info:
            fs_storage.put("rooms/r/a/b", b"x", headers)  # "a" is a file: cannot be a directory too
        assert info.value.backend == "filesystem" and not info.value.retryable
    assert fs_storage.list("") == ["rooms/r/a"]
    assert sorted(os.listdir(fs_storage.root / "rooms" / "r")) == [".~headers.json", "a"]  # no temp file left


def test_symlink_out_of_root_is_rejected(fs_storage: FilesystemStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    (fs_storage.root / "rooms").mkdir()
    (fs_storage.root / "rooms" / "link").symlink_to(outside)
    with pytest.raises(ValidationError):
        fs_storage.get("rooms/link/secret")
    with pytest.raises(ValidationError):
        fs_storage.put("rooms/link/new", b"x", SEGMENT)
    assert not (outside / "new").exists()


def test_concurrent_puts_of_many_keys(fs_storage: FilesystemStorage) -> None:
    errors: list[BaseException] = []

    def writer(rendition: str) -> None:
        try:
            for i in range(25):
                key = layout.media_segment("fs-room", SESSION, rendition, i)
                fs_storage.put(key, f"{rendition}{i}".encode(), SEGMENT)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(r,)) for r in ("a48", "a64", "a128")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    listed = fs_storage.list("rooms/fs-room/")
    assert len(listed) == 75
    assert fs_storage.get(layout.media_segment("fs-room", SESSION, "a64", 24)) == b"a6424"


def test_a_visible_object_always_has_its_headers(fs_storage: FilesystemStorage) -> None:
    """The sidecar is renamed into place before the object: a reader never sees an object without it."""
    playlist = headers_for(ObjectKind.LIVE_PLAYLIST)
    directory = fs_storage.root / "rooms" / "fs-room" / "live"
    directory.mkdir(parents=True)
    stop = threading.Event()
    checked: list[int] = [0]
    bad: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            for name in os.listdir(directory):
                if "~" not in name and fs_storage.get_headers(f"rooms/fs-room/live/{name}") != playlist:
                    bad.append(name)
                checked[0] += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(150):
            fs_storage.put(f"rooms/fs-room/live/r{i}.m3u8", b"#EXTM3U\n", playlist)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert checked[0] > 150
    assert bad == []


def test_rewrites_of_a_small_object_are_whole_versions_longer_or_shorter(fs_storage: FilesystemStorage) -> None:
    """Playlists are rewritten over the spare's old bytes and cut to length: a reader sees one whole version,
    never a longer version's tail after a shorter one, across two processes writing the same key. (A read that
    spans two rewrites could see a mix, as the design says: versions are spaced here, as a live playlist's are.)"""
    key = "rooms/fs-room/live/a64.m3u8"
    playlist = headers_for(ObjectKind.LIVE_PLAYLIST)
    versions = [f"#EXTM3U\n# v{i}\n".encode() + b"#" * (400 if i % 3 == 0 else 7 * i) + b"\n" for i in range(60)]
    stop = threading.Event()
    seen: set[bytes] = set()

    def reader() -> None:
        while not stop.is_set():
            with contextlib.suppress(KeyError):
                seen.add(fs_storage.get(key))

    def write_all(start: int) -> None:
        storage = FilesystemStorage(fs_storage.root)  # another process's view: its own caches and locks
        for v in versions[start::2]:
            storage.put(key, v, playlist, durable=False)
            time.sleep(0.02)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        child = os.fork()
        if child == 0:  # pragma: no cover - the child process
            try:
                write_all(1)
            finally:
                os._exit(0)
        write_all(0)
        os.waitpid(child, 0)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert seen and seen <= set(versions), sorted(seen - set(versions))[:2]
    fs_storage.put(key, versions[1], playlist, durable=False)  # shorter than the version before it
    assert fs_storage.get(key) == versions[1]


def test_missing_root_is_created_by_put(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "later")
    storage.put("rooms/r/status.json", b"{}", headers_for(ObjectKind.STATUS))
    storage.check()
    assert storage.get("rooms/r/status.json") == b"{}"


@pytest.mark.parametrize(
    "key", ["rooms/a/b.m4s", "a", "A-Z_0.9", ".hidden", "..x", "x..", "a/.b/c", "a" * 200, "/".join(["p"] * 300)]
)
def test_validate_key_accepts(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("key", ["a" * 201, "a/" * 512 + "b", "a~b", "a:b", "a\nb", "ä"])
def test_validate_key_rejects(key: str) -> None:
    with pytest.raises(ValidationError):
        validate_key(key)


@pytest.mark.parametrize("prefix", ["", "rooms/", "rooms/r", "rooms/r/media/", "rooms/.", "r"])
def test_validate_prefix_accepts(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "//", "../", "./x", "a/../b/", "a~", "a/b\\"])
def test_validate_prefix_rejects(prefix: str) -> None:
    with pytest.raises(ValidationError):
        validate_prefix(prefix)
