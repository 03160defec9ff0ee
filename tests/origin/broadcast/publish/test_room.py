"""The publish pass over the in-memory storage and journal, with a manual clock.

Every playlist version the pass writes is checked as it is written: it parses (m3u8), and every object it
names is already in storage.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import m3u8
import pytest

from origin.broadcast.journal.memory import MemoryJournal
from origin.broadcast.lifecycle import LifecyclePolicy
from origin.broadcast.model import BroadcastState, EndReason
from origin.broadcast.publish.filler import FillerBank, FillerPolicy
from origin.broadcast.publish.playlists import RoomPlaylists
from origin.broadcast.publish.room import PassResult, PublishPolicy, RoomPublisher
from origin.broadcast.records import EndRequested, ObjectStored, Record, SessionEnded
from origin.broadcast.spool import Spool
from origin.broadcast.states import RoomStates
from origin.broadcast.stores import RoomStores
from origin.contract import layout
from origin.contract.cache_policy import ObjectHeaders
from origin.errors import StorageError
from origin.metrics import Metrics
from origin.storage.group_commit import GroupCommit
from origin.storage.memory import MemoryStorage
from tests.origin.broadcast.factory import S1, S2, init, segment, started

ROOM = "launch"
T0 = 1_790_000_000.0


class CheckedStorage(MemoryStorage):
    """Refuses (as a test failure) any playlist version that names an object not yet stored."""

    def put(self, key: str, data: bytes, headers: ObjectHeaders, *, durable: bool = True) -> None:
        if key.endswith(".m3u8"):
            parsed = m3u8.loads(data.decode())
            base = posixpath.dirname(key)
            names = [s.uri for s in parsed.segments] + [s.init_section.uri for s in parsed.segments
                                                         if s.init_section] + [p.uri for p in parsed.playlists]
            for uri in names:
                target = posixpath.normpath(posixpath.join(base, uri))
                assert target in self.objects, f"{key} names {target} before it is stored"
        super().put(key, data, headers, durable=durable)


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass(kw_only=True)
class Room:
    journal: MemoryJournal
    storage: CheckedStorage
    clock: Clock
    publisher: RoomPublisher
    results: list[PassResult] = field(default_factory=list)

    def record(self, *records: Record) -> None:
        for r in records:
            if isinstance(r, ObjectStored):  # ingest stores the object before it records it
                o = r.obj
                key = (layout.init_segment(ROOM, o.session, o.rendition) if o.is_init
                       else layout.media_segment(ROOM, o.session, o.rendition, o.idx))  # fmt: skip
                if not o.spooled:
                    self.storage.objects[key] = (b"media", ObjectHeaders(content_type="audio/mp4", cache_control=""))
        self.journal.append(ROOM, list(records))

    def run(self, *, after: float = 0.0, barrier: bool = True) -> PassResult:
        self.clock.now += after
        if barrier:  # what ingest's group commit (or the scheduler) does before the owner passes
            self.clock.now += 1e-6  # a barrier starts after the writes it covers
            self.publisher.commit.barrier_blocking()
        result = self.publisher.run()
        self.results.append(result)
        return result

    def live(self, rendition: str = "a64") -> m3u8.M3U8:
        return m3u8.loads(self.storage.text(layout.live_playlist(ROOM, rendition)))

    def replay(self, rendition: str = "a64") -> m3u8.M3U8:
        return m3u8.loads(self.storage.text(layout.replay_playlist(ROOM, rendition)))


def make_room(tmp_path: Path, *, filler: bool = False, journal: MemoryJournal | None = None,
              storage: CheckedStorage | None = None, clock: Clock | None = None) -> Room:  # fmt: skip
    journal = journal or MemoryJournal()
    storage = storage or CheckedStorage()
    clock = clock or Clock()
    policy = PublishPolicy(live_window_segments=3, lifecycle=LifecyclePolicy(session_timeout_s=10, end_grace_s=60),
                           filler=FillerPolicy() if filler else None, settle_s=2.0, event_interval_s=6.0)  # fmt: skip
    ownership = journal.try_own(ROOM)
    assert ownership is not None
    publisher = RoomPublisher(
        room=ROOM, ownership=ownership, commit=GroupCommit(lambda: None, clock=clock), metrics=Metrics(), clock=clock,
        stores=RoomStores(journal=journal, states=RoomStates(journal), storage=storage,
                          spool=Spool(tmp_path / "spool")),
        playlists=RoomPlaylists(ROOM, tmp_path / "dvr", live_window_segments=3, event_interval_s=6.0),
        filler=FillerBank(tmp_path / "filler") if filler else None, policy=policy,
    )  # fmt: skip
    return Room(journal=journal, storage=storage, clock=clock, publisher=publisher)


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Room]:
    r = make_room(tmp_path)
    yield r
    r.publisher.close()


def test_segments_publish_in_order_and_the_room_becomes_playable(room: Room) -> None:
    room.record(started(at=T0), init(at=T0))
    assert room.run().published == 0  # nothing to name yet: no playlist at all
    assert not room.storage.exists(layout.master_playlist(ROOM))
    room.record(segment(0, at=T0 + 1), segment(1, at=T0 + 2))
    result = room.run(after=2.0)
    assert (result.published, result.state, result.status_changed) == (2, BroadcastState.LIVE, True)
    live = room.live()
    assert [s.uri for s in live.segments] == [f"../media/{S1}/a64/000000.m4s", f"../media/{S1}/a64/000001.m4s"]
    assert live.media_sequence in (None, 0) and not live.is_endlist
    master = m3u8.loads(room.storage.text(layout.master_playlist(ROOM)))
    assert [p.uri for p in master.playlists] == ["live/a64.m3u8"]
    room.record(segment(2, at=T0 + 3))
    assert room.run(after=1.0).status_changed is False  # the master is not rewritten per segment
    assert [s.uri.rsplit("/", 1)[1] for s in room.live().segments] == ["000000.m4s", "000001.m4s", "000002.m4s"]


def test_a_new_session_continues_the_sequence_after_one_discontinuity(room: Room) -> None:
    room.record(started(S1, T0), init(S1), segment(0, S1, at=T0), segment(1, S1, at=T0))
    room.run()
    room.record(started(S2, T0 + 2), init(S2), segment(0, S2, at=T0 + 2), segment(1, S2, at=T0 + 3))
    room.run(after=2.5)  # the superseded session may still deliver: S2 waits for the settle time
    assert [s.uri.split("/")[2] for s in room.live().segments] == [S1, S1]
    room.run(after=2.0)
    live = room.live()
    assert [s.uri.split("/")[2] for s in live.segments][-2:] == [S2, S2]
    assert [s.discontinuity for s in live.segments] == [False, True, False]
    assert live.media_sequence == 1  # window of 3: msn 1..3, never reset
    assert live.segments[1].program_date_time is not None  # PDT restated after the discontinuity


def test_a_late_source_gets_filler_on_its_deadline_and_real_audio_splices_back(tmp_path: Path) -> None:
    room = make_room(tmp_path, filler=True)
    room.record(started(at=T0), init(at=T0), segment(0, at=T0 + 1))
    first = room.run(after=1.0)
    assert first.published == 1 and first.next_deadline is not None
    edge_end = room.publisher.stores.states.journal and first.next_deadline - 1.4  # the edge's PDT end
    assert room.run(after=first.next_deadline - room.clock.now - 0.05).fillers == 0  # not late yet
    late = room.run(after=0.1)
    assert late.fillers == 1
    live = room.live()
    assert live.segments[-1].uri == f"../media/{S1}/a64/fill-000000001.m4s"
    assert live.segments[-1].program_date_time is None and not live.segments[-1].discontinuity
    assert late.next_deadline == pytest.approx(edge_end + 1.0026666 + 1.4, abs=1e-3)  # the next slot's deadline
    room.record(segment(1, at=room.clock.now), segment(2, at=room.clock.now))
    room.run()
    uris = [s.uri.rsplit("/", 1)[1] for s in room.live().segments]
    assert uris[-3:] == ["fill-000000001.m4s", "000001.m4s", "000002.m4s"]
    assert room.live().segments[-2].discontinuity  # real audio resumes after one discontinuity
    room.publisher.close()


def test_the_edge_waits_no_longer_than_the_deadline_when_its_pdt_runs_ahead_of_the_clock(tmp_path: Path) -> None:
    """A burst (a drained backlog, a host change's buffered segments) puts the PDT end ahead of the wall clock;
    if the source then stops, filler still comes one deadline after the edge last advanced."""
    room = make_room(tmp_path, filler=True)
    room.record(started(at=T0), init(at=T0), segment(0, at=T0 + 1))
    room.run(after=1.0)
    room.record(*(segment(i, at=T0 + 1.1) for i in (1, 2, 3, 4)))
    burst = room.run(after=0.1)
    assert burst.published == 4  # the PDT end is now T0 + 5, the clock T0 + 1.1
    assert burst.next_deadline == pytest.approx(room.clock.now + 1.4)
    assert room.run(after=1.3).fillers == 0
    late = room.run(after=0.15)
    assert late.fillers == 1
    assert late.next_deadline == pytest.approx(room.clock.now + 1.4)
    room.publisher.close()


def test_filler_covers_the_settle_time_of_a_host_change(tmp_path: Path) -> None:
    """The old session's 2 s grace and the new session's first segment overlap with filler, not a standstill."""
    room = make_room(tmp_path, filler=True)
    room.record(started(S1, T0), init(S1), segment(0, S1, at=T0 + 1))
    room.run(after=1.0)
    room.record(started(S2, T0 + 1.2), init(S2), segment(0, S2, at=T0 + 2.2))
    stalled = room.run(after=1.5)  # S2's segment waits for S1 to settle, S1 is late: filler
    assert stalled.published == 0 and stalled.fillers == 1
    room.run(after=2.0)
    names = [s.uri for s in room.live().segments]
    assert S2 in names[-1] and "fill-" in "".join(names)
    room.publisher.close()


def test_the_end_turns_the_replay_into_vod_at_the_same_url(room: Room) -> None:
    room.record(started(at=T0), init(at=T0), *[segment(i, at=T0 + i) for i in range(4)])
    room.run(after=4.0)
    event = room.replay()
    assert event.playlist_type == "event" and not event.is_endlist and len(event.segments) == 4
    room.record(SessionEnded(session=S1, at=T0 + 5, reason=EndReason.EOS), EndRequested(at=T0 + 5))
    final = room.run(after=1.0)
    assert final.state is BroadcastState.ENDED and final.status_changed
    replay = room.replay()
    assert replay.playlist_type == "vod" and replay.is_endlist and len(replay.segments) == 4
    assert room.live().is_endlist
    assert room.storage.text(layout.replay_master(ROOM)).count("replay/a64.m3u8") == 1


def test_a_broadcast_that_published_nothing_ends_cleanly_with_no_replay(room: Room) -> None:
    room.record(started(at=T0), EndRequested(at=T0 + 1))
    result = room.run(after=2.0)
    assert result.state is BroadcastState.ENDED and result.error is None
    assert not [k for k in room.storage.objects if k.endswith(".m3u8")]
    assert room.run(after=1.0).state is BroadcastState.ENDED  # and it stays there, quietly


def test_a_failed_playlist_write_is_retried_by_the_next_pass(room: Room) -> None:
    room.record(started(at=T0), init(at=T0), segment(0, at=T0))
    failing = {layout.live_playlist(ROOM, "a64")}
    room.storage.fail = lambda key: key in failing
    broken = room.run(after=1.0)
    assert broken.error is not None and not room.storage.exists(layout.live_playlist(ROOM, "a64"))
    failing.clear()
    assert room.run(after=1.0).error is None
    assert len(room.live().segments) == 1


def test_spooled_segments_are_uploaded_then_published_in_order(room: Room, tmp_path: Path) -> None:
    room.record(started(at=T0), init(at=T0))
    key = layout.media_segment(ROOM, S1, "a64", 0)
    Spool(tmp_path / "spool").put(key, b"spooled media")
    room.storage.fail = lambda k: k == key
    room.record(segment(0, at=T0, spooled=True), segment(1, at=T0 + 1))
    waiting = room.run(after=1.5)
    assert waiting.published == 0 and waiting.backlog == 1  # 1 is durable but must wait for 0
    room.storage.fail = lambda k: False
    done = room.run(after=1.0)
    assert done.published == 2 and done.backlog == 0 and room.storage.get(key) == b"spooled media"
    assert not (tmp_path / "spool" / key).exists()


def test_a_new_owner_rebuilds_from_the_journal_and_continues(tmp_path: Path) -> None:
    first = make_room(tmp_path / "a")
    first.record(started(at=T0), init(at=T0), *[segment(i, at=T0) for i in range(3)])
    first.run(after=1.0)
    first.publisher.close()  # the worker died; another takes the room
    second = make_room(tmp_path / "b", journal=first.journal, storage=first.storage, clock=first.clock)
    second.record(segment(3, at=second.clock.now))
    second.run(after=1.0)
    assert [s.uri.rsplit("/", 1)[1] for s in second.live().segments] == ["000001.m4s", "000002.m4s", "000003.m4s"]
    second.run(after=10.0)  # past the DVR interval: the EVENT playlist holds the whole broadcast, rebuilt
    assert len(second.replay().segments) == 4
    second.publisher.close()


def test_a_new_owner_rewrites_masters_a_crash_lost_and_records_them_once(tmp_path: Path) -> None:
    """Live masters are written without fsync (the group commit does not cover them): a host that crashed may
    have lost them although the journal says they were written, so a new owner writes both again."""
    first = make_room(tmp_path / "a")
    first.record(started(at=T0), init(at=T0), *[segment(i, at=T0) for i in range(2)])
    first.run(after=1.0)
    first.publisher.close()
    masters = [layout.master_playlist(ROOM), layout.replay_master(ROOM)]
    for key in masters:
        first.storage.objects.pop(key)  # lost in the crash
    second = make_room(tmp_path / "b", journal=first.journal, storage=first.storage, clock=first.clock)
    second.run(after=1.0)
    assert all(second.storage.exists(key) for key in masters)
    records = [r for r in second.journal.read(ROOM, 0)[0] if type(r).__name__ == "MasterWritten"]
    assert len(records) == 1  # the same renditions: nothing new to record
    second.publisher.close()


def test_storage_errors_are_retried_not_raised(room: Room) -> None:
    room.record(started(at=T0), init(at=T0), segment(0, at=T0))
    room.storage.fail = lambda key: True
    result = room.run(after=1.0)
    assert result.error is not None and result.state is BroadcastState.LIVE
    with pytest.raises(StorageError):
        room.storage.put("x", b"", ObjectHeaders(content_type="", cache_control=""))


def test_segments_not_known_durable_wait_for_a_barrier(room: Room) -> None:
    room.record(started(at=T0), init(at=T0), segment(0, at=T0))
    held = room.run(after=0.5, barrier=False)
    assert held.published == 0 and held.needs_barrier  # recorded after the last barrier: not named yet
    assert room.run().published == 1


def test_a_publisher_that_takes_an_ended_room_leaves_its_final_playlists_alone(tmp_path: Path) -> None:
    first = make_room(tmp_path / "a")
    first.record(started(at=T0), init(at=T0), *[segment(i, at=T0) for i in range(3)], EndRequested(at=T0 + 1))
    assert first.run(after=2.0).state is BroadcastState.ENDED
    first.publisher.close()
    final = dict(first.storage.objects)
    late = make_room(tmp_path / "b", journal=first.journal, storage=first.storage, clock=first.clock)
    assert late.run(after=10.0).state is BroadcastState.ENDED  # e.g. a ring that arrived after the end
    assert first.storage.objects == final and first.replay().is_endlist
    late.publisher.close()
