"""The pure sequencer: which received segments become published, in which order, with which numbers."""

from __future__ import annotations

from collections.abc import Iterable

from origin.broadcast.model import INIT_INDEX, Publication, RenditionState, Session, StoredObject
from origin.broadcast.sequencer import Plan, Skipped, fillers_due, plan_publications

SEG = 2.0
RATE = 48_000


def session(sid: str, *, ended_at: float | None = None, anchor: float | None = None) -> Session:
    return Session(id=sid, ordinal=int(sid[1:]), started_at=0.0, segment_seconds=SEG, ladder=(),
                   last_activity_at=0.0, ended_at=ended_at, anchor_pdt=anchor)  # fmt: skip


def seg(sid: str, idx: int, *, at: float, spooled: bool = False) -> StoredObject:
    return StoredObject(session=sid, rendition="a64", idx=idx, size=16_000, received_at=at, spooled=spooled,
                        duration_ticks=int(SEG * RATE), base_ticks=int(idx * SEG * RATE))  # fmt: skip


def init(sid: str) -> StoredObject:
    return StoredObject(session=sid, rendition="a64", idx=INIT_INDEX, size=700, received_at=0.0, timescale=RATE)


def rendition(
    segs: Iterable[StoredObject], *, inits: Iterable[str] = ("s1", "s2"), last: Publication | None = None
) -> RenditionState:
    rs = RenditionState(name="a64", inits={s: init(s) for s in inits})
    for s in segs:
        rs.pending.setdefault(s.session, {})[s.idx] = s
    if last is not None:
        rs.tail.append(last)
        rs.last_real_idx[last.session] = last.idx
    return rs


def published(sid: str, idx: int, msn: int, end_pdt: float) -> Publication:
    return Publication(rendition="a64", msn=msn, session=sid, idx=idx, duration_s=SEG, pdt=end_pdt - SEG,
                       discontinuity=False, size=1, received_at=0.0)  # fmt: skip


def plan(rs: RenditionState, sessions: list[Session], *, now: float = 100.0, final: bool = False) -> Plan:
    return plan_publications(rendition=rs, sessions=sessions, now=now, gap_timeout_s=2 * SEG, settle_s=2.0,
                             final=final)  # fmt: skip


OPEN = session("s1")


def test_in_order_segments_publish_with_consecutive_sequence_numbers() -> None:
    p = plan(rendition([seg("s1", 0, at=99), seg("s1", 1, at=99.5)]), [OPEN])
    assert [(x.idx, x.msn, x.discontinuity) for x in p.publications] == [(0, 0, False), (1, 1, False)]
    # PROGRAM-DATE-TIME: anchor from the wall clock, then decode time.
    assert p.new_anchors["s1"] == 100.0 - SEG
    assert p.publications[1].pdt - p.publications[0].pdt == SEG


def test_out_of_order_arrival_waits_for_the_missing_index() -> None:
    p = plan(rendition([seg("s1", 0, at=99), seg("s1", 2, at=99.9)]), [OPEN])
    assert [x.idx for x in p.publications] == [0]
    assert p.waiting


def test_a_never_received_index_is_skipped_with_a_discontinuity_after_the_gap_timeout() -> None:
    p = plan(rendition([seg("s1", 0, at=90), seg("s1", 2, at=95)]), [OPEN])
    assert [(x.idx, x.msn, x.discontinuity) for x in p.publications] == [(0, 0, False), (2, 1, True)]
    assert p.skipped == [Skipped(session="s1", first=1, last=1)]


def test_a_huge_gap_costs_one_range_not_one_entry_per_index() -> None:
    p = plan(rendition([seg("s1", 0, at=90), seg("s1", 60, at=95)]), [OPEN], now=100.0)
    assert p.skipped == [Skipped(session="s1", first=1, last=59)]
    assert [x.idx for x in p.publications] == [0, 60]


def test_a_spooled_segment_is_never_skipped() -> None:
    p = plan(rendition([seg("s1", 0, at=10), seg("s1", 1, at=10, spooled=True), seg("s1", 2, at=10)]), [OPEN],
             now=500)  # fmt: skip
    assert [x.idx for x in p.publications] == [0]
    assert p.waiting and not p.skipped


def test_nothing_publishes_before_the_sessions_init_is_durable() -> None:
    p = plan(rendition([seg("s1", 0, at=99)], inits=()), [OPEN])
    assert p.publications == [] and p.waiting
    spooled = rendition([seg("s1", 0, at=99)], inits=())
    spooled.inits["s1"] = StoredObject(**{**init("s1").__dict__, "spooled": True})
    assert plan(spooled, [OPEN]).publications == []


