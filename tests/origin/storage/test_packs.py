"""Packs: small immutable objects appended to one file per process and directory (origin/storage/packs.py)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.storage import packs
from origin.storage.filesystem import FilesystemStorage
from origin.storage.packs import PackError, Packs, encode_record, parse_header

SEGMENT = headers_for(ObjectKind.SEGMENT)
SESSION = "20261207t101500z-0a1b2c3d"


def _pack_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if packs.is_pack(p.name))


def test_a_record_round_trips_and_a_partial_one_is_not_yet_there() -> None:
    record = encode_record("000042.m4s", b"moof" * 100, SEGMENT, 1_700_000_000_123_456_789)
    header = parse_header(record)
    assert header is not None
    assert (header.name, header.headers, header.length, header.mtime_ns, header.tombstone) == (
        "000042.m4s", SEGMENT, 400, 1_700_000_000_123_456_789, False)  # fmt: skip
    assert record[header.size :] == b"moof" * 100
    assert parse_header(record[: header.size - 1]) is None  # still being written
    with pytest.raises(PackError):
        parse_header(b"JUNK" + record[4:])
    tomb = parse_header(encode_record("000042.m4s", b"", SEGMENT, 1, tombstone=True))
    assert tomb is not None and tomb.tombstone and tomb.length == 0


def test_two_writers_share_a_directory_and_the_newest_record_wins(tmp_path: Path) -> None:
    ours, theirs = Packs(clock_ns=iter(range(1, 100)).__next__), Packs(clock_ns=iter(range(50, 150)).__next__)
    ours.put(tmp_path, "init.mp4", b"init-a", SEGMENT, durable=True)
    theirs.put(tmp_path, "000000.m4s", b"seg-0", SEGMENT, durable=False)
    theirs.put(tmp_path, "init.mp4", b"init-b", SEGMENT, durable=False)  # later clock: it wins
    assert len(_pack_files(tmp_path)) == 2
    reader = Packs()  # a third process: everything from the files
    assert sorted(reader.names(tmp_path)) == ["000000.m4s", "init.mp4"]
    for p in (ours, reader):
        entry = p.find(tmp_path, "init.mp4")
        assert entry is not None and p.read(tmp_path, entry) == b"init-b"
    entry = ours.find(tmp_path, "000000.m4s")  # not in its index yet: found by scanning on the miss
    assert entry is not None and ours.read(tmp_path, entry) == b"seg-0"


def test_a_torn_tail_is_invisible_and_a_corrupt_record_is_absent(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path)
    keys = [layout.media_segment("torn", SESSION, "a64", i) for i in range(3)]
    for i, key in enumerate(keys):
        storage.put(key, bytes([i]) * 1000, SEGMENT, durable=False)
    (pack,) = _pack_files(tmp_path / layout.media_dir("torn", SESSION, "a64"))
    os.truncate(pack, pack.stat().st_size - 10)  # a crash in the middle of the last record
    fresh = FilesystemStorage(tmp_path)
    assert fresh.list("rooms/") == keys[:2]
    assert fresh.get(keys[1]) == b"\x01" * 1000
    with pytest.raises(KeyError):
        fresh.get(keys[2])
    data = bytearray(pack.read_bytes())
    data[data.index(b"\x01" * 1000) + 500] ^= 0xFF  # a flipped bit inside the second record's data
    pack.write_bytes(bytes(data))
    with pytest.raises(KeyError):
        FilesystemStorage(tmp_path).get(keys[1])


def test_deleting_the_last_object_removes_the_packs_and_a_writer_starts_a_new_one(tmp_path: Path) -> None:
    writer, deleter = FilesystemStorage(tmp_path), FilesystemStorage(tmp_path)
    directory = tmp_path / layout.media_dir("gone", SESSION, "a48")
    first, second = (layout.media_segment("gone", SESSION, "a48", i) for i in range(2))
    writer.put(first, b"one", SEGMENT, durable=False)
    deleter.delete(first)
    assert _pack_files(directory) == []  # no live object left: the bytes are gone from the disk
    assert not writer.exists(first) and not deleter.exists(first)
    writer.put(second, b"two", SEGMENT, durable=False)  # its open pack lost its link: it starts a new one
    assert len(_pack_files(directory)) == 1
    assert deleter.get(second) == b"two" and deleter.list("rooms/") == [second]
    writer.put(first, b"one again", SEGMENT, durable=False)
    deleter.delete(second)  # one object still lives: the packs stay
    assert deleter.list("rooms/") == [first] and writer.get(first) == b"one again"


def test_many_threads_and_an_evicted_writer_lose_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packs, "WRITERS_KEPT", 2)  # four directories: writers are evicted and reopened all along
    storage = FilesystemStorage(tmp_path)
    errors: list[BaseException] = []

    def write(rendition: str) -> None:
        try:
            for i in range(40):
                storage.put(layout.media_segment("busy", SESSION, rendition, i), f"{rendition}-{i}".encode(),
                            SEGMENT, durable=False)  # fmt: skip
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(r,)) for r in ("a48", "a64", "a128", "a256")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    other = FilesystemStorage(tmp_path)
    for r in ("a48", "a64", "a128", "a256"):
        assert len(_pack_files(tmp_path / layout.media_dir("busy", SESSION, r))) == 1  # reopened, not replaced
        for i in range(40):
            assert other.get(layout.media_segment("busy", SESSION, r, i)) == f"{r}-{i}".encode()
    assert len(other.list("rooms/busy/")) == 160


def test_unpacking_an_ended_broadcast_leaves_plain_files_and_no_pack(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path)
    keys = [layout.init_segment("over", SESSION, "a64")] + [layout.media_segment("over", SESSION, r, i)
                                                             for r in ("a48", "a64") for i in range(3)]  # fmt: skip
    for key in keys:
        storage.put(key, key.encode(), SEGMENT, durable=False)
    other = layout.media_segment("still-live", SESSION, "a64", 0)
    storage.put(other, b"live", SEGMENT, durable=False)
    assert storage.unpack("rooms/over/media/") == len(keys)
    for key in keys:
        assert (tmp_path / key).read_bytes() == key.encode()  # a plain file now: any static server reads it
        assert storage.get_headers(key) == SEGMENT
    assert not [p for p in (tmp_path / "rooms" / "over").rglob("*") if packs.is_pack(p.name)]
    assert sorted(FilesystemStorage(tmp_path).list("rooms/over/")) == sorted(keys)
    assert storage.get(other) == b"live" and not (tmp_path / other).exists()  # another room keeps its pack
    assert storage.unpack("rooms/over/media/") == 0  # done already
