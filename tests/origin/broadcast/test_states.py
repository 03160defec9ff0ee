"""RoomStates: incremental folds, and a new owner's one read of the whole journal."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from origin.broadcast.journal.memory import MemoryJournal
from origin.broadcast.states import RoomStates
from origin.web.ingest import _on_loop
from tests.origin.broadcast.factory import init, segment, started
from tests.origin.broadcast.publish.test_room import ROOM, T0, make_room


def test_a_room_is_folded_once_held_and_refold_reads_it_whole() -> None:
    journal = MemoryJournal()
    journal.append(ROOM, [started(at=T0), init(at=T0), segment(0, at=T0 + 1)])
    states = RoomStates(journal)
    deps = SimpleNamespace(inline=True, service=SimpleNamespace(stores=SimpleNamespace(states=states)))
    # never folded here: its whole journal would be read, so ingest receives it off the loop
    assert not states.folded(ROOM) and not _on_loop(deps, ROOM)  # type: ignore[arg-type]
    with states.hold(ROOM) as state:
        held = state.records
    assert states.folded(ROOM) and _on_loop(deps, ROOM)  # type: ignore[arg-type]
    journal.append(ROOM, [segment(1, at=T0 + 2)])
    records = states.refold(ROOM)
    assert len(records) == held + 1
    with states.hold(ROOM) as state:
        assert state.records == held + 1 and state.renditions["a64"].pending  # nothing folded twice


def test_a_new_owner_reads_the_journal_once(tmp_path: Path) -> None:
    journal = MemoryJournal()
    reads_from_start = []
    real = journal.read

    def counting(room: str, offset: int) -> tuple[list[object], int]:
        if offset == 0:
            reads_from_start.append(room)
        return real(room, offset)  # type: ignore[return-value]

    journal.read = counting  # type: ignore[method-assign, assignment]
    room = make_room(tmp_path, journal=journal)
    room.record(started(at=T0), init(at=T0), segment(0, at=T0 + 1), segment(1, at=T0 + 2))
    room.run(after=3.0)
    assert reads_from_start == [ROOM] and len(room.live().segments) == 2
    room.publisher.close()
