"""The owner's per-room figures: a rolling latency window, flushed once per pass, read by every worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from origin.errors import ValidationError
from origin.ops.room_stats import (
    FileStatsStore,
    LatencyWindow,
    MemoryStatsStore,
    PublishStats,
    RoomStatsTracker,
    quantile,
)


def test_quantile_is_nearest_rank() -> None:
    values = sorted(float(i) for i in range(1, 101))
    assert quantile(values, 0.5) == 50.0
    assert quantile(values, 0.99) == 99.0
    assert quantile([3.0], 0.99) == 3.0
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_window_forgets_what_is_older_than_its_span() -> None:
    window = LatencyWindow(window_s=60.0)
    assert window.figures(0.0) == (None, None, 0)
    for i in range(100):
        window.add(float(i), 0.010 if i % 50 else 2.0)  # two slow segments among 100
    p50, p99, n = window.figures(99.0)
    assert (p50, n) == (0.010, 61) and p99 == 2.0  # the window holds t=39..99 (61): one slow one (t=50)
    p50, p99, n = window.figures(160.0)
    assert n == 0 and p99 is None


def test_window_keeps_its_newest_samples_when_full() -> None:
    window = LatencyWindow(window_s=1e9, max_samples=10)
    for i in range(100):
        window.add(float(i), float(i))
    assert window.figures(100.0) == (94.0, 99.0, 10)


def test_tracker_writes_only_when_the_edge_advanced_and_forgets_ended_rooms() -> None:
    store = MemoryStatsStore()
    tracker = RoomStatsTracker(store)
    tracker.observe("r", 0.05, 10.0)
    tracker.flush("r", 10.0)
    assert store.read("r") is None  # nothing advanced yet
    tracker.edge_advanced("r", 10.5)
    tracker.flush("r", 11.0)
    first = store.read("r")
    assert first is not None and first.live_edge_at == 10.5 and first.p99_s == 0.05 and first.samples == 1
    assert first.owner_pid == os.getpid()
    tracker.edge_advanced("r", 11.1)
    tracker.flush("r", 11.2)
    assert store.read("r") == first  # advanced, but the last write is younger than the flush interval
    tracker.flush("r", 11.6)
    waited = store.read("r")
    assert waited is not None and waited.live_edge_at == 11.1  # a later pass wrote what waited
    tracker.flush("r", 12.5)
    assert store.read("r") == waited  # no advance since: no write
    tracker.edge_advanced("r", 12.7)
    tracker.flush("r", 13.0, final=True)  # the end writes at once
    assert tracker.rooms() == 0
    last = store.read("r")
    assert last is not None and last.at == 13.0  # the last figures stay for readers


def test_file_store_round_trips_replaces_atomically_and_deletes(tmp_path: Path) -> None:
    store = FileStatsStore(tmp_path / "stats")  # made on the first write
    stats = PublishStats(at=1.0, live_edge_at=0.5, p50_s=0.01, p99_s=0.2, samples=3, window_s=60.0, owner_pid=7)
    store.write("r", stats)
    assert store.read("r") == stats
    store.write("r", PublishStats(**{**stats.__dict__, "at": 2.0}))
    assert store.read("r") is not None and store.read("r").at == 2.0  # type: ignore[union-attr]
    assert sorted(p.name for p in (tmp_path / "stats").iterdir()) == ["r.json"]  # no temp file left
    (tmp_path / "stats" / "r.json").write_text("{not json")
    assert store.read("r") is None
    assert store.read("never") is None
    store.delete("r")
    store.delete("never")
    assert list((tmp_path / "stats").iterdir()) == []
    with pytest.raises(ValidationError):
        store.write("../escape", stats)  # a room id is a strict pattern: no path out of the directory
