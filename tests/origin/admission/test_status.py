"""status.json content and the publish schedule (pure)."""

from __future__ import annotations

import itertools
import json

from origin.admission.status import (
    BroadcastInfo,
    PublishSchedule,
    encode,
    fingerprint,
    realtime_open,
    status_document,
)
from origin.rooms import Room

T0 = 1_790_000_000.0
ROOM = Room(id="launch", ingest_token="t" * 32, title="Launch", host="Ada", realtime_cap=100)


def _doc(**over: object) -> dict[str, object]:
    args: dict[str, object] = {
        "room": ROOM, "broadcast": BroadcastInfo(state="live", segment_s=2.0), "seats_taken": 40,
        "hls_recent": 1234, "now": T0, "public_base_url": "https://cdn.example", "api_url": "https://api.example",
    }  # fmt: skip
    args.update(over)
    return status_document(**args)  # type: ignore[arg-type]


def test_document_while_seats_are_open() -> None:
    doc = _doc()
    assert doc == {
        "version": 1,
        "room": "launch",
        "title": "Launch",
        "host": "Ada",
        "state": "live",
        "realtime": {"open": True, "cap": 100, "seats_taken": 40, "seats_left": 60},
        "join_url": "https://api.example/v1/rooms/launch/listeners",
        "hls_url": "https://cdn.example/rooms/launch/master.m3u8",
        "expected_hls_delay_seconds": 8.0,
        "replay_url": None,
        "download_url": None,
        "listeners": {"realtime": 40, "hls_recent": 1234},
        "updated_at": "2026-09-21T14:13:20.000Z",
    }
    assert json.loads(encode(doc)) == doc


def test_document_when_full_and_when_ended() -> None:
    full = _doc(seats_taken=100)
    assert full["realtime"] == {"open": False, "cap": 100, "seats_taken": 100, "seats_left": 0}
    ended = _doc(
        broadcast=BroadcastInfo(
            state="ended",
            replay_url="https://cdn.example/rooms/launch/replay.m3u8",
            download_url="https://cdn.example/rooms/launch/replay.m4a",
        ),
        seats_taken=0,
    )
    assert ended["download_url"] == "https://cdn.example/rooms/launch/replay.m4a"
    assert ended["realtime"]["open"] is False  # type: ignore[index]
    assert ended["replay_url"] == "https://cdn.example/rooms/launch/replay.m3u8"
    assert ended["expected_hls_delay_seconds"] == 8.0  # default 2 s segments when none declared


def test_realtime_open() -> None:
    assert realtime_open(state="idle", cap=1, seats_taken=0)
    assert not realtime_open(state="live", cap=0, seats_taken=0)
    assert not realtime_open(state="ended", cap=10, seats_taken=0)
    assert not realtime_open(state="live", cap=10, seats_taken=11)  # a lowered cap


def test_fingerprint_ignores_only_the_timestamp() -> None:
    assert fingerprint(_doc(now=T0)) == fingerprint(_doc(now=T0 + 5))
    assert fingerprint(_doc(seats_taken=41)) != fingerprint(_doc(seats_taken=40))


def test_schedule_coalesces_a_burst_to_one_write_per_interval() -> None:
    schedule = PublishSchedule(min_interval_s=1.0)
    writes: list[float] = []
    now = T0
    for step in range(300):  # a join every 10 ms for 3 s, flushing every 10 ms
        now = T0 + step * 0.01
        schedule.note_change("r", now)
        for room in schedule.due(now):
            schedule.published(room, now, f"fp{step}")
            writes.append(now)
    assert writes[0] == T0  # the first change after a quiet period goes out at once
    assert len(writes) == 3
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(writes))
    assert schedule.due(now + 1.0) == ["r"]  # the last changes are not lost
    schedule.published("r", now + 1.0, "last")
    assert schedule.due(now + 5) == []


def test_schedule_deferred_when_another_writer_holds_the_claim() -> None:
    schedule = PublishSchedule(min_interval_s=1.0)
    schedule.note_change("r", T0)
    assert schedule.due(T0) == ["r"]
    schedule.deferred("r", T0)
    assert schedule.due(T0 + 0.5) == []
    assert schedule.due(T0 + 1.0) == ["r"]


def test_schedule_rechecks_watched_rooms_and_detects_silent_changes() -> None:
    schedule = PublishSchedule(min_interval_s=1.0, recheck_s=1.0, watch_s=60.0)
    schedule.note_change("r", T0)
    schedule.published("r", T0, "a")
    assert schedule.to_recheck(T0 + 0.5) == []
    assert schedule.to_recheck(T0 + 1.0) == ["r"]
    assert not schedule.checked("r", T0 + 1.0, "a")  # unchanged: nothing to write
    assert schedule.due(T0 + 1.0) == []
    assert schedule.checked("r", T0 + 2.0, "b")  # e.g. a lease expired: seats_left changed
    assert schedule.due(T0 + 2.0) == ["r"]


def test_schedule_stops_watching_idle_rooms_but_heartbeats_keep_them() -> None:
    schedule = PublishSchedule(min_interval_s=1.0, recheck_s=1.0, watch_s=60.0)
    schedule.note_change("quiet", T0)
    schedule.published("quiet", T0, "a")
    schedule.note_change("busy", T0)
    schedule.published("busy", T0, "a")
    schedule.touch("busy", T0 + 50)
    assert schedule.to_recheck(T0 + 61) == ["busy"]
    assert schedule.forget_idle(T0 + 61) == ["quiet"]


def test_urgent_changes_wait_only_the_urgent_interval() -> None:
    schedule = PublishSchedule(min_interval_s=1.0, urgent_interval_s=0.25)
    schedule.note_change("r", T0)
    schedule.published("r", T0, "open")
    schedule.note_change("r", T0 + 0.1)  # a seat taken: ordinary
    assert schedule.due(T0 + 0.3) == []
    schedule.note_change("r", T0 + 0.2, urgent=True)  # the last seat taken: the room is full now
    assert schedule.interval_s("r") == 0.25
    assert schedule.due(T0 + 0.24) == []
    assert schedule.due(T0 + 0.25) == ["r"]
    schedule.published("r", T0 + 0.25, "full")
    assert schedule.interval_s("r") == 1.0  # back to the ordinary pace
    schedule.note_change("r", T0 + 0.3)
    assert schedule.due(T0 + 0.6) == []
    assert schedule.due(T0 + 1.25) == ["r"]


def test_pending_age_is_the_oldest_unpublished_change() -> None:
    schedule = PublishSchedule(min_interval_s=1.0)
    assert schedule.pending_age_s(T0) == 0.0
    schedule.note_change("a", T0)
    schedule.note_change("a", T0 + 0.5)  # a later change to a dirty room does not reset its age
    schedule.note_change("b", T0 + 2.0)
    assert schedule.pending_age_s(T0 + 3.0) == 3.0
    schedule.published("a", T0 + 3.0, "fp")
    assert schedule.pending_age_s(T0 + 3.0) == 1.0
    schedule.checked("b", T0 + 3.5, "different")  # a re-check that finds a change keeps the first change's age
    schedule.published("b", T0 + 4.0, "fp")
    assert schedule.pending_age_s(T0 + 4.0) == 0.0
    schedule.checked("a", T0 + 5.0, "changed silently")  # a lease expired: dirty from the re-check on
    assert schedule.pending_age_s(T0 + 7.0) == 2.0
