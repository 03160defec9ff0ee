"""Property tests of the sequencer: whatever a rendition's state holds — random or mutated by a hostile
client or a corrupt journal — `plan_publications` raises nothing, keeps its invariants and does bounded work.

States are built from random sessions (open, ended, sealed, anchored or not), inits (missing, spooled, any
timescale), pending segments (any index, duration, decode time, spool flag, arrival time) and a previous
publication (real or filler). Bounded: a few hundred examples, no example database.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from origin.broadcast.model import INIT_INDEX, Publication, RenditionState, Session, StoredObject
from origin.broadcast.sequencer import MAX_SEGMENT_S, Plan, plan_publications

SETTINGS = settings(max_examples=400, deadline=timedelta(seconds=2), database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
RENDITION = "a64"
U64 = 2**64 - 1
NOW = 1_800_000_000.0

ticks = st.one_of(st.integers(0, 10 * 48_000), st.integers(-(2**63), U64), st.sampled_from([0, 1, U64, 2**31]))
times = st.one_of(st.floats(NOW - 1000, NOW + 10), st.floats(-1e12, 1e12, allow_nan=False),
                  st.sampled_from([0.0, NOW]))  # fmt: skip
indexes = st.one_of(st.integers(0, 80), st.integers(0, 2**31), st.sampled_from([0, 1, 63, 64, 999_999_999]))


@dataclass(frozen=True, kw_only=True)
class Case:
    rendition: RenditionState
    sessions: list[Session]
    now: float
    gap_timeout_s: float
    settle_s: float
    final: bool


@st.composite
def segment(draw: st.DrawFn, session: str) -> StoredObject:
    return StoredObject(session=session, rendition=RENDITION, idx=draw(indexes), size=draw(st.integers(0, 2**24)),
                        received_at=draw(times), spooled=draw(st.booleans()), duration_ticks=draw(ticks),
                        base_ticks=draw(ticks))  # fmt: skip


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(1, 4))
    sessions = [
        Session(id=f"s{i}", ordinal=i, started_at=draw(times), segment_seconds=draw(st.floats(0.2, 10.0)), ladder=(),
                last_activity_at=draw(times), ended_at=draw(st.none() | times), anchor_pdt=draw(st.none() | times),
                sealed={RENDITION} if draw(st.integers(0, 5)) == 0 else set())
        for i in range(1, n + 1)
    ]
    rs = RenditionState(name=RENDITION)
    for s in sessions:
        if draw(st.integers(0, 4)):
            rs.inits[s.id] = StoredObject(
                session=s.id, rendition=RENDITION, idx=INIT_INDEX, size=700, received_at=0.0,
                spooled=draw(st.integers(0, 5)) == 0, timescale=draw(st.sampled_from([0, 1, 8000, 48_000, 2**32 - 1])),
            )  # fmt: skip
        for seg in draw(st.lists(segment(s.id), max_size=40)):
            rs.pending.setdefault(s.id, {})[seg.idx] = seg
        if draw(st.booleans()):
            rs.last_real_idx[s.id] = draw(indexes)
    if draw(st.booleans()):
        owner = draw(st.sampled_from([*(s.id for s in sessions), "gone"]))
        rs.tail.append(Publication(rendition=RENDITION, msn=draw(st.integers(0, 2**40)), session=owner,
                                   idx=draw(indexes), duration_s=draw(st.floats(0.01, MAX_SEGMENT_S)),
                                   pdt=draw(times), discontinuity=draw(st.booleans()), size=1, received_at=0.0,
                                   filler=draw(st.booleans())))  # fmt: skip
    return Case(rendition=rs, sessions=sessions, now=draw(times), gap_timeout_s=draw(st.floats(0.0, 60.0)),
                settle_s=draw(st.floats(0.0, 60.0)), final=draw(st.booleans()))  # fmt: skip


def plan(case: Case) -> Plan:
    return plan_publications(rendition=case.rendition, sessions=case.sessions, now=case.now,
                             gap_timeout_s=case.gap_timeout_s, settle_s=case.settle_s, final=case.final)  # fmt: skip


@SETTINGS
@given(cases())
def test_any_state_plans_without_raising_and_keeps_the_invariants(case: Case) -> None:
    pending = {(sid, i) for sid, segs in case.rendition.pending.items() for i in segs}
    started = time.perf_counter()
    p = plan(case)
    assert time.perf_counter() - started < 0.2  # ≤ 160 pending segments: anything slower is super-linear
    last = case.rendition.last
    first_msn = last.msn + 1 if last else 0
    assert [x.msn for x in p.publications] == list(range(first_msn, first_msn + len(p.publications)))
    published = [(x.session, x.idx) for x in p.publications]
    quarantined = [(s, i) for s, i, _ in p.quarantined]
    assert len(set(published + quarantined)) == len(published) + len(quarantined)  # each segment once at most
    assert set(published + quarantined) <= pending
    order = [s.id for s in case.sessions]
    assert [order.index(s) for s, _ in published] == sorted(order.index(s) for s, _ in published)
    prev_end = last.end_pdt if last else -math.inf
    for x in p.publications:
        assert 0 < x.duration_s <= MAX_SEGMENT_S and math.isfinite(x.pdt)
        assert x.pdt >= prev_end  # PROGRAM-DATE-TIME never goes back
        prev_end = x.end_pdt
        init = case.rendition.inits[x.session]
        assert not init.spooled and init.timescale > 0
        assert not case.rendition.pending[x.session][x.idx].spooled  # only what is durable in storage
    for skipped in p.skipped:
        assert skipped.first <= skipped.last  # a gap is one range, whatever its length
    assert set(p.sealed) <= set(order)


@settings(max_examples=20, deadline=None, database=None)
@given(st.integers(1_000, 20_000), st.integers(0, 2**31))
def test_work_grows_with_what_is_pending_not_with_the_indexes(count: int, offset: int) -> None:
    """Thousands of pending segments with a gap before each: one pass stays under a second (it took 9 s for
    16,000 while each gap scanned every pending index)."""
    session = Session(id="s1", ordinal=1, started_at=0.0, segment_seconds=1.0, ladder=(), last_activity_at=0.0,
                      ended_at=0.0)  # fmt: skip
    init = StoredObject(session="s1", rendition=RENDITION, idx=INIT_INDEX, size=1, received_at=0.0, timescale=48_000)
    rs = RenditionState(name=RENDITION, inits={"s1": init})
    for k in range(count):
        idx = offset + k * 64
        rs.pending.setdefault("s1", {})[idx] = StoredObject(session="s1", rendition=RENDITION, idx=idx, size=1,
                                                             received_at=0.0, duration_ticks=48_000,
                                                             base_ticks=k * 48_000)  # fmt: skip
    started = time.perf_counter()
    p = plan(Case(rendition=rs, sessions=[session], now=NOW, gap_timeout_s=1.0, settle_s=0.0, final=True))
    assert len(p.publications) == count and len(p.skipped) == count - (offset == 0)
    assert time.perf_counter() - started < 1.0