def test_a_new_session_continues_the_sequence_with_one_discontinuity() -> None:
    s1, s2 = session("s1", ended_at=95.0, anchor=0.0), session("s2")
    last = published("s1", 4, 7, end_pdt=10.0)
    p = plan(rendition([seg("s2", 0, at=99), seg("s2", 1, at=99.5)], last=last), [s1, s2])
    assert [(x.session, x.msn, x.discontinuity) for x in p.publications] == [("s2", 8, True), ("s2", 9, False)]
    assert p.publications[0].pdt >= last.end_pdt


def test_anchors_decided_earlier_in_the_pass_are_shared_by_every_rendition() -> None:
    p = plan_publications(rendition=rendition([seg("s1", 0, at=99)]), sessions=[OPEN], anchors={"s1": 42.0},
                          now=100.0, gap_timeout_s=4, settle_s=2, final=False)  # fmt: skip
    assert p.publications[0].pdt == 42.0 and "s1" not in p.new_anchors


def test_a_successor_waits_until_the_previous_session_settles() -> None:
    s1, s2 = session("s1", ended_at=99.5, anchor=0.0), session("s2")  # s1 ended 0.5 s ago: PUTs may be in flight
    p = plan(rendition([seg("s2", 0, at=99.9)], last=published("s1", 4, 7, end_pdt=10.0)), [s1, s2])
    assert p.publications == []


def test_final_pass_publishes_everything_received_and_skips_gaps_immediately() -> None:
    s1 = session("s1", ended_at=99.9)
    p = plan(rendition([seg("s1", 0, at=99), seg("s1", 1, at=99), seg("s1", 3, at=99.9)]), [s1], final=True)
    assert [(x.idx, x.discontinuity) for x in p.publications] == [(0, False), (1, False), (3, True)]


def test_pdt_never_goes_back_across_sessions() -> None:
    # The new session's first segment arrived "early" by the wall clock: the anchor is pushed forward.
    s1, s2 = session("s1", ended_at=50.0, anchor=0.0), session("s2")
    p = plan(rendition([seg("s2", 0, at=99)], last=published("s1", 40, 40, end_pdt=200.0)), [s1, s2])
    assert p.publications[0].pdt == 200.0


def test_a_settled_session_is_sealed_once_passed_and_an_open_one_is_not() -> None:
    s1, s2 = session("s1", ended_at=90.0, anchor=0.0), session("s2")
    last = published("s1", 4, 7, end_pdt=10.0)
    p = plan(rendition([seg("s2", 0, at=99)], last=last), [s1, s2])
    assert p.sealed == ["s1"]
    owed = rendition([seg("s1", 5, at=89, spooled=True), seg("s2", 0, at=99)], last=last)
    waiting = plan(owed, [s1, s2])
    assert waiting.sealed == [] and waiting.waiting  # s1 still owes an upload: never sealed past it


def test_real_audio_after_filler_gets_a_discontinuity() -> None:
    last = Publication(**{**published("s1", 1, 5, end_pdt=20.0).__dict__, "filler": True})
    rs = rendition([seg("s1", 2, at=99)], last=last)
    p = plan(rs, [session("s1", anchor=0.0)])
    assert [(x.idx, x.msn, x.discontinuity) for x in p.publications] == [(2, 6, True)]


def test_an_impossible_duration_is_quarantined_not_published() -> None:
    bad = StoredObject(**{**seg("s1", 1, at=99).__dict__, "duration_ticks": 3600 * RATE})
    p = plan(rendition([seg("s1", 0, at=99), bad, seg("s1", 2, at=99)]), [OPEN])
    assert [x.idx for x in p.publications] == [0, 2] and p.publications[1].discontinuity
    assert [(s, i) for s, i, _ in p.quarantined] == [("s1", 1)]


def test_fillers_follow_the_deadline() -> None:
    assert fillers_due(last_end_pdt=100.0, now=101.0, segment_s=1.0, deadline_s=1.4, max_count=5) == 0
    assert fillers_due(last_end_pdt=100.0, now=101.4, segment_s=1.0, deadline_s=1.4, max_count=5) == 1
    assert fillers_due(last_end_pdt=100.0, now=103.5, segment_s=1.0, deadline_s=1.4, max_count=5) == 3
    assert fillers_due(last_end_pdt=0.0, now=1000.0, segment_s=1.0, deadline_s=1.4, max_count=5) == 5
