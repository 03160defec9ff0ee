"""Ingest: check → store → record. The receiving half of docs/ingest.md, below the HTTP routes.

A segment PUT is inspected (fmp4.py), checked against the room's state (ingest_checks.py, pure), written to
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from origin.broadcast import fmp4, inband
from origin.broadcast.ingest_checks import (
    IngestLimits,
    ObjectName,
    check_init,
    check_object,
    check_start,
    parse_object_name,
)
from origin.broadcast.model import INIT_INDEX, BroadcastState, EndReason, RenditionSpec, RoomState, StoredObject
from origin.broadcast.records import EndRequested, ObjectStored, Record, SessionEnded, SessionStarted
from origin.broadcast.stores import RoomStores
from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.contract.ingest import StartBody
from origin.errors import NotFoundError, OriginError, StorageError, ValidationError
from origin.metrics import Metrics

__all__ = ["IngestLimits", "IngestService", "Receipt", "object_key", "parse_object_name"]

log = logging.getLogger(__name__)


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
        return bool(self.append_passing(room, lambda state: [record] if check(state) else []))

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
        receipts, refusal = self.receive_all(room, session, what, [(rendition, body)])
        if refusal is not None:
            raise refusal
        return receipts[0]

    def receive_all(
        self, room: str, session: str, what: ObjectName, pieces: Sequence[tuple[str, bytes]]
    ) -> tuple[list[Receipt], OriginError | None]:
        """Object `what` of each (rendition, body), in order, each checked as its own PUT would be, up to the first
        refusal; what passed is stored and recorded in one journal append (a wave: one hold and one append for
        the ladder, not one per rendition). Returns the receipts of the pieces before the refusal, and the refusal.
        An error of the journal or the spool is raised."""
        if what.kind == "segment":
            for rendition, _ in pieces:
                self._learn_init(room, session, rendition)  # a read-back (storage I/O) never runs inside the hold
        checked: list[_Checked | None] = []  # None: an identical repeat
        refusal: OriginError | None = None
        # One hold for the inspections and the checks (a few hundred µs of CPU, no I/O): they read the same state.
        with self.stores.states.hold(room) as state:
            for rendition, body in pieces:
                try:
                    checked.append(self._check(state, session, rendition, what, body))
                except OriginError as exc:
                    refusal = exc
                    break
        kept: list[_Checked] = []
        try:
            for c in checked:
                if c is not None:
                    kept.append(c._replace(obj=self._store(room, c.obj, c.body)))
        except Exception:
            self._discard_all(room, kept)
            raise
        # "Received" is when it is recorded: the publisher compares it with the durability barriers it knows of.
        now = self.clock()
        kept = [c._replace(obj=dataclasses.replace(c.obj, received_at=now)) for c in kept]

        def recheck(st: RoomState) -> list[Record]:
            return [ObjectStored(obj=c.obj) for c in kept
                    if check_object(st, c.obj, segment_init=c.init, now=now, limits=self.limits)]  # fmt: skip

        if kept:
            try:
                self.append_passing(room, recheck)
            except (StorageError, OSError) as exc:
                # The journal did not answer: the records may have landed (an answer lost on the way back).
                # Deleting the objects could leave a playlist naming nothing; unrecorded, they are never named.
                log.warning("room=%s %s kept: their record's outcome is unknown: %s", room,
                            ", ".join(object_key(room, c.obj) for c in kept), exc)  # fmt: skip
                raise
            except Exception:
                self._discard_all(room, kept)  # refused between the write and the record: leave nothing behind
                raise
        for c in kept:
            if c.info is not None:
                self._inits.put((room, session, c.obj.rendition), c.info)
        spooled = {c.obj.rendition: c.obj.spooled for c in kept}  # a wave names each rendition once
        segment = what.kind == "segment"
        return [Receipt(stored=c is not None, spooled=c is not None and spooled[c.obj.rendition], segment=segment)
                for c in checked], refusal  # fmt: skip

    def append_passing(self, room: str, records: Callable[[RoomState], list[Record]]) -> list[Record]:
        """Append what `records(state)` returns (and return it), both under the journal lock (raises what it
        raises)."""
        with self.stores.journal.locked(room), self.stores.states.hold(room) as state:
            passing = records(state)
            if passing:
                self.stores.journal.append(room, passing)
            return passing

    def _check(self, state: RoomState, session: str, rendition: str, what: ObjectName, body: bytes) -> _Checked | None:
        """Inspect and check one object against the held state — None for an identical repeat. Raises a
        refusal."""
        room = state.room
        declared = state.sessions.get(session)
        segment_s = declared.segment_seconds if declared is not None else None
        spec = declared.rendition(rendition) if declared is not None else None
        rs = state.renditions.get(rendition)
        init = rs.inits.get(session) if rs is not None else None
        obj, info = self._inspect(room, session, rendition, what, body, init=init, segment_s=segment_s)
        if info is not None and spec is not None:
            check_init(info, spec, room)
        timescale = init.timescale if init is not None else spec.sample_rate if spec is not None else 0
        if not check_object(state, obj, segment_init=init, now=obj.received_at, limits=self.limits):
            return None
        # Speaker turns, chapters, texts due in this segment: ID3 in emsg boxes before its moof.
        obj, metadata = inband.for_segment(state, obj, timescale=timescale, now=self.clock())
        return _Checked(obj=obj, init=init, info=info, body=inband.prepend(body, metadata))

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

    def _discard_all(self, room: str, written: list[_Checked]) -> None:
        for c in written:
            self._discard(room, c.obj)

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


class _Checked(NamedTuple):
    """An object that passed its checks: its record, the session's init, what the inspector read from an init,
    and the bytes to store."""

    obj: StoredObject
    init: StoredObject | None
    info: fmp4.InitInfo | None
    body: bytes


class Receipt(NamedTuple):
    stored: bool  # False: ffmpeg's playlist (dropped) or an identical repeat
    spooled: bool = False
    segment: bool = False
