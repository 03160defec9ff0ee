"""Records and values for broadcast unit tests (plain data; media is generated where it is needed)."""

from __future__ import annotations

from origin.broadcast.model import INIT_INDEX, RenditionSpec, StoredObject
from origin.broadcast.records import ObjectStored, SessionStarted

RATE = 48_000
A64 = RenditionSpec(name="a64", bitrate=64_000, channels=2, sample_rate=RATE)
A48 = RenditionSpec(name="a48", bitrate=48_000, channels=1, sample_rate=RATE)
S1 = "20261126t090000z-aaaa1111"
S2 = "20261126t090100z-bbbb2222"
S3 = "20261126t090200z-cccc3333"


def started(session: str = S1, at: float = 0.0, *, seconds: float = 1.0,
            ladder: tuple[RenditionSpec, ...] = (A64,)) -> SessionStarted:  # fmt: skip
    return SessionStarted(session=session, at=at, segment_seconds=seconds, ladder=ladder)


def init(session: str = S1, rendition: str = "a64", *, at: float = 0.0, spooled: bool = False) -> ObjectStored:
    return ObjectStored(obj=StoredObject(session=session, rendition=rendition, idx=INIT_INDEX, size=700,
                                         received_at=at, timescale=RATE, spooled=spooled))  # fmt: skip


def segment(idx: int, session: str = S1, rendition: str = "a64", *, at: float = 0.0, seconds: float = 1.0,
            spooled: bool = False) -> ObjectStored:  # fmt: skip
    ticks = int(seconds * RATE)
    return ObjectStored(obj=StoredObject(session=session, rendition=rendition, idx=idx, size=8_000, received_at=at,
                                         spooled=spooled, duration_ticks=ticks, base_ticks=idx * ticks))  # fmt: skip
