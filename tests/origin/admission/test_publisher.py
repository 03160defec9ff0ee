"""StatusPublisher against real parts: filesystem storage, the SQLite backend, an injected clock."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from origin.admission.publisher import StatusPublisher
from origin.admission.sqlite_backend import SqliteAdmission, SqliteRoomRegistry
from origin.admission.status import BroadcastInfo
from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.rooms import Room
from origin.storage.filesystem import FilesystemStorage
from tests.origin.admission.conftest import ManualClock

ROOM = "launch"
LEASE_S = 30.0


class LiveView:
    """The ingest side's view, fixed for a test: the room is on air with 2 s segments."""

    def broadcast(self, room: str) -> BroadcastInfo:
        return BroadcastInfo(state="live", segment_s=2.0)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SqliteAdmission]:
    b = SqliteAdmission.open(tmp_path / "state")
    SqliteRoomRegistry(b.db).put(Room(id=ROOM, ingest_token="t" * 32, realtime_cap=3))
    yield b
    b.close()


def _publisher(backend: SqliteAdmission, storage: FilesystemStorage, clock: ManualClock) -> StatusPublisher:
    return StatusPublisher(
        storage=storage,
        rooms=SqliteRoomRegistry(backend.db),
        backend=backend,
        broadcasts=LiveView(),
        public_base_url="https://cdn.example",
        api_url="https://api.example",
        clock=clock,
    )


def _status(storage: FilesystemStorage) -> dict[str, object]:
    doc: dict[str, object] = json.loads(storage.get(layout.status(ROOM)))
    return doc


def test_burst_of_changes_is_coalesced_to_one_write_per_second(
    backend: SqliteAdmission, tmp_path: Path, clock: ManualClock
) -> None:
    storage = FilesystemStorage(tmp_path / "storage")
    pub = _publisher(backend, storage, clock)
    start = clock.now
    for i in range(300):  # 3 s of joins, one every 10 ms, flushing every 10 ms like the 0.1 s tick would
        if i < 3:
            backend.admit(ROOM, lease=f"lease-{i:016d}", cap=3, now=clock.now, lease_s=LEASE_S)
        pub.note_change(ROOM, clock.now)
        pub.flush(clock.now)
        clock.advance(0.01)
    assert pub.writes <= 3
    pub.flush(start + 4.0)
    doc = _status(storage)
    assert doc["realtime"] == {"open": False, "cap": 3, "seats_taken": 3, "seats_left": 0}
    assert doc["state"] == "live"
    assert doc["hls_url"] == "https://cdn.example/rooms/launch/master.m3u8"
    assert doc["join_url"] == "https://api.example/v1/rooms/launch/listeners"
    assert storage.get_headers(layout.status(ROOM)) == headers_for(ObjectKind.STATUS)


def test_two_workers_share_the_write_budget(backend: SqliteAdmission, tmp_path: Path, clock: ManualClock) -> None:
    storage = FilesystemStorage(tmp_path / "storage")
    workers = [_publisher(SqliteAdmission(backend.db), storage, clock) for _ in range(2)]
    for _ in range(500):  # 5 s, both workers see changes all the time
        for pub in workers:
            pub.note_change(ROOM, clock.now)
            pub.flush(clock.now)
        clock.advance(0.01)
    total = sum(p.writes for p in workers)
    assert 4 <= total <= 6  # ~1 per second in all, not 1 per second per worker


def test_an_expiring_lease_is_published_without_any_event(
    backend: SqliteAdmission, tmp_path: Path, clock: ManualClock
) -> None:
    storage = FilesystemStorage(tmp_path / "storage")
    pub = _publisher(backend, storage, clock)
    for i in range(3):
        backend.admit(ROOM, lease=f"lease-{i:016d}", cap=3, now=clock.now, lease_s=LEASE_S)
    pub.note_change(ROOM, clock.now)
    pub.flush(clock.now)
    assert _status(storage)["realtime"]["open"] is False  # type: ignore[index]
    clock.advance(LEASE_S)  # nobody heartbeats; the seats free themselves
    for _ in range(25):
        pub.flush(clock.now)
        clock.advance(0.1)
    assert _status(storage)["realtime"] == {"open": True, "cap": 3, "seats_taken": 0, "seats_left": 3}


