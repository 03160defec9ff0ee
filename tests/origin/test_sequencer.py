from __future__ import annotations

from origin.sequencer import Cursor, ReceivedSegment, SessionView, plan_publications

SEG = 2.0


def seg(idx: int, *, at: float, uploaded: bool = True) -> ReceivedSegment:
    return ReceivedSegment(
        idx=idx, uploaded=uploaded, received_at=at, duration_s=SEG, base_time_s=idx * SEG, size_bytes=16_000
    )


def plan(sessions, pending, *, cursor=None, now=100.0, final=False, inits=None):  # type: ignore[no-untyped-def]
    return plan_publications(
        sessions=sessions,
        pending=pending,
        init_uploaded=frozenset(inits if inits is not None else [s.id for s in sessions]),
        cursor=cursor,
        now=now,
        gap_timeout_s=2 * SEG,
        settle_s=2.0,
        final=final,
    )


OPEN = SessionView(id="s1", ended_at=None, anchor_pdt=None)


def test_in_order_segments_publish_with_consecutive_sequence_numbers() -> None:
    p = plan([OPEN], {"s1": {0: seg(0, at=99), 1: seg(1, at=99.5)}})
    assert [(x.idx, x.media_sequence, x.discontinuity) for x in p.publications] == [(0, 0, False), (1, 1, False)]
    # PROGRAM-DATE-TIME: anchor from the wall clock, then decode time.
    assert p.new_anchors["s1"] == 100.0 - SEG
    assert p.publications[1].pdt - p.publications[0].pdt == SEG


def test_out_of_order_arrival_waits_for_the_missing_index() -> None:
    p = plan([OPEN], {"s1": {0: seg(0, at=99), 2: seg(2, at=99.9)}})
    assert [x.idx for x in p.publications] == [0]
    assert p.waiting


def test_a_never_received_index_is_skipped_with_a_discontinuity_after_the_gap_timeout() -> None:
    p = plan([OPEN], {"s1": {0: seg(0, at=90), 2: seg(2, at=95)}}, now=100.0)
    assert [(x.idx, x.media_sequence, x.discontinuity) for x in p.publications] == [(0, 0, False), (2, 1, True)]
    assert p.skipped == [("s1", 1)]


def test_a_received_but_not_uploaded_segment_is_never_skipped() -> None:
    p = plan([OPEN], {"s1": {0: seg(0, at=10), 1: seg(1, at=10, uploaded=False), 2: seg(2, at=10)}}, now=500)
    assert [x.idx for x in p.publications] == [0]
    assert p.waiting and not p.skipped


def test_nothing_publishes_before_the_sessions_init_is_durable() -> None:
    p = plan([OPEN], {"s1": {0: seg(0, at=99)}}, inits=[])
    assert p.publications == [] and p.waiting


def test_a_new_session_continues_the_sequence_with_one_discontinuity() -> None:
    s1 = SessionView(id="s1", ended_at=95.0, anchor_pdt=0.0)
    s2 = SessionView(id="s2", ended_at=None, anchor_pdt=None)
    cursor = Cursor(session="s1", idx=4, media_sequence=7, end_pdt=10.0)
    p = plan([s1, s2], {"s2": {0: seg(0, at=99), 1: seg(1, at=99.5)}}, cursor=cursor)
    assert [(x.session, x.media_sequence, x.discontinuity) for x in p.publications] == [
        ("s2", 8, True),
        ("s2", 9, False),
    ]
    assert p.publications[0].pdt >= cursor.end_pdt


def test_a_successor_waits_until_the_previous_session_settles() -> None:
    s1 = SessionView(id="s1", ended_at=99.5, anchor_pdt=0.0)  # ended 0.5 s ago: its last PUT may be in flight
    s2 = SessionView(id="s2", ended_at=None, anchor_pdt=None)
    cursor = Cursor(session="s1", idx=4, media_sequence=7, end_pdt=10.0)
    p = plan([s1, s2], {"s2": {0: seg(0, at=99.9)}}, cursor=cursor)
    assert p.publications == []


def test_final_pass_publishes_everything_received_and_skips_gaps_immediately() -> None:
    s1 = SessionView(id="s1", ended_at=99.9, anchor_pdt=None)
    p = plan([s1], {"s1": {0: seg(0, at=99), 1: seg(1, at=99), 3: seg(3, at=99.9)}}, final=True)
    assert [(x.idx, x.discontinuity) for x in p.publications] == [(0, False), (1, False), (3, True)]


def test_pdt_never_goes_back_across_sessions() -> None:
    # The new session's first segment arrived "early" by the wall clock: the anchor is pushed forward.
    s1 = SessionView(id="s1", ended_at=50.0, anchor_pdt=0.0)
    s2 = SessionView(id="s2", ended_at=None, anchor_pdt=None)
    cursor = Cursor(session="s1", idx=40, media_sequence=40, end_pdt=200.0)
    p = plan([s1, s2], {"s2": {0: seg(0, at=99)}}, cursor=cursor, now=100.0)
    assert p.publications[0].pdt == 200.0


def test_a_settled_session_is_sealed_once_passed_and_an_open_one_is_not() -> None:
    s1 = SessionView(id="s1", ended_at=90.0, anchor_pdt=0.0)
    s2 = SessionView(id="s2", ended_at=None, anchor_pdt=None)
    cursor = Cursor(session="s1", idx=4, media_sequence=7, end_pdt=10.0)
    p = plan([s1, s2], {"s2": {0: seg(0, at=99)}}, cursor=cursor)
    assert p.sealed == ["s1"]
    waiting = plan([s1, s2], {"s1": {5: seg(5, at=89, uploaded=False)}, "s2": {0: seg(0, at=99)}}, cursor=cursor)
    assert waiting.sealed == [] and waiting.waiting  # s1 still owes an upload: never sealed past it
