"""Journal records: every kind survives encode → decode, and anything else is a JournalError."""

from __future__ import annotations

import pytest

from origin.broadcast.model import BroadcastState, EndReason, Publication
from origin.broadcast.records import (
    AnchorSet,
    DownloadBuilt,
    EndRequested,
    JournalError,
    MasterWritten,
    ObjectUploaded,
    Published,
    Quarantined,
    Record,
    Sealed,
    SessionEnded,
    StateChanged,
    decode,
    encode,
)
from tests.origin.broadcast.factory import A48, A64, S1, init, segment, started

PUB = Publication(rendition="a64", msn=7, session=S1, idx=3, duration_s=1.002667, pdt=1_790_000_000.25,
                  discontinuity=True, size=8_123, received_at=1_790_000_001.5, filler=True)  # fmt: skip
EVERY_KIND: list[Record] = [
    started(ladder=(A48, A64)), init(spooled=True), segment(4, at=12.5), SessionEnded(session=S1, at=3.0,
    reason=EndReason.SUPERSEDED), EndRequested(at=4.0), ObjectUploaded(session=S1, rendition="a64", idx=-1),
    Published(publications=(PUB, PUB)), AnchorSet(session=S1, pdt=1.5), Sealed(session=S1, rendition="a48"),
    StateChanged(state=BroadcastState.ENDING, at=9.0), Quarantined(session=S1, rendition="a64", idx=2, reason="x"),
    MasterWritten(renditions=("a48", "a64")), DownloadBuilt(size=123),
]  # fmt: skip


@pytest.mark.parametrize("record", EVERY_KIND, ids=lambda r: type(r).__name__)
def test_every_record_round_trips_as_one_line(record: Record) -> None:
    line = encode(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode(line.rstrip(b"\n")) == record


@pytest.mark.parametrize("line", [b"", b"{}", b"[]", b'["zz"]', b'["o"]', b"not json", b'["b","dancing",1]',
                                  b'["e","s","x","nope"]', b"\xff\xfe"])  # fmt: skip
def test_anything_else_is_a_journal_error(line: bytes) -> None:
    with pytest.raises(JournalError):
        decode(line)
