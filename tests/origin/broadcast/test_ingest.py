"""The ingest service (check → store → record) on real ffmpeg media, the in-memory journal and storage."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from origin.broadcast import fmp4
from origin.broadcast.ingest import IngestLimits, IngestService, parse_object_name
from origin.broadcast.journal.base import Ownership
from origin.broadcast.journal.memory import MemoryJournal
from origin.broadcast.model import RoomState
from origin.broadcast.records import EndRequested, ObjectStored, Record, Sealed
from origin.broadcast.spool import Spool
from origin.broadcast.states import RoomStates
from origin.broadcast.stores import RoomStores
from origin.contract import layout
from origin.contract.ingest import StartBody
from origin.errors import NotFoundError, RateLimitedError, StateError, StorageError, UnavailableError, ValidationError
from origin.metrics import Metrics
from origin.storage.memory import MemoryStorage
from tests.origin.broadcast.factory import S1, S2
from tests.origin.conftest import Fmp4Media

ROOM = "launch"
T0 = 1_790_000_000.0
STEREO = StartBody.model_validate({"segment_seconds": 2.0, "renditions": [
    {"name": "a64", "bitrate": 64_000, "channels": 2, "sample_rate": 48_000}]})  # fmt: skip


@dataclasses.dataclass
class Harness:
    svc: IngestService
    journal: MemoryJournal
    storage: MemoryStorage
    spool: Spool
    now: list[float]

    def state(self) -> RoomState:
        with self.svc.stores.states.hold(ROOM) as state:
            return state

    def media_keys(self) -> list[str]:
        return [k for k in self.storage.objects if "/media/" in k]


def harness(tmp_path: Path, journal: MemoryJournal) -> Harness:
    storage, spool, now = MemoryStorage(), Spool(tmp_path / "spool"), [T0]
    stores = RoomStores(journal=journal, states=RoomStates(journal), storage=storage, spool=spool)
    svc = IngestService(stores=stores, metrics=Metrics(), limits=IngestLimits(max_backlog=2, sessions_per_minute=3),
                        clock=lambda: now[0])  # fmt: skip
    return Harness(svc=svc, journal=journal, storage=storage, spool=spool, now=now)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    yield harness(tmp_path, MemoryJournal())


def started(h: Harness, fmp4_media: Fmp4Media, session: str = S1) -> None:
    assert h.svc.start(ROOM, session, STEREO) is True
    assert h.svc.receive(ROOM, session, "a64", "init.mp4", fmp4_media.init).stored


def test_a_session_stores_and_records_its_objects(h: Harness, fmp4_media: Fmp4Media) -> None:
    started(h, fmp4_media)
    assert h.svc.start(ROOM, S1, STEREO) is False  # an idempotent repeat
    receipt = h.svc.receive(ROOM, S1, "a64", "000000.m4s", fmp4_media.segments[0])
    assert receipt.stored and receipt.segment and not receipt.spooled
    assert h.storage.get(layout.media_segment(ROOM, S1, "a64", 0)) == fmp4_media.segments[0]
    pending = h.state().renditions["a64"].pending[S1][0]
    info = fmp4.inspect_segment(fmp4_media.segments[0])
    assert (pending.duration_ticks, pending.base_ticks) == (info.duration_ticks, info.base_decode_time)
    again = h.svc.receive(ROOM, S1, "a64", "000000.m4s", fmp4_media.segments[0])
    assert not again.stored  # identical repeat: nothing new stored or recorded
    assert sum(isinstance(r, ObjectStored) for r in h.journal.read(ROOM, 0)[0]) == 2
    assert not h.svc.receive(ROOM, S1, "a64", "index.m3u8", b"#EXTM3U\n").stored  # ffmpeg's playlist: dropped


def test_a_first_segment_may_arrive_before_its_init_is_recorded(h: Harness, fmp4_media: Fmp4Media) -> None:
    h.svc.start(ROOM, S1, STEREO)
    assert h.svc.receive(ROOM, S1, "a64", "000000.m4s", fmp4_media.segments[0]).stored  # ffmpeg does not wait


@pytest.mark.parametrize(
    ("session", "rendition", "name", "error"),
    [("20261126t090900z-ffff9999", "a64", "000000.m4s", NotFoundError), (S1, "a128", "000000.m4s", NotFoundError),
     (S1, "a64", "000099.m4s", ValidationError), (S1, "a64", "stuff.bin", ValidationError)],
)  # fmt: skip
def test_refused_objects_leave_nothing_behind(
    h: Harness, fmp4_media: Fmp4Media, session: str, rendition: str, name: str, error: type[Exception]
) -> None:
    started(h, fmp4_media)
    before = list(h.storage.objects)
    with pytest.raises(error):
        h.svc.receive(ROOM, session, rendition, name, fmp4_media.segments[0])
    assert list(h.storage.objects) == before


class _UnansweredJournal(MemoryJournal):
    """A journal whose next append fails as a Redis restart makes it fail: after landing, or before."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next: str | None = None  # "after" | "before"

    def append(self, room: str, records: Sequence[Record], *, fence: Ownership | None = None) -> None:
        failing, self.fail_next = self.fail_next, None
        if failing == "after":
            super().append(room, records, fence=fence)
        if failing is not None:
            raise StorageError("append failed: Connection closed by server.", key=room, backend="redis")
        super().append(room, records, fence=fence)


