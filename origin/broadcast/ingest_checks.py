"""Ingest's pure checks (docs/ingest.md): what an object's name is, whether a start opens a session, whether an
object may be stored — against the room's state, with no I/O. broadcast/ingest.py runs them twice per object:
before the write, and again under the journal lock just before the record is appended.
"""

from __future__ import annotations

from dataclasses import dataclass

from origin.broadcast import fmp4
from origin.broadcast.model import INIT_INDEX, BroadcastState, RenditionSpec, RoomState, StoredObject
from origin.contract import ids
from origin.contract.ingest import INDEX_LOOKAHEAD_MAX
from origin.errors import NotFoundError, RateLimitedError, StateError, UnavailableError, ValidationError

# A session's PUTs may still be in flight when its end call (or its successor's start) arrives.
ACCEPT_AFTER_END_S = 5.0
# How far a segment's decode time may run ahead of its index (× segment length, plus a margin): a bound that
# keeps PROGRAM-DATE-TIME arithmetic in range whatever a client claims.
DECODE_AHEAD_FACTOR = 4.0
DECODE_AHEAD_MARGIN_S = 600.0


@dataclass(frozen=True, kw_only=True)
class IngestLimits:
    max_backlog: int = 3000  # objects per room waiting in the spool before ingest answers 503
    sessions_per_minute: int = 12  # session starts per room per rolling minute
    index_lookahead: int = INDEX_LOOKAHEAD_MAX
    accept_after_end_s: float = ACCEPT_AFTER_END_S


@dataclass(frozen=True, kw_only=True)
class ObjectName:
    kind: str  # "init", "segment" or "playlist"
    idx: int


def parse_object_name(name: str) -> ObjectName:
    """`000042.m4s`, `init.mp4` / `init_0.mp4`, or ffmpeg's own `index.m3u8` (accepted and dropped)."""
    if ids.PLAYLIST_NAME_PATTERN.fullmatch(name):
        return ObjectName(kind="playlist", idx=INIT_INDEX)
    seg = ids.SEGMENT_NAME_PATTERN.fullmatch(name)
    if seg:
        return ObjectName(kind="segment", idx=int(seg.group(1)))
    if ids.INIT_NAME_PATTERN.fullmatch(name):
        return ObjectName(kind="init", idx=INIT_INDEX)
    raise ValidationError(f"unexpected object name {name[:64]!r}: expected NNNNNN.m4s, init[_N].mp4 or a .m3u8")


def check_start(state: RoomState, session: str, now: float, limits: IngestLimits) -> bool:
    """Whether `start` opens a new session (False: an idempotent repeat). Raises for a refused start."""
    if state.state in (BroadcastState.ENDING, BroadcastState.ENDED):
        raise StateError(f"room {state.room!r} broadcast has ended", room=state.room)
    existing = state.sessions.get(session)
    if existing is not None:
        if not existing.open:
            raise StateError(f"session {session!r} already ended; use a new session id", room=state.room)
        return False
    recent = sum(1 for s in state.sessions.values() if now - s.started_at < 60.0)
    if recent >= limits.sessions_per_minute:
        raise RateLimitedError(
            f"{recent} sessions started in the last minute (limit {limits.sessions_per_minute}): the transcoder is"
            " restarting in a loop",
            retry_after_s=10.0,
            room=state.room,
        )
    return True


