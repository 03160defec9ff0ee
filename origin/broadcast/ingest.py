"""Ingest: check → store → record. The receiving half of docs/ingest.md, below the HTTP routes.

A segment PUT is inspected (fmp4.py), checked against the room's state (`check_object`, pure), written to
its final storage key (or, when storage fails, to the local spool), and recorded in the room's journal.
The caller then awaits the group commit before it answers 201: the object and its record are durable.
Nothing is stored for a refused request: every check that can refuse runs before the write.

The state checks run twice: once before the write, and again under the journal lock just before the
record is appended, so a publisher's decision in between (a seal, the end) is never missed.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from origin.broadcast import fmp4, inband
from origin.broadcast.model import INIT_INDEX, BroadcastState, EndReason, RenditionSpec, RoomState, StoredObject
from origin.broadcast.records import EndRequested, ObjectStored, Record, SessionEnded, SessionStarted
from origin.broadcast.stores import RoomStores
from origin.contract import ids, layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.contract.ingest import INDEX_LOOKAHEAD_MAX, StartBody
from origin.errors import NotFoundError, RateLimitedError, StateError, StorageError, UnavailableError, ValidationError
from origin.metrics import Metrics

log = logging.getLogger(__name__)

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


# -- pure checks ---------------------------------------------------------------------------------------------


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


def _check_init(info: fmp4.InitInfo, spec: RenditionSpec, room: str) -> None:
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


# -- the service ----------------------------------------------------------------------------------------------


@dataclass(eq=False, kw_only=True)
class IngestService:
    """Blocking calls (storage, journal): the HTTP routes run them in a thread, then await the group commit."""

    stores: RoomStores
    metrics: Metrics
    limits: IngestLimits
    clock: Callable[[], float]
    _inits: _Lru[tuple[str, str, str], fmp4.InitInfo] = field(default_factory=lambda: _Lru(4096), init=False)

    def append_checked(self, room: str, check: Callable[[RoomState], bool], record: Record) -> bool:
        """Append `record` if `check(state)` says so, both under the journal lock (raises what check raises)."""
        with self.stores.journal.locked(room), self.stores.states.hold(room) as state:
            if not check(state):
                return False
            self.stores.journal.append(room, [record])
            return True

    def start(self, room: str, session: str, body: StartBody) -> bool:
        now = self.clock()
        ladder = tuple(
            RenditionSpec(name=r.name, bitrate=r.bitrate, channels=r.channels, sample_rate=r.sample_rate)
            for r in body.renditions
        )
        record = SessionStarted(session=session, at=now, segment_seconds=body.segment_seconds, ladder=ladder,
                                part_seconds=body.part_seconds)  # fmt: skip
        created = self.append_checked(room, lambda st: check_start(st, session, now, self.limits), record)
        log.info("room=%s session=%s %s (%d renditions, %g s segments)", room, session,
                 "started" if created else "re-started", len(ladder), body.segment_seconds)  # fmt: skip
        return created

    def end(self, room: str, session: str, reason: str) -> None:
        now = self.clock()

        def check(state: RoomState) -> bool:
            current = state.sessions.get(session)
            if current is None:
                raise NotFoundError(f"unknown session {session!r}", room=room)
            return current.open

        self.append_checked(room, check, SessionEnded(session=session, at=now, reason=EndReason(reason)))
        log.info("room=%s session=%s ended (%s)", room, session, reason)

    def segment_seconds(self, room: str, session: str) -> float:
        """The session's declared segment length (404 for an unknown session): a stream is cut into these."""
        with self.stores.states.hold(room) as state:
            declared = state.sessions.get(session)
        if declared is None:
            raise NotFoundError(f"unknown session {session!r}: call start first", room=room)
        return declared.segment_seconds

    def request_end(self, room: str) -> bool:
        """Admin end: refuse further ingest; the publisher finalises once the backlog has drained."""
        now = self.clock()

        def check(state: RoomState) -> bool:
            if not state.sessions:
                raise NotFoundError(f"room {room!r} has never broadcast", room=room)
            return state.state in (BroadcastState.IDLE, BroadcastState.LIVE)

        return self.append_checked(room, check, EndRequested(at=now))

    def receive(self, room: str, session: str, rendition: str, name: str, body: bytes) -> Receipt:
        what = parse_object_name(name)
        if what.kind == "playlist":
            return Receipt(stored=False)  # ffmpeg's own playlist: the origin builds its own (docs/ingest.md)
        if what.kind == "segment":
            self._learn_init(room, session, rendition)  # a read-back (storage I/O) never runs inside the hold
        # One hold for the inspection and the checks (a few hundred µs of CPU, no I/O): they read the same state.
        with self.stores.states.hold(room) as state:
            declared = state.sessions.get(session)
            segment_s = declared.segment_seconds if declared is not None else None
            spec = declared.rendition(rendition) if declared is not None else None
            rs = state.renditions.get(rendition)
            init = rs.inits.get(session) if rs is not None else None
            obj, info = self._inspect(room, session, rendition, what, body, init=init, segment_s=segment_s)
            if info is not None and spec is not None:
                _check_init(info, spec, room)
            timescale = init.timescale if init is not None else spec.sample_rate if spec is not None else 0
            if not check_object(state, obj, segment_init=init, now=obj.received_at, limits=self.limits):
                return Receipt(stored=False, segment=not obj.is_init)
            # Speaker turns, chapters, texts due in this segment: ID3 in emsg boxes before its moof.
            obj, metadata = inband.for_segment(state, obj, timescale=timescale, now=self.clock())
        obj = self._store(room, obj, inband.prepend(body, metadata))

        # "Received" is when it is recorded: the publisher compares it with the durability barriers it knows of.
        obj = dataclasses.replace(obj, received_at=self.clock())

        def recheck(st: RoomState) -> bool:
            return check_object(st, obj, segment_init=init, now=obj.received_at, limits=self.limits)

        try:
            self.append_checked(room, recheck, ObjectStored(obj=obj))
        except (StorageError, OSError) as exc:
            # The journal did not answer: the record may have landed (an answer lost on the way back). Deleting
            # the object could leave a playlist naming nothing; unrecorded, it is never named. So it stays.
            log.warning("room=%s %s kept: its record's outcome is unknown: %s", room, object_key(room, obj), exc)
            raise
        except Exception:
            self._discard(room, obj)  # refused between the write and the record: leave nothing behind
            raise
        if info is not None:
            self._inits.put((room, session, rendition), info)
        return Receipt(stored=True, spooled=obj.spooled, segment=not obj.is_init)

    def _inspect(
        self, room: str, session: str, rendition: str, what: ObjectName, body: bytes, *, init: StoredObject | None,
        segment_s: float | None,
    ) -> tuple[StoredObject, fmp4.InitInfo | None]:  # fmt: skip
        """The object's record, and for an init segment what the inspector read from it."""
        now = self.clock()
        if what.kind == "init":
            info = fmp4.inspect_init(body)
            return StoredObject(session=session, rendition=rendition, idx=INIT_INDEX, size=len(body),
                                received_at=now, timescale=info.timescale, track_id=info.track_id), info  # fmt: skip
        known = self._inits.get((room, init.session, init.rendition)) if init is not None else None
        bound = 2 * segment_s + 1.0 if segment_s is not None and known is not None else None
        seg = fmp4.inspect_segment(body, init=known, max_duration_s=bound)
        return StoredObject(session=session, rendition=rendition, idx=what.idx, size=len(body), received_at=now,
                            duration_ticks=seg.duration_ticks, base_ticks=seg.base_decode_time), None  # fmt: skip

    def _learn_init(self, room: str, session: str, rendition: str) -> None:
        """The session's init info in the cache, read back once if another worker received the init."""
        if self._inits.get((room, session, rendition)) is not None:
            return
        with self.stores.states.hold(room) as state:
            rs = state.renditions.get(rendition)
            init = rs.inits.get(session) if rs is not None else None
        if init is not None:
            self.init_info(room, init)

    def init_info(self, room: str, init: StoredObject) -> fmp4.InitInfo | None:
        """The session's init as the inspector needs it: cached, or read back once (another worker got it)."""
        key = (room, init.session, init.rendition)
        info = self._inits.get(key)
        if info is not None:
            return info
        object_key = layout.init_segment(room, init.session, init.rendition)
        try:
            data = self.stores.spool.get(object_key) if init.spooled else self.stores.storage.get(object_key)
            info = fmp4.inspect_init(data)
        except (KeyError, OSError, StorageError, ValidationError) as exc:
            log.warning("room=%s cannot read back init %s: %s", room, object_key, exc)
            return None
        self._inits.put(key, info)
        return info

    def _store(self, room: str, obj: StoredObject, body: bytes) -> StoredObject:
        key = object_key(room, obj)
        kind = ObjectKind.INIT if obj.is_init else ObjectKind.SEGMENT
        try:
            self.stores.storage.put(key, body, headers_for(kind), durable=False)
            return obj
        except StorageError as exc:
            self.metrics.storage_error(self.stores.storage.name, "put")
            log.warning("room=%s %s: storage failed, spooled for retry: %s", room, key, exc)
        self.stores.spool.put(key, body)
        return dataclasses.replace(obj, spooled=True)

    def _discard(self, room: str, obj: StoredObject) -> None:
        key = object_key(room, obj)
        try:
            if obj.spooled:
                self.stores.spool.delete(key)
            else:
                self.stores.storage.delete(key)
        except (OSError, StorageError) as exc:
            log.warning("room=%s could not remove refused object %s: %s", room, key, exc)


def object_key(room: str, obj: StoredObject) -> str:
    if obj.is_init:
        return layout.init_segment(room, obj.session, obj.rendition)
    return layout.media_segment(room, obj.session, obj.rendition, obj.idx)


K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V | None) -> None:
        if value is None:
            return
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class Receipt(NamedTuple):
    stored: bool  # False: ffmpeg's playlist (dropped) or an identical repeat
    spooled: bool = False
    segment: bool = False