def test_hls_answers_reach_the_backend_and_the_document(
    backend: SqliteAdmission, tmp_path: Path, clock: ManualClock
) -> None:
    storage = FilesystemStorage(tmp_path / "storage")
    pub = _publisher(backend, storage, clock)
    for _ in range(42):
        pub.count_hls_answer(ROOM, clock.now)
    pub.flush(clock.now)
    assert backend.hls_recent(ROOM, now=clock.now) == 42
    for _ in range(15):
        clock.advance(0.1)
        pub.flush(clock.now)
    assert _status(storage)["listeners"] == {"realtime": 0, "hls_recent": 42}


def test_storage_failure_is_retried(backend: SqliteAdmission, tmp_path: Path, clock: ManualClock) -> None:
    root = tmp_path / "storage"
    root.write_text("not a directory")  # every put fails for real
    storage = FilesystemStorage(root)
    pub = _publisher(backend, storage, clock)
    pub.note_change(ROOM, clock.now)
    assert pub.flush(clock.now) == []
    root.unlink()
    root.mkdir()
    assert pub.flush(clock.advance(0.5)) == []  # the failed attempt still counts against the interval
    assert pub.flush(clock.advance(0.6)) == [ROOM]
    assert _status(storage)["room"] == ROOM
    shutil.rmtree(root)


def test_unknown_rooms_are_not_published(backend: SqliteAdmission, tmp_path: Path, clock: ManualClock) -> None:
    storage = FilesystemStorage(tmp_path / "storage")
    pub = _publisher(backend, storage, clock)
    pub.note_change("never-created", clock.now)
    assert pub.flush(clock.now) == []
    assert not storage.exists(layout.status("never-created"))
    assert pub.flush(clock.advance(2)) == []  # and forgotten, not retried forever


def test_filling_up_is_published_within_the_urgent_interval(
    backend: SqliteAdmission, tmp_path: Path, clock: ManualClock
) -> None:
    storage = FilesystemStorage(tmp_path / "storage")
    pub = _publisher(backend, storage, clock)
    pub.note_change(ROOM, clock.now)
    assert pub.flush(clock.now) == [ROOM]
    clock.advance(0.1)
    for i in range(3):
        backend.admit(ROOM, lease=f"lease-{i:016d}", cap=3, now=clock.now, lease_s=LEASE_S)
        pub.note_change(ROOM, clock.now, urgent=i == 2)
    assert pub.flush(clock.now) == []  # 0.1 s after the last write: too soon even for urgent
    assert pub.flush(clock.advance(0.15)) == [ROOM]  # 0.25 s: the room is full, say so now
    assert _status(storage)["realtime"]["open"] is False  # type: ignore[index]


class FlakyView:
    """A BroadcastView that fails once, like ingest state briefly unreadable."""

    def __init__(self) -> None:
        self.calls = 0

    def broadcast(self, room: str) -> BroadcastInfo:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("state unreadable")
        return BroadcastInfo(state="live")


def test_the_publishing_loop_survives_a_failing_pass(backend: SqliteAdmission, tmp_path: Path) -> None:
    import asyncio

    storage = FilesystemStorage(tmp_path / "storage")
    pub = StatusPublisher(
        storage=storage,
        rooms=SqliteRoomRegistry(backend.db),
        backend=backend,
        broadcasts=FlakyView(),
        public_base_url="https://cdn.example",
        api_url="https://api.example",
    )
    pub.note_change(ROOM, pub.clock())

    async def run_briefly() -> None:
        task = asyncio.create_task(pub.run(tick_s=0.02))
        for _ in range(200):
            await asyncio.sleep(0.02)
            if pub.writes:
                break
        task.cancel()

    asyncio.run(run_briefly())
    assert pub.writes == 1
    assert _status(storage)["state"] == "live"
