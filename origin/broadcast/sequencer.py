"""Pure decision: which received segments of a rendition become published, in which order.

Rules (docs/ingest.md, "Ordering guarantees"):
- sessions are published in the order they started; within a session, in segment index order;
- a segment is published only once it and its session's init are durable in storage: not spooled, and
  recorded before `durable_before` (the start of the newest durability barrier known to have succeeded);
- a *missing* index (never received) is skipped, with a discontinuity, once a later segment of the same
  session has waited `gap_timeout_s`, or once the session has ended and settled; a skipped run of indexes
  is one range, so a gap costs O(1) whatever its length; a received segment that still waits in the spool
  is never skipped: the playlist waits (delayed, not wrong);
- the first segment of every session after the first gets EXT-X-DISCONTINUITY, and so does real audio
  resuming after filler;
- media sequence numbers continue from the last published one, across sessions;
- PROGRAM-DATE-TIME = session anchor + the segment's decode time; the anchor is set from the wall clock
  when a session's first segment is published and never goes before the previous session's end.
Time is an argument; nothing here reads a clock or touches storage.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from origin.broadcast.model import Publication, RenditionState, Session, StoredObject

# A duration or decode time past this is refused at ingest; here it only keeps a corrupt value out of a plan.
MAX_SEGMENT_S = 60.0


@dataclass(frozen=True, kw_only=True)
class Skipped:
    session: str
    first: int
    last: int  # inclusive


@dataclass(kw_only=True)
class Plan:
    publications: list[Publication] = field(default_factory=list)
    new_anchors: dict[str, float] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    waiting: bool = False  # something received is not yet publishable
    awaiting_barrier: bool = False  # ... because it is not yet known durable: a barrier would release it
    sealed: list[str] = field(default_factory=list)  # sessions this rendition has moved past for good
    quarantined: list[tuple[str, int, str]] = field(default_factory=list)  # (session, idx, reason)


@dataclass(kw_only=True)
class _Walk:
    """The running position of one planning pass."""

    msn: int
    prev_end: float | None
    break_next: bool  # the next publication follows filler or a hole: it gets a discontinuity
    published_before: bool


def plan_publications(
    *,
    rendition: RenditionState,
    sessions: Sequence[Session],
    anchors: Mapping[str, float] | None = None,
    durable_before: float = float("inf"),
    now: float,
    gap_timeout_s: float,
    settle_s: float,
    final: bool,
) -> Plan:
    """Plan the next publications of one rendition. `final`: the broadcast is ending, nothing else can arrive.

    `anchors`: session anchors decided earlier in the same pass (not yet folded into `sessions`).
    """
    plan = Plan()
    known = dict(anchors or {})
    last = rendition.last
    walk = _Walk(
        msn=last.msn + 1 if last else 0,
        prev_end=last.end_pdt if last else None,
        break_next=bool(last and last.filler),
        published_before=last is not None,
    )
    order = [s.id for s in sessions]
    start = order.index(last.session) if last and last.session in order else 0
    for session in sessions[start:]:
        if rendition.name in session.sealed:
            continue
        settled = final or (session.ended_at is not None and now - session.ended_at >= settle_s)
        _walk_session(plan, walk, rendition, session, known.get(session.id, session.anchor_pdt), now=now,
                      gap_timeout_s=gap_timeout_s, settled=settled, durable_before=durable_before)  # fmt: skip
        if not settled or plan.waiting:
            break  # a later session must wait until this one can receive nothing more
        plan.sealed.append(session.id)
    return plan


def _walk_session(
    plan: Plan, walk: _Walk, rendition: RenditionState, session: Session, anchor: float | None, *, now: float,
    gap_timeout_s: float, settled: bool, durable_before: float,
) -> None:  # fmt: skip
    segs = rendition.pending.get(session.id, {})
    received = sorted(segs)  # to find the next received index past a gap in O(log n), not a scan per gap
    init = rendition.inits.get(session.id)
    next_idx = rendition.last_real_idx.get(session.id, -1) + 1
    first_in_session = session.id not in rendition.last_real_idx
    while True:
        seg = segs.get(next_idx)
        skip_gap = False
        if seg is None:
            pos = bisect.bisect_right(received, next_idx)
            if pos == len(received):
                return
            later = received[pos]
            if not (settled or now - segs[later].received_at >= gap_timeout_s):
                plan.waiting = True
                return
            plan.skipped.append(Skipped(session=session.id, first=next_idx, last=later - 1))
            seg, skip_gap = segs[later], True
        if seg.spooled or init is None or init.spooled or init.timescale <= 0:
            plan.waiting = True
            return
        if max(seg.received_at, init.received_at) >= durable_before:
            plan.waiting = plan.awaiting_barrier = True
            return
        duration_s = seg.duration_ticks / init.timescale
        base_s = seg.base_ticks / init.timescale
        if not 0 < duration_s <= MAX_SEGMENT_S:
            plan.quarantined.append((session.id, seg.idx, f"duration {duration_s:.3f} s out of range"))
            next_idx = seg.idx + 1
            walk.break_next = True
            continue
        if anchor is None:
            anchor = now - duration_s - base_s
            if walk.prev_end is not None:
                anchor = max(anchor, walk.prev_end - base_s)
            plan.new_anchors[session.id] = anchor
        # PROGRAM-DATE-TIME never goes back (filler or a restart may have run ahead of the session clock).
        pdt = anchor + base_s if walk.prev_end is None else max(anchor + base_s, walk.prev_end)
        discontinuity = skip_gap or walk.break_next or (first_in_session and walk.published_before)
        plan.publications.append(_publication(rendition.name, walk.msn, seg, duration_s, pdt, discontinuity))
        walk.msn += 1
        walk.prev_end = pdt + duration_s
        walk.break_next = False
        walk.published_before = True
        next_idx = seg.idx + 1
        first_in_session = False


def _publication(
    rendition: str, msn: int, seg: StoredObject, duration_s: float, pdt: float, discontinuity: bool
) -> Publication:
    return Publication(
        rendition=rendition,
        msn=msn,
        session=seg.session,
        idx=seg.idx,
        duration_s=duration_s,
        pdt=pdt,
        discontinuity=discontinuity,
        size=seg.size,
        received_at=seg.received_at,
    )


def fillers_due(*, last_end_pdt: float, now: float, segment_s: float, deadline_s: float, max_count: int) -> int:
    """How many filler segments the live edge needs now (the edge advances on a deadline, not on arrival).

    Real segments are published as they arrive, so the edge's end trails `now` by about a segment while the
    source flows; once it trails by more than `deadline_s` the slot is lost to the source and gets filler,
    until the edge is back within the deadline.
    """
    behind = now - last_end_pdt
    if behind < deadline_s or segment_s <= 0:
        return 0
    return min(max_count, int((behind - deadline_s) // segment_s) + 1)
