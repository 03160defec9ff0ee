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
from typing import Any

from origin.broadcast.model import BroadcastState, EndReason, Publication, RenditionSpec, StoredObject, StoredPart
from origin.errors import OriginError


class JournalError(OriginError):
    """A journal line that cannot be decoded (a torn write, or a file that is not ours)."""


@dataclass(frozen=True, kw_only=True)
class SessionStarted:
    session: str
    at: float
    segment_seconds: float
    ladder: tuple[RenditionSpec, ...]
    part_seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class ObjectStored:
    obj: StoredObject


@dataclass(frozen=True, kw_only=True)
class PartStored:
    part: StoredPart


@dataclass(frozen=True, kw_only=True)
class SessionEnded:
    session: str
    at: float
    reason: EndReason


@dataclass(frozen=True, kw_only=True)
class EndRequested:
    at: float


@dataclass(frozen=True, kw_only=True)
class ObjectUploaded:
    session: str
    rendition: str
    idx: int


@dataclass(frozen=True, kw_only=True)
class Published:
    publications: tuple[Publication, ...]


@dataclass(frozen=True, kw_only=True)
class AnchorSet:
    session: str
    pdt: float


@dataclass(frozen=True, kw_only=True)
class Sealed:
    session: str
    rendition: str


@dataclass(frozen=True, kw_only=True)
class StateChanged:
    state: BroadcastState
    at: float


@dataclass(frozen=True, kw_only=True)
class Quarantined:
    session: str
    rendition: str
    idx: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class MasterWritten:
    renditions: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class DownloadBuilt:
    size: int


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
            return ["o", o.session, o.rendition, o.idx, o.size, o.received_at, int(o.spooled), o.duration_ticks,
                    o.base_ticks, o.timescale, o.track_id]  # fmt: skip
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
                           duration_ticks=f[7], base_ticks=f[8], timescale=f[9], track_id=f[10])  # fmt: skip
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