@pytest.mark.parametrize("landed", [True, False])
def test_an_object_whose_record_may_have_landed_stays_in_storage(
    tmp_path: Path, fmp4_media: Fmp4Media, landed: bool
) -> None:
    """A lost answer from the journal is not a refusal: deleting the object could leave a playlist naming
    nothing (the fleet's Redis restart). Unrecorded, the object is never named; the client's retry records it."""
    journal = _UnansweredJournal()
    h = harness(tmp_path, journal)
    started(h, fmp4_media)
    journal.fail_next = "after" if landed else "before"
    with pytest.raises(StorageError):
        h.svc.receive(ROOM, S1, "a64", "000000.m4s", fmp4_media.segments[0])
    assert h.storage.get(layout.media_segment(ROOM, S1, "a64", 0)) == fmp4_media.segments[0]
    assert (0 in h.state().renditions["a64"].pending.get(S1, {})) is landed
    retried = h.svc.receive(ROOM, S1, "a64", "000000.m4s", fmp4_media.segments[0])
    assert retried.stored is not landed and 0 in h.state().renditions["a64"].pending[S1]


def test_an_init_that_contradicts_the_declared_ladder_is_refused(h: Harness, fmp4_media: Fmp4Media) -> None:
    mono = StartBody.model_validate({"segment_seconds": 2.0, "renditions": [
        {"name": "a64", "bitrate": 64_000, "channels": 1, "sample_rate": 48_000}]})  # fmt: skip
    h.svc.start(ROOM, S1, mono)
    with pytest.raises(ValidationError, match="declared 1 ch"):
        h.svc.receive(ROOM, S1, "a64", "init.mp4", fmp4_media.init)
    assert h.media_keys() == []


def test_decode_times_must_move_forward(h: Harness, fmp4_media: Fmp4Media) -> None:
    started(h, fmp4_media)
    h.svc.receive(ROOM, S1, "a64", "000001.m4s", fmp4_media.segments[1])
    with pytest.raises(ValidationError, match="decode times must increase"):
        h.svc.receive(ROOM, S1, "a64", "000002.m4s", fmp4_media.segments[0])


def test_storage_failure_spools_and_a_full_backlog_is_503(h: Harness, fmp4_media: Fmp4Media) -> None:
    started(h, fmp4_media)
    h.storage.fail = lambda key: True
    for i in range(2):
        receipt = h.svc.receive(ROOM, S1, "a64", f"{i:06d}.m4s", fmp4_media.segments[i])
        assert receipt.spooled
        assert h.spool.get(layout.media_segment(ROOM, S1, "a64", i)) == fmp4_media.segments[i]
    with pytest.raises(UnavailableError, match="backlog full"):
        h.svc.receive(ROOM, S1, "a64", "000002.m4s", fmp4_media.segments[2])
    assert not h.spool.path(layout.media_segment(ROOM, S1, "a64", 2)).exists()


def test_sessions_after_the_end_and_session_floods_are_refused(h: Harness, fmp4_media: Fmp4Media) -> None:
    started(h, fmp4_media)
    h.svc.start(ROOM, S2, STEREO)
    with pytest.raises(StateError, match="already ended"):
        h.svc.start(ROOM, S1, STEREO)  # superseded: its id cannot come back
    h.svc.start(ROOM, "20261126t090300z-dddd4444", STEREO)
    with pytest.raises(RateLimitedError, match="restarting in a loop"):
        h.svc.start(ROOM, "20261126t090400z-eeee5555", STEREO)
    h.now[0] += 61
    assert h.svc.request_end(ROOM) is True and h.svc.request_end(ROOM) is False
    with pytest.raises(StateError, match="ended"):
        h.svc.start(ROOM, "20261126t090500z-abab6666", STEREO)
    with pytest.raises(StateError, match="ended"):
        h.svc.receive(ROOM, S2, "a64", "000000.m4s", fmp4_media.segments[0])
    with pytest.raises(NotFoundError):
        h.svc.request_end("never-on-air")


