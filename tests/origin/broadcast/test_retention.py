"""Retention: an ended room's journal shrinks to records that fold to the same status."""

from __future__ import annotations

from pathlib import Path

from origin.broadcast.journal.files import FileJournal
from origin.broadcast.model import BroadcastState, Publication
from origin.broadcast.records import DownloadBuilt, MasterWritten, Published, StateChanged
from origin.broadcast.retention import Retention, compacted
from origin.broadcast.states import RoomStates
from origin.broadcast.view import ListenerView
from tests.origin.broadcast.factory import S1, S2, init, segment, started

DAY = 86_400.0


def _pub(idx: int) -> Publication:
    return Publication(rendition="a64", msn=idx, session=S2, idx=idx, duration_s=1.0, pdt=100.0 + idx,
                       discontinuity=False, size=1, received_at=0.0)  # fmt: skip


def test_an_ended_room_past_retention_keeps_its_status_and_loses_its_bulk(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    journal.append("old", [started(S1, 10.0), started(S2, 20.0, seconds=2.0), init(S2),
                           *[segment(i, S2) for i in range(50)], Published(publications=tuple(_pub(i) for i in
                           range(50))), MasterWritten(renditions=("a64",)), StateChanged(state=BroadcastState.ENDED,
                           at=100.0), DownloadBuilt(size=1234)])  # fmt: skip
    journal.append("recent", [started(), StateChanged(state=BroadcastState.ENDED, at=DAY)])
    journal.append("live", [started()])
    (journal.room_dir("old") / "dvr").mkdir()
    (journal.room_dir("old") / "dvr" / "a64.m3u8-body").write_text("x")
    view = ListenerView(RoomStates(journal), public_base_url="https://cdn.example")
    before = view.broadcast("old")
    now = [100.0 + 7 * DAY]
    retention = Retention(states=RoomStates(journal), retention_s=7 * DAY, clock=lambda: now[0],
                          room_dir=journal.room_dir)  # fmt: skip
    assert retention.sweep() == ["old"]
    assert len(journal.read("old", 0)[0]) == 4 and not (journal.room_dir("old") / "dvr").exists()
    assert ListenerView(RoomStates(journal), public_base_url="https://cdn.example").broadcast("old") == before
    assert before.state == "ended" and before.download_url and before.segment_s == 2.0
    assert retention.sweep() == []  # once is enough; the live and the recent room are left alone


def test_compaction_of_a_room_that_published_nothing() -> None:
    from origin.broadcast.lifecycle import apply
    from origin.broadcast.model import RoomState

    state = RoomState(room="silent")
    for r in (started(), StateChanged(state=BroadcastState.ENDED, at=5.0)):
        apply(state, r)
    again = RoomState(room="silent")
    for r in compacted(state):
        apply(again, r)
    assert (again.state, again.playable, again.ended_at) == (BroadcastState.ENDED, False, 5.0)
