"""Journal records: every fact about a room's broadcast, as one JSON line each (pure).

Ingest (any worker) appends what arrived: a session started or ended, an object stored, an end requested.
The room's publisher (one owner at a time) appends what it decided: publications, anchors, seals, state
changes. `lifecycle.apply` folds them, in journal order, into a `RoomState`.

Lines are short JSON arrays, `[kind, ...fields]`: an array costs a third of the parse time of an object
(this journal is read on every ingest request and every publish pass). `encode` and `decode` are the only
code that knows the positions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, dataclass_transform

from origin.broadcast.model import BroadcastState, EndReason, Publication, RenditionSpec, StoredObject, StoredPart
from origin.broadcast.timed import EventKind, TimedEvent
from origin.errors import OriginError


class JournalError(OriginError):
    """A journal line that cannot be decoded (a torn write, or a file that is not ours)."""


@dataclass_transform(kw_only_default=True, frozen_default=True)
class _Record:
    """What every journal record is: a frozen, keyword-only dataclass (each subclass is made one as it is defined)."""

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        dataclass(frozen=True, kw_only=True)(cls)


class SessionStarted(_Record):
    session: str
    at: float
    segment_seconds: float
    ladder: tuple[RenditionSpec, ...]
    part_seconds: float | None = None


class ObjectStored(_Record):
    obj: StoredObject


class PartStored(_Record):
    part: StoredPart


class SessionEnded(_Record):
    session: str
    at: float
    reason: EndReason


class EndRequested(_Record):
    at: float


class ObjectUploaded(_Record):
    session: str
    rendition: str
    idx: int


class Published(_Record):
    publications: tuple[Publication, ...]


class AnchorSet(_Record):
    session: str
    pdt: float


class Sealed(_Record):
    session: str
    rendition: str


class StateChanged(_Record):
    state: BroadcastState
    at: float


class Quarantined(_Record):
    session: str
    rendition: str
    idx: int
    reason: str


class MasterWritten(_Record):
    renditions: tuple[str, ...]


class DownloadBuilt(_Record):
    size: int


class TimedEventRecorded(_Record):
    """A speaker turn, chapter or text opened; or (same id, `end` set) a turn closed."""

    event: TimedEvent


Record = (
    SessionStarted
    | ObjectStored
    | PartStored
    | SessionEnded
    | EndRequested
    | ObjectUploaded
    | Published
    | AnchorSet
    | Sealed
    | StateChanged
    | Quarantined
    | MasterWritten
    | DownloadBuilt
    | TimedEventRecorded
)


def _publication(p: Publication) -> list[Any]:
    out = [p.rendition, p.msn, p.session, p.idx, p.duration_s, p.pdt, int(p.discontinuity), p.size,
           p.received_at, int(p.filler)]  # fmt: skip
    if p.parts:
        out.append(list(p.parts))
    return out


def _fields(record: Record) -> list[Any]:
    match record:
        case ObjectStored(obj=o):
            out = ["o", o.session, o.rendition, o.idx, o.size, o.received_at, int(o.spooled), o.duration_ticks,
                   o.base_ticks, o.timescale, o.track_id]  # fmt: skip
            return [*out, o.cue_count, o.cue_until] if o.cue_count else out
        case Published(publications=pubs):
            return ["p", [_publication(p) for p in pubs]]
        case SessionStarted():
            ladder = [[r.name, r.bitrate, r.channels, r.sample_rate] for r in record.ladder]
            fields = ["s", record.session, record.at, record.segment_seconds, ladder]
            return [*fields, record.part_seconds] if record.part_seconds is not None else fields
        case PartStored(part=t):
            return ["P", t.session, t.rendition, t.idx, t.part, t.duration_s, t.size, t.received_at]
        case SessionEnded():
            return ["e", record.session, record.at, record.reason.value]
        case EndRequested():
            return ["E", record.at]
        case ObjectUploaded():
            return ["u", record.session, record.rendition, record.idx]
        case AnchorSet():
            return ["a", record.session, record.pdt]
        case Sealed():
            return ["S", record.session, record.rendition]
        case StateChanged():
            return ["b", record.state.value, record.at]
        case Quarantined():
            return ["q", record.session, record.rendition, record.idx, record.reason]
        case MasterWritten():
            return ["m", list(record.renditions)]
        case DownloadBuilt():
            return ["d", record.size]
        case TimedEventRecorded(event=e):
            return ["t", e.kind.value, e.id, e.start, e.end, e.speaker, e.title, e.text]


def encode(record: Record) -> bytes:
    """One journal line, newline included."""
    return json.dumps(_fields(record), separators=(",", ":")).encode() + b"\n"


def encode_all(records: Sequence[Record]) -> bytes:
    return b"".join(encode(r) for r in records)


def _decode_publication(f: list[Any]) -> Publication:
    return Publication(rendition=f[0], msn=f[1], session=f[2], idx=f[3], duration_s=f[4], pdt=f[5],
                       discontinuity=bool(f[6]), size=f[7], received_at=f[8], filler=bool(f[9]),
                       parts=tuple(float(d) for d in f[10]) if len(f) > 10 else ())  # fmt: skip


def _decode(f: list[Any]) -> Record:
    kind = f[0]
    if kind == "o":
        obj = StoredObject(session=f[1], rendition=f[2], idx=f[3], size=f[4], received_at=f[5], spooled=bool(f[6]),
                           duration_ticks=f[7], base_ticks=f[8], timescale=f[9], track_id=f[10],
                           cue_count=f[11] if len(f) > 12 else 0, cue_until=f[12] if len(f) > 12 else 0.0)  # fmt: skip
        return ObjectStored(obj=obj)
    if kind == "p":
        return Published(publications=tuple(_decode_publication(p) for p in f[1]))
    if kind == "s":
        ladder = tuple(RenditionSpec(name=n, bitrate=b, channels=c, sample_rate=r) for n, b, c, r in f[4])
        return SessionStarted(session=f[1], at=f[2], segment_seconds=f[3], ladder=ladder,
                              part_seconds=f[5] if len(f) > 5 else None)  # fmt: skip
    if kind == "P":
        return PartStored(part=StoredPart(session=f[1], rendition=f[2], idx=f[3], part=f[4], duration_s=f[5],
                                          size=f[6], received_at=f[7]))  # fmt: skip
    if kind == "e":
        return SessionEnded(session=f[1], at=f[2], reason=EndReason(f[3]))
    if kind == "E":
        return EndRequested(at=f[1])
    if kind == "u":
        return ObjectUploaded(session=f[1], rendition=f[2], idx=f[3])
    if kind == "a":
        return AnchorSet(session=f[1], pdt=f[2])
    if kind == "S":
        return Sealed(session=f[1], rendition=f[2])
    if kind == "b":
        return StateChanged(state=BroadcastState(f[1]), at=f[2])
    if kind == "q":
        return Quarantined(session=f[1], rendition=f[2], idx=f[3], reason=f[4])
    if kind == "m":
        return MasterWritten(renditions=tuple(f[1]))
    if kind == "d":
        return DownloadBuilt(size=f[1])
    if kind == "t":
        return TimedEventRecorded(event=TimedEvent(kind=EventKind(f[1]), id=f[2], start=float(f[3]),
                                                   end=None if f[4] is None else float(f[4]), speaker=f[5],
                                                   title=f[6], text=f[7]))  # fmt: skip
    raise JournalError(f"unknown journal record kind {kind!r}")


def decode(line: bytes) -> Record:
    """The record of one journal line. Raises JournalError for anything else."""
    try:
        fields = json.loads(line)
        if not isinstance(fields, list) or not fields:
            raise JournalError("journal line is not a record")
        return _decode(fields)
    except JournalError:
        raise
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise JournalError(f"malformed journal line ({exc}): {line[:120]!r}") from exc
