"""Low-latency ingest: one part of a session's stream, checked, stored and recorded (see stream.py).

The HTTP route splits the stream (FragmentStream), hands each part here with its SegmentCutter, and hands
the completed segment (its parts concatenated) to IngestService.receive like any other segment: standard
playlists, the replay and the download keep working on segments; parts only add EXT-X-PART lines.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from origin.broadcast import fmp4
from origin.broadcast.ingest import IngestService
from origin.broadcast.model import BroadcastState, RoomState, StoredPart
from origin.broadcast.records import PartStored
from origin.broadcast.stream import SegmentCutter
from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.contract.ingest import PART_SECONDS_MAX
from origin.errors import NotFoundError, StateError, StorageError

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PartReceipt:
    idx: int  # the segment the part belongs to
    part: int
    completes_segment: bool
    duration_s: float
    stored: bool = True  # False: storage refused it; the segment still comes whole, only its parts are missing


def check_part(state: RoomState, part: StoredPart) -> bool:
    """Whether the part should be recorded (False: a repeat). Raises for a refused part."""
    session = state.sessions.get(part.session)
    if session is None:
        raise NotFoundError(f"unknown session {part.session!r}: call start first", room=state.room)
    if session.rendition(part.rendition) is None:
        raise NotFoundError(f"rendition {part.rendition!r} not declared by session {part.session!r}",
                            room=state.room)  # fmt: skip
    if state.state in (BroadcastState.ENDING, BroadcastState.ENDED):
        raise StateError(f"room {state.room!r} broadcast has ended", room=state.room)
    if part.rendition in session.sealed:
        raise StateError(f"session {part.session!r} has ended", room=state.room)
    rs = state.renditions.get(part.rendition)
    have = rs.parts.get((part.session, part.idx), []) if rs is not None else []
    return part.part >= len(have)


class PartIngest:
    def __init__(self, service: IngestService) -> None:
        self.service = service

    def receive_part(self, room: str, session: str, rendition: str, body: bytes, cutter: SegmentCutter) -> PartReceipt:
        svc = self.service
        with svc.stores.states.hold(room) as state:
            rs = state.renditions.get(rendition)
            init = rs.inits.get(session) if rs is not None else None
        if init is None:
            raise StateError(f"{session}/{rendition}: the stream's init segment is not recorded yet", room=room)
        info = svc.init_info(room, init)
        seg = fmp4.inspect_segment(body, init=info, max_duration_s=PART_SECONDS_MAX * 2 if info else None)
        duration_s = seg.duration_ticks / init.timescale
        idx, k, done = cutter.add(duration_s)
        key = layout.media_part(room, session, rendition, idx, k)
        try:
            svc.stores.storage.put(key, body, headers_for(ObjectKind.SEGMENT), durable=False)
        except StorageError as exc:
            # Parts are a head start, not the only copy: the segment is stored (or spooled) whole when it
            # completes. A missing part ends the segment's parts; low-latency players wait for the segment.
            svc.metrics.storage_error(svc.stores.storage.name, "put")
            log.warning("room=%s part %s not stored: %s", room, key, exc)
            return PartReceipt(idx=idx, part=k, completes_segment=done, duration_s=duration_s, stored=False)
        part = StoredPart(session=session, rendition=rendition, idx=idx, part=k, duration_s=duration_s,
                          size=len(body), received_at=svc.clock())  # fmt: skip
        svc.append_checked(room, lambda st: check_part(st, part), PartStored(part=part))
        return PartReceipt(idx=idx, part=k, completes_segment=done, duration_s=duration_s)
