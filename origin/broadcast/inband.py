"""In-band timed metadata (pure): speaker turns, chapters and texts as ID3 in `emsg` boxes inside the segments.

Scheme `https://aomedia.org/emsg/ID3` (AOM "Carriage of ID3 Timed Metadata in CMAF"): a version 1 emsg
(ISO/IEC 23009-1 §5.10.3.3) whose presentation_time is on the track's own timeline (the tfdt's timescale)
and whose message_data is one ID3v2.4 tag. Players that read in-band metadata (hls.js, Safari) get each cue
at its sample.

Where: a segment is written once, straight to its final key at ingest, and a cue usually arrives while the
segment that contains its time is still being encoded. So each media segment is given, as it is received,
every cue that falls in it and every cue that arrived too late for the segment it belongs to (those are
clamped to this segment's first sample: the in-band timing error is how late the cue was, bounded by
LATE_CARRY_MAX_S; the EXT-X-DATERANGE in the playlists is exact). The emsg boxes go first (after a styp),
before any sidx/moof: moof-relative data offsets and sidx offsets (relative to the sidx's end) stay valid.

The segment's PROGRAM-DATE-TIME is not decided yet at ingest; `predict_pdt` computes it as the sequencer will
(sequencer.py): anchor + decode time, never before the previous publication's end; a session's first segment
is anchored at "now" minus its duration.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from origin.broadcast import id3
from origin.broadcast.model import Publication, RoomState, Session, StoredObject
from origin.broadcast.timed import Cue, EventKind
from origin.errors import ValidationError

SCHEME_ID3 = "https://aomedia.org/emsg/ID3"
TXXX_DESCRIPTION = "org.spillway.event"  # the cue as JSON, for players and pages
UNKNOWN_DURATION = 0xFFFFFFFF
LATE_CARRY_MAX_S = 10.0  # a cue later than this for its segment is left to the playlists' EXT-X-DATERANGE
FUTURE_BACKSCAN = 64  # cues before the carried count that may still lie ahead of the last segment's end


@dataclass(frozen=True, kw_only=True)
class Emsg:
    timescale: int
    presentation_time: int
    event_duration: int
    id: int
    scheme_id_uri: str
    value: str
    message_data: bytes


def emsg_box(m: Emsg) -> bytes:
    """A version 1 DASHEventMessageBox."""
    payload = (struct.pack(">B3xIQII", 1, m.timescale, m.presentation_time, m.event_duration, m.id)
               + m.scheme_id_uri.encode() + b"\x00" + m.value.encode() + b"\x00" + m.message_data)  # fmt: skip
    return struct.pack(">I4s", 8 + len(payload), b"emsg") + payload


def parse_emsg(box: bytes) -> Emsg:
    """A version 1 emsg box (header included) as `emsg_box` writes it."""
    if len(box) < 32 or box[4:8] != b"emsg" or struct.unpack_from(">I", box)[0] != len(box) or box[8] != 1:
        raise ValidationError("emsg: not a version 1 emsg box")
    timescale, presentation_time, duration, ident = struct.unpack_from(">IQII", box, 12)
    scheme, _, rest = box[32:].partition(b"\x00")
    value, _, message = rest.partition(b"\x00")
    return Emsg(timescale=timescale, presentation_time=presentation_time, event_duration=duration, id=ident,
                scheme_id_uri=scheme.decode(), value=value.decode(), message_data=message)  # fmt: skip


def _top_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    out, off = [], 0
    while off + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, off)
        if size == 1 and off + 16 <= len(data):
            (size,) = struct.unpack_from(">Q", data, off + 8)
        elif size == 0:
            size = len(data) - off
        if size < 8:
            break
        out.append((kind, off, off + size))
        off += size
    return out


def prepend(segment: bytes, boxes: Sequence[bytes]) -> bytes:
    """`segment` with `boxes` inserted before its first box that is not a styp."""
    if not boxes:
        return segment
    tops = _top_boxes(segment)
    at = tops[0][2] if tops and tops[0][0] == b"styp" else 0
    return segment[:at] + b"".join(boxes) + segment[at:]


def emsgs_of(segment: bytes) -> list[Emsg]:
    """Every top-level version 1 emsg of a segment (tests and tools)."""
    return [parse_emsg(segment[s:e]) for kind, s, e in _top_boxes(segment) if kind == b"emsg"]


# -- which cues, when ---------------------------------------------------------------------------------------


def predict_pdt(session: Session, last: Publication | None, *, base_s: float, duration_s: float, now: float) -> float:
    """The PROGRAM-DATE-TIME the sequencer will give a segment that decodes at `base_s` (seconds)."""
    pdt = now - duration_s if session.anchor_pdt is None else session.anchor_pdt + base_s
    return pdt if last is None else max(pdt, last.end_pdt)


def due(cues: Sequence[Cue], carried: tuple[int, float], *, start: float, end: float) -> list[tuple[Cue, float]]:
    """(cue, time) of the cues a segment spanning [start, end) (PDT) carries; late cues clamped to `start`.

    `carried` = (count, until) of the rendition's previous segment: cues of index < count that begin before
    `until` have been carried (or were too late for any segment) already.
    """
    count, until = carried
    out: list[tuple[Cue, float]] = []
    for cue in cues[max(0, count - FUTURE_BACKSCAN) :]:
        at = cue.at
        if (cue.index < count and at < until) or at >= end or at < start - LATE_CARRY_MAX_S:
            continue
        out.append((cue, max(at, start)))
    return out


def message(cue: Cue) -> bytes:
    """The ID3 tag of one cue: TXXX org.spillway.event = the cue as JSON, and TIT2 = who/what (on starts)."""
    e = cue.event
    doc: dict[str, object] = {"id": e.id, "kind": e.kind.value, "edge": cue.edge, "start": round(e.start, 3)}
    if e.end is not None:
        doc["end"] = round(e.end, 3)
    for key, value in (("speaker", e.speaker), ("title", e.title), ("text", e.text)):
        if value:
            doc[key] = value
    frames = [id3.Frame(id="TXXX", description=TXXX_DESCRIPTION,
                        text=json.dumps(doc, separators=(",", ":"), ensure_ascii=False))]  # fmt: skip
    if cue.edge == "start":
        frames.append(id3.Frame(id="TIT2", text=e.label))
    return id3.tag(frames)


def boxes(due_cues: Sequence[tuple[Cue, float]], *, start: float, base_ticks: int, timescale: int) -> list[bytes]:
    """The emsg boxes of a segment whose first sample decodes at `base_ticks` and plays at PDT `start`."""
    out = []
    for cue, at in due_cues:
        open_turn = cue.edge == "start" and cue.event.kind is EventKind.SPEAKER and cue.event.end is None
        out.append(emsg_box(Emsg(
            timescale=timescale, presentation_time=base_ticks + max(0, round((at - start) * timescale)),
            event_duration=UNKNOWN_DURATION if open_turn else 0, id=cue.index & 0xFFFFFFFF,
            scheme_id_uri=SCHEME_ID3, value="", message_data=message(cue),
        )))  # fmt: skip
    return out


def for_segment(state: RoomState, obj: StoredObject, *, timescale: int, now: float) -> tuple[StoredObject, list[bytes]]:
    """The record of a received media segment (what it carries) and the emsg boxes to store in front of it."""
    cues = state.timed.cues
    session = state.sessions.get(obj.session)
    if not cues or session is None or obj.is_init or timescale <= 0:
        return obj, []
    rs = state.renditions.get(obj.rendition)
    duration_s = obj.duration_ticks / timescale
    start = predict_pdt(session, rs.last if rs else None, base_s=obj.base_ticks / timescale, duration_s=duration_s,
                        now=now)  # fmt: skip
    end = start + duration_s
    chosen = due(cues, rs.carried if rs else (0, 0.0), start=start, end=end)
    recorded = dataclasses.replace(obj, cue_count=len(cues), cue_until=end)
    return recorded, boxes(chosen, start=start, base_ticks=obj.base_ticks, timescale=timescale)
