"""The broadcast's rules: folding records into the room state, timeouts, the end of the broadcast."""

from __future__ import annotations

from origin.broadcast.lifecycle import LifecyclePolicy, apply, expire
from origin.broadcast.model import BroadcastState, EndReason, Publication, RoomState
from origin.broadcast.records import (
    EndRequested,
    ObjectUploaded,
    Published,
    Quarantined,
    Record,
    Sealed,
    SessionEnded,
    StateChanged,
)
from tests.origin.broadcast.factory import S1, S2, init, segment, started

POLICY = LifecyclePolicy(session_timeout_s=10.0, end_grace_s=120.0)


def fold(*records: Record) -> RoomState:
    state = RoomState(room="launch")
    for r in records:
        apply(state, r)
    return state


def pub(idx: int, msn: int, session: str = S1) -> Publication:
    return Publication(rendition="a64", msn=msn, session=session, idx=idx, duration_s=1.0, pdt=float(msn),
                       discontinuity=False, size=8_000, received_at=0.0)  # fmt: skip


def test_the_first_session_puts_the_room_on_air_and_a_newer_one_supersedes_it() -> None:
    state = fold(started(S1, 1.0))
    assert state.state is BroadcastState.LIVE and state.started_at == 1.0
    apply(state, started(S2, 5.0))
    s1, s2 = state.sessions[S1], state.sessions[S2]
    assert (s1.ended_at, s1.end_reason) == (5.0, EndReason.SUPERSEDED) and s2.open and s2.ordinal == 2
    apply(state, started(S2, 6.0))  # a repeated start changes nothing
    assert len(state.sessions) == 2 and state.sessions[S2].started_at == 5.0


def test_received_segments_wait_until_published_and_never_come_back() -> None:
    state = fold(started(), init(), segment(0, at=1.0), segment(1, at=2.0))
    rs = state.renditions["a64"]
    assert sorted(rs.pending[S1]) == [0, 1] and state.sessions[S1].last_activity_at == 2.0
    apply(state, Published(publications=(pub(0, 0),)))
    assert sorted(rs.pending[S1]) == [1] and rs.last_real_idx[S1] == 0 and rs.published == 1
    apply(state, segment(0, at=3.0))  # a late repeat of a published index is not pending again
    assert sorted(rs.pending[S1]) == [1]
    assert state.sessions[S1].max_index["a64"] == 1


def test_spooled_objects_wait_for_their_upload() -> None:
    state = fold(started(), init(), segment(0, spooled=True))
    assert (S1, "a64", 0) in state.spooled and state.renditions["a64"].pending[S1][0].spooled
    apply(state, ObjectUploaded(session=S1, rendition="a64", idx=0))
    assert not state.spooled and not state.renditions["a64"].pending[S1][0].spooled


def test_a_seal_drops_what_can_no_longer_be_published_and_quarantine_drops_one() -> None:
    state = fold(started(), init(), segment(0), segment(1), Quarantined(session=S1, rendition="a64", idx=0,
                                                                        reason="bad"))  # fmt: skip
    assert sorted(state.renditions["a64"].pending[S1]) == [1] and state.quarantined == 1
    apply(state, Sealed(session=S1, rendition="a64"))
    assert S1 not in state.renditions["a64"].pending and "a64" in state.sessions[S1].sealed
    apply(state, segment(2))  # a sealed session's late segment is never pending
    assert S1 not in state.renditions["a64"].pending


def test_the_admin_end_ends_every_session_and_refuses_new_ones() -> None:
    state = fold(started(S1, 1.0), EndRequested(at=2.0))
    assert state.state is BroadcastState.ENDING
    assert state.sessions[S1].end_reason is EndReason.BROADCAST_END
    apply(state, started(S2, 3.0))
    assert S2 not in state.sessions
    apply(state, StateChanged(state=BroadcastState.ENDED, at=4.0))
    assert state.ended_at == 4.0


def test_sessions_time_out_and_the_broadcast_ends_after_the_grace() -> None:
    state = fold(started(S1, 0.0))
    assert expire(state, 9.9, POLICY) == []
    assert expire(state, 10.0, POLICY) == [SessionEnded(session=S1, at=10.0, reason=EndReason.TIMEOUT)]
    apply(state, SessionEnded(session=S1, at=10.0, reason=EndReason.EOS))
    assert expire(state, 129.9, POLICY) == []
    assert expire(state, 130.0, POLICY) == [StateChanged(state=BroadcastState.ENDING, at=130.0)]
    apply(state, started(S2, 131.0))
    assert expire(state, 200.0, POLICY) == [SessionEnded(session=S2, at=200.0, reason=EndReason.TIMEOUT)]
    ending = fold(started(), EndRequested(at=1.0))
    assert expire(ending, 1000.0, POLICY) == []  # only a live broadcast expires
