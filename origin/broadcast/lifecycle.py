"""The broadcast's rules as pure functions: fold a journal record into the room state, and the timeouts.

    idle ──start──▶ live ──admin end / no session for end_grace──▶ ending ──backlog drained──▶ ended

A new session supersedes the open one (it is ended at the newcomer's start). A session ends on its end
call, its successor's start, the admin end, or `session_timeout_s` without a PUT. Nothing here reads a clock
or touches storage: `now` is an argument and the result is records for the journal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from origin.broadcast.model import BroadcastState, EndReason, RoomState, Session, StoredObject, StoredPart
from origin.broadcast.records import (
    AnchorSet,
    DownloadBuilt,
    EndRequested,
    MasterWritten,
    ObjectStored,
    ObjectUploaded,
    PartStored,
    Published,
    Quarantined,
    Record,
    Sealed,
    SessionEnded,
    SessionStarted,
    StateChanged,
)


@dataclass(frozen=True, kw_only=True)
class LifecyclePolicy:
    session_timeout_s: float = 10.0
    end_grace_s: float = 120.0


def apply(state: RoomState, record: Record) -> None:
    """Fold one record into `state` (in place: the fold runs on every request, so no copies)."""
    state.records += 1
    match record:
        case ObjectStored():
            _stored(state, record)
        case PartStored(part=part):
            _part(state, part)
        case Published(publications=pubs):
            for p in pubs:
                rs = state.rendition(p.rendition)
                rs.parts.pop((p.session, p.idx), None)
                rs.tail.append(p)
                rs.published += 1
                rs.discontinuities += p.discontinuity
                if not p.filler:
                    rs.pending.get(p.session, {}).pop(p.idx, None)
                    rs.last_real_idx[p.session] = p.idx
                    rs.longest_s = max(rs.longest_s, p.duration_s)
                    rs.peak_bps = max(rs.peak_bps, p.size * 8 / p.duration_s)
                    rs.bytes_total += p.size
                    rs.seconds_total += p.duration_s
        case SessionStarted():
            _started(state, record)
        case SessionEnded():
            session = state.sessions.get(record.session)
            if session is not None and session.open:
                session.ended_at, session.end_reason = record.at, record.reason
        case EndRequested(at=at):
            for s in state.sessions.values():
                if s.open:
                    s.ended_at, s.end_reason = at, EndReason.BROADCAST_END
            if state.state in (BroadcastState.IDLE, BroadcastState.LIVE):
                _set_state(state, BroadcastState.ENDING, at)
        case ObjectUploaded():
            key = (record.session, record.rendition, record.idx)
            spooled = state.spooled.pop(key, None)
            if spooled is not None:
                _replace_stored(state, dataclasses.replace(spooled, spooled=False))
        case AnchorSet():
            session = state.sessions.get(record.session)
            if session is not None and session.anchor_pdt is None:
                session.anchor_pdt = record.pdt
        case Sealed():
            session = state.sessions.get(record.session)
            if session is not None:
                session.sealed.add(record.rendition)
                state.rendition(record.rendition).pending.pop(record.session, None)  # can never be published now
        case StateChanged():
            _set_state(state, record.state, record.at)
        case Quarantined():
            state.rendition(record.rendition).pending.get(record.session, {}).pop(record.idx, None)
            state.quarantined += 1
        case MasterWritten(renditions=renditions):
            state.master = renditions
        case DownloadBuilt(size=size):
            state.download_bytes = size
        case _:  # pragma: no cover - the Record union is exhaustive
            raise TypeError(f"unknown record {record!r}")


def _set_state(state: RoomState, new: BroadcastState, at: float) -> None:
    state.state = new
    state.changed_at = at
    if new is BroadcastState.LIVE and state.started_at is None:
        state.started_at = at
    if new is BroadcastState.ENDED:
        state.ended_at = at


def _started(state: RoomState, record: SessionStarted) -> None:
    if record.session in state.sessions or state.state in (BroadcastState.ENDING, BroadcastState.ENDED):
        return
    for s in state.sessions.values():
        if s.open:
            s.ended_at, s.end_reason = record.at, EndReason.SUPERSEDED
    state.sessions[record.session] = Session(
        id=record.session,
        ordinal=len(state.sessions) + 1,
        started_at=record.at,
        segment_seconds=record.segment_seconds,
        ladder=record.ladder,
        last_activity_at=record.at,
        part_seconds=record.part_seconds,
    )
    if state.state is BroadcastState.IDLE:
        _set_state(state, BroadcastState.LIVE, record.at)


def _stored(state: RoomState, record: ObjectStored) -> None:
    obj = record.obj
    session = state.sessions.get(obj.session)
    if session is None:
        return
    session.last_activity_at = max(session.last_activity_at, obj.received_at)
    if obj.spooled:
        state.spooled[(obj.session, obj.rendition, obj.idx)] = obj
    if not obj.is_init:
        if obj.idx > session.max_index.get(obj.rendition, -1):
            session.max_index[obj.rendition] = obj.idx
            session.max_end_ticks[obj.rendition] = obj.base_ticks + obj.duration_ticks
        session.first_base.setdefault(obj.rendition, (obj.idx, obj.base_ticks))
    _replace_stored(state, obj)


def _part(state: RoomState, part: StoredPart) -> None:
    session = state.sessions.get(part.session)
    rs = state.rendition(part.rendition)
    if session is None or part.rendition in session.sealed or part.idx <= rs.last_real_idx.get(part.session, -1):
        return
    session.last_activity_at = max(session.last_activity_at, part.received_at)
    parts = rs.parts.setdefault((part.session, part.idx), [])
    if part.part == len(parts):  # parts arrive in order on one stream; anything else is a repeat
        parts.append(part)
        rs.longest_part_s = max(rs.longest_part_s, part.duration_s)


def _replace_stored(state: RoomState, obj: StoredObject) -> None:
    """Put `obj` (possibly with a new spool flag) where the rendition state keeps it."""
    rs = state.rendition(obj.rendition)
    if obj.is_init:
        rs.inits[obj.session] = obj
        return
    session = state.sessions[obj.session]
    if obj.rendition in session.sealed or obj.idx <= rs.last_real_idx.get(obj.session, -1):
        return  # already published, skipped or sealed: never again
    rs.pending.setdefault(obj.session, {})[obj.idx] = obj


def expire(state: RoomState, now: float, policy: LifecyclePolicy) -> list[Record]:
    """Session timeouts and the end of the broadcast after the grace period, as records to append."""
    if state.state is not BroadcastState.LIVE:
        return []
    out: list[Record] = []
    for s in state.sessions.values():
        if s.open and now - s.last_activity_at >= policy.session_timeout_s:
            out.append(SessionEnded(session=s.id, at=now, reason=EndReason.TIMEOUT))
    timed_out = {r.session for r in out if isinstance(r, SessionEnded)}
    if state.sessions and not any(s.open and s.id not in timed_out for s in state.sessions.values()):
        last_end = max(s.ended_at if s.ended_at is not None else now for s in state.sessions.values())
        if now - last_end >= policy.end_grace_s:
            out.append(StateChanged(state=BroadcastState.ENDING, at=now))
    return out