def test_a_seal_between_the_write_and_the_record_refuses_and_removes_the_object(
    h: Harness, fmp4_media: Fmp4Media
) -> None:
    started(h, fmp4_media)
    real_put = h.storage.put

    def put_then_seal(*args: object, **kw: object) -> None:
        real_put(*args, **kw)  # type: ignore[arg-type]
        h.journal.append(ROOM, [Sealed(session=S1, rendition="a64")])  # the publisher moved past S1 meanwhile

    h.storage.put = put_then_seal  # type: ignore[method-assign]
    with pytest.raises(StateError, match="has ended"):
        h.svc.receive(ROOM, S1, "a64", "000000.m4s", fmp4_media.segments[0])
    assert not h.storage.exists(layout.media_segment(ROOM, S1, "a64", 0))
    assert not any(isinstance(r, ObjectStored) and r.obj.idx == 0 for r in h.journal.read(ROOM, 0)[0])


def test_ending_refuses_objects_in_flight(h: Harness, fmp4_media: Fmp4Media) -> None:
    started(h, fmp4_media)
    h.journal.append(ROOM, [EndRequested(at=T0)])
    with pytest.raises(StateError):
        h.svc.receive(ROOM, S1, "a64", "000000.m4s", fmp4_media.segments[0])


def test_a_different_body_for_a_stored_unpublished_segment_is_refused(h: Harness, fmp4_media: Fmp4Media) -> None:
    """Names are immutable from the first store on, not only once published: a second body for a spooled segment
    was stored beside it, and the spool's upload then put the first one back under the name."""
    started(h, fmp4_media)
    h.storage.fail = lambda key: True
    assert h.svc.receive(ROOM, S1, "a64", "000000.m4s", fmp4_media.segments[0]).spooled
    h.storage.fail = lambda key: False
    with pytest.raises(StateError, match="immutable"):
        h.svc.receive(ROOM, S1, "a64", "000000.m4s", fmp4_media.segments[1])
    key = layout.media_segment(ROOM, S1, "a64", 0)
    assert key not in h.storage.objects and h.spool.get(key) == fmp4_media.segments[0]
    assert h.state().renditions["a64"].pending[S1][0].spooled


LADDER2 = StartBody.model_validate({"segment_seconds": 2.0, "renditions": [
    {"name": n, "bitrate": 64_000, "channels": 2, "sample_rate": 48_000} for n in ("a64", "b64")]})  # fmt: skip


def test_a_wave_is_checked_per_rendition_and_recorded_in_one_append(
    h: Harness, fmp4_media: Fmp4Media, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert h.svc.start(ROOM, S1, LADDER2)
    for name in ("a64", "b64"):
        assert h.svc.receive(ROOM, S1, name, "init.mp4", fmp4_media.init).stored
    appends: list[int] = []
    append = h.journal.append
    monkeypatch.setattr(h.journal, "append", lambda room, records, **kw: (appends.append(len(records)),
                                                                          append(room, records, **kw))[1])  # fmt: skip
    seg = parse_object_name("000000.m4s")
    receipts, refusal = h.svc.receive_all(ROOM, S1, seg, [("a64", fmp4_media.segments[0]),
                                                          ("b64", fmp4_media.segments[0])])  # fmt: skip
    assert refusal is None and [r.stored for r in receipts] == [True, True] and appends == [2]
    assert {r: set(h.state().renditions[r].pending[S1]) for r in ("a64", "b64")} == {"a64": {0}, "b64": {0}}
    # A repeat stores nothing; a wave refused at its second rendition keeps and records its first.
    receipts, refusal = h.svc.receive_all(ROOM, S1, seg, [("a64", fmp4_media.segments[0])])
    assert refusal is None and [r.stored for r in receipts] == [False] and appends == [2]
    one = parse_object_name("000001.m4s")
    receipts, refusal = h.svc.receive_all(ROOM, S1, one, [("a64", fmp4_media.segments[1]), ("b64", b"\0" * 64)])
    assert isinstance(refusal, ValidationError) and [r.stored for r in receipts] == [True] and appends == [2, 1]
    assert 1 in h.state().renditions["a64"].pending[S1] and 1 not in h.state().renditions["b64"].pending[S1]
    assert layout.media_segment(ROOM, S1, "b64", 1) not in h.storage.objects
