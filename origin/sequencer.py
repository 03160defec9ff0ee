"""Pure decision: which received segments of a rendition become published, in which order.

Rules (docs/ingest.md, "Ordering guarantees"):
- sessions are published in the order they started; within a session, in segment index order;
- a segment is published only once it and its session's init are durable in storage ("uploaded");
- a *missing* index (never received) is skipped, with a discontinuity, once a later segment of the same
  session has waited `gap_timeout_s`, or once the session has ended and settled; a segment that was
  received but is not yet uploaded is never skipped: the playlist waits (delayed, not wrong);
- the first segment of every session after the first gets EXT-X-DISCONTINUITY;
- media sequence numbers continue from the last published one, across sessions;
- PROGRAM-DATE-TIME = session anchor + the segment's decode time; the anchor is set from the wall clock
  when a session's first segment is published and never goes before the previous session's end.
Time is an argument; nothing here reads a clock or touches storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class SessionView:
    id: str
    ended_at: float | None  # epoch seconds; None while open
    anchor_pdt: float | None  # epoch seconds of decode time 0, once known (shared by renditions)


@dataclass(frozen=True, kw_only=True)
class ReceivedSegment:
    idx: int
    uploaded: bool
    received_at: float
    duration_s: float
    base_time_s: float  # tfdt decode time of the first sample, seconds
    size_bytes: int


@dataclass(frozen=True, kw_only=True)
class Cursor:
    """The last segment published for the rendition."""

    session: str
    idx: int  # last transcoder segment of `session` published (-1: only fillers so far)
    media_sequence: int  # last media sequence number published (fillers included)
    end_pdt: float  # PROGRAM-DATE-TIME of the end of the last published segment, epoch seconds
    after_filler: bool = False  # the last published segment was origin-made filler


@dataclass(frozen=True, kw_only=True)
class Publication:
    session: str
    idx: int
    media_sequence: int
    duration_s: float
    pdt: float
    discontinuity: bool
    size_bytes: int


@dataclass(kw_only=True)
class Plan:
    publications: list[Publication] = field(default_factory=list)
    new_anchors: dict[str, float] = field(default_factory=dict)
    skipped: list[tuple[str, int]] = field(default_factory=list)  # (session, missing index)
    waiting: bool = False  # something received is not yet publishable
    sealed: list[str] = field(default_factory=list)  # sessions this rendition has moved past for good


def plan_publications(
    *,
    sessions: Sequence[SessionView],
    pending: Mapping[str, Mapping[int, ReceivedSegment]],
    init_uploaded: frozenset[str],
    cursor: Cursor | None,
    now: float,
    gap_timeout_s: float,
    settle_s: float,
    final: bool,
) -> Plan:
    """Plan the next publications of one rendition.

    `sessions` in start order; `pending` maps session → index → received-but-unpublished segments of
    this rendition; `final` means the broadcast is ending: nothing else can arrive.
    """
    plan = Plan()
    anchors = {s.id: s.anchor_pdt for s in sessions}
    order = [s.id for s in sessions]
    start = order.index(cursor.session) if cursor and cursor.session in order else 0
    msn = cursor.media_sequence + 1 if cursor else 0
    prev_end = cursor.end_pdt if cursor else None
    for pos in range(start, len(sessions)):
        session = sessions[pos]
        same_as_cursor = cursor is not None and cursor.session == session.id
        next_idx = cursor.idx + 1 if cursor is not None and same_as_cursor else 0
        first_in_session = not same_as_cursor
        segs = pending.get(session.id, {})
        settled = final or (session.ended_at is not None and now - session.ended_at >= settle_s)
        while True:
            seg = segs.get(next_idx)
            skip_gap = False
            if seg is None:
                later = sorted(i for i in segs if i > next_idx)
                if not later:
                    break
                first_later = segs[later[0]]
                if not (settled or now - first_later.received_at >= gap_timeout_s):
                    plan.waiting = True
                    break
                plan.skipped.extend((session.id, i) for i in range(next_idx, later[0]))
                seg = first_later
                skip_gap = True
            if not seg.uploaded or session.id not in init_uploaded:
                plan.waiting = True
                break
            anchor = anchors.get(session.id)
            if anchor is None:
                anchor = now - seg.duration_s - seg.base_time_s
                if prev_end is not None:
                    anchor = max(anchor, prev_end - seg.base_time_s)
                anchors[session.id] = anchor
                plan.new_anchors[session.id] = anchor
            # PROGRAM-DATE-TIME never goes back (fillers or a restart may have run ahead of the session clock).
            pdt = anchor + seg.base_time_s if prev_end is None else max(anchor + seg.base_time_s, prev_end)
            resumed = cursor is not None and cursor.after_filler and plan.publications == []
            discontinuity = (
                skip_gap or resumed or (first_in_session and (cursor is not None or plan.publications != []))
            )
            plan.publications.append(
                Publication(
                    session=session.id,
                    idx=seg.idx,
                    media_sequence=msn,
                    duration_s=seg.duration_s,
                    pdt=pdt,
                    discontinuity=discontinuity,
                    size_bytes=seg.size_bytes,
                )
            )
            msn += 1
            prev_end = pdt + seg.duration_s
            next_idx = seg.idx + 1
            first_in_session = False
        if not settled or plan.waiting:
            # A later session must wait until this one can receive nothing more.
            break
        plan.sealed.append(session.id)
    return plan


def fillers_needed(*, last_end_pdt: float, now: float, segment_s: float, lag_s: float, max_count: int) -> int:
    """How many filler segments bring the published edge back within `lag_s` of the wall clock.

    Real segments are published as they arrive, so the edge trails `now` by less than a segment while the
    source flows; past `lag_s` (1.5 segments by default) the source is gone and listeners need filler.
    """
    behind = now - last_end_pdt
    if behind < lag_s or segment_s <= 0:
        return 0
    return min(max_count, int((behind - lag_s) // segment_s) + 1)