def check_object(
    state: RoomState, obj: StoredObject, *, segment_init: StoredObject | None, now: float, limits: IngestLimits
) -> bool:
    """Whether `obj` should be stored and recorded (False: an identical repeat, already recorded).

    Raises NotFoundError (404), StateError (409), ValidationError (400) or UnavailableError (503).
    """
    room = state.room
    session = state.sessions.get(obj.session)
    if session is None:
        raise NotFoundError(f"unknown session {obj.session!r}: call start first", room=room)
    spec = session.rendition(obj.rendition)
    if spec is None:
        raise NotFoundError(f"rendition {obj.rendition!r} not declared by session {obj.session!r}", room=room)
    if state.state in (BroadcastState.ENDING, BroadcastState.ENDED):
        raise StateError(f"room {room!r} broadcast has ended", room=room)
    ended_long_ago = session.ended_at is not None and now - session.ended_at > limits.accept_after_end_s
    if ended_long_ago or obj.rendition in session.sealed:
        raise StateError(f"session {obj.session!r} has ended", room=room)
    if len(state.spooled) >= limits.max_backlog:
        raise UnavailableError(
            f"storage retry backlog full ({len(state.spooled)} objects waiting): storage is failing", room=room
        )
    rs = state.renditions.get(obj.rendition)
    if obj.is_init:
        published = rs is not None and obj.session in rs.last_real_idx
        prior = rs.inits.get(obj.session) if rs is not None else None
        if prior is not None and prior.size == obj.size:
            return False
        if published:
            raise StateError("init segment replaced after segments using it were published", room=room)
        return True
    # ffmpeg sends a session's first segment right after its init without waiting for the init's answer, so
    # the init may not be recorded yet: check against the declared sample rate (AAC's usual timescale); the
    # sequencer publishes nothing of the session before its init is durable.
    timescale = segment_init.timescale if segment_init is not None else spec.sample_rate
    highest = session.max_index.get(obj.rendition, -1)
    if obj.idx > highest + limits.index_lookahead:
        raise ValidationError(
            f"segment index {obj.idx} is more than {limits.index_lookahead} past the session's last ({highest})",
            room=room,
        )
    if rs is not None:
        if obj.idx <= rs.last_real_idx.get(obj.session, -1):
            prior_size = next((p.size for p in rs.tail if p.session == obj.session and p.idx == obj.idx), None)
            if prior_size == obj.size:
                return False
            raise StateError(f"{obj.session}/{obj.rendition}/{obj.idx} was already published; names are immutable",
                             room=room)  # fmt: skip
        pending = rs.pending.get(obj.session, {}).get(obj.idx)
        if pending is not None:
            if pending.size == obj.size:
                return False
            raise StateError(f"{obj.session}/{obj.rendition}/{obj.idx} is already stored; names are immutable",
                             room=room)  # fmt: skip
    _check_timeline(session.segment_seconds, session.first_base.get(obj.rendition), highest,
                    session.max_end_ticks.get(obj.rendition), obj, timescale, room)  # fmt: skip
    return True


def check_init(info: fmp4.InitInfo, spec: RenditionSpec, room: str) -> None:
    if (info.channels, info.sample_rate) != (spec.channels, spec.sample_rate):
        raise ValidationError(
            f"init segment is {info.channels} ch at {info.sample_rate} Hz; the session declared {spec.channels} ch"
            f" at {spec.sample_rate} Hz for {spec.name}",
            room=room,
        )


def _check_timeline(
    segment_s: float, first: tuple[int, int] | None, highest: int, highest_end: int | None, obj: StoredObject,
    timescale: int, room: str,
) -> None:  # fmt: skip
    """Decode times move forward with the index, and never run absurdly ahead of it."""
    duration_s = obj.duration_ticks / timescale
    if not 0 < duration_s <= 2 * segment_s + 1.0:
        raise ValidationError(f"segment lasts {duration_s:.3f} s; the session declared {segment_s:g} s segments",
                              room=room)  # fmt: skip
    if first is None:
        return
    first_idx, first_base = first
    ahead_s = (obj.base_ticks - first_base) / timescale
    allowed_s = (abs(obj.idx - first_idx) + 1) * segment_s * DECODE_AHEAD_FACTOR + DECODE_AHEAD_MARGIN_S
    if abs(ahead_s) > allowed_s:
        raise ValidationError(f"decode time {ahead_s:.1f} s from the session's first segment is implausible for "
                              f"index {obj.idx}", room=room)  # fmt: skip
    tolerance = timescale // 20  # 50 ms: encoders may start a segment a frame early
    if highest_end is not None and obj.idx > highest and obj.base_ticks < highest_end - tolerance:
        raise ValidationError(f"segment {obj.idx} decodes before the end of segment {highest}: decode times must"
                              " increase", room=room)  # fmt: skip
