"""What listeners and operators see of a broadcast: status follows the journal, never a URL that 404s."""

from __future__ import annotations

from origin.admission.status import BroadcastInfo
from origin.broadcast.journal.memory import MemoryJournal
from origin.broadcast.model import BroadcastState
from origin.broadcast.records import DownloadBuilt, MasterWritten, StateChanged
from origin.broadcast.states import RoomStates
from origin.broadcast.view import ListenerView
from tests.origin.broadcast.factory import S1, started

BASE = "https://cdn.example"


def test_listener_view_follows_the_journal_and_waits_for_the_master() -> None:
    journal = MemoryJournal()
    view = ListenerView(RoomStates(journal), public_base_url=BASE)
    assert view.broadcast("quiet") == BroadcastInfo()
    assert not journal.exists("quiet")  # looking does not create state
    journal.append("launch", [started(S1, 1.0, seconds=2.048)])
    assert view.broadcast("launch") == BroadcastInfo(state="idle", segment_s=2.048)  # on air, not playable yet
    journal.append("launch", [MasterWritten(renditions=("a64",))])
    assert view.broadcast("launch") == BroadcastInfo(
        state="live", replay_url=f"{BASE}/rooms/launch/replay.m3u8", segment_s=2.048
    )
    journal.append("launch", [StateChanged(state=BroadcastState.ENDED, at=9.0)])
    assert view.broadcast("launch").state == "ended" and view.broadcast("launch").download_url is None
    journal.append("launch", [DownloadBuilt(size=10)])
    assert view.broadcast("launch").download_url == f"{BASE}/rooms/launch/replay.m4a"


def test_an_ended_broadcast_that_published_nothing_has_no_replay() -> None:
    journal = MemoryJournal()
    journal.append("silent", [started(), StateChanged(state=BroadcastState.ENDED, at=5.0)])
    info = ListenerView(RoomStates(journal), public_base_url=BASE).broadcast("silent")
    assert info.state == "ended" and info.replay_url is None
