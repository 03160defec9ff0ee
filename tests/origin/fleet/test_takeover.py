"""Two instances' publishers on one Redis journal and one S3 bucket (moto): a takeover continues the same
playlists, and an owner paused in the middle of a pass (between its decision and its playlist write) wakes
up to find every write refused — its successor's versions are never overwritten."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import m3u8
import pytest

from origin.broadcast.lifecycle import LifecyclePolicy
from origin.broadcast.model import INIT_INDEX
from origin.broadcast.publish.playlists import RoomPlaylists
from origin.broadcast.publish.room import PublishPolicy, RoomPublisher
from origin.broadcast.records import ObjectStored, Record
from origin.broadcast.states import RoomStates
from origin.broadcast.stores import RoomStores
from origin.contract import layout
from origin.contract.cache_policy import ObjectHeaders, ObjectKind, headers_for
from origin.errors import OwnershipLostError
from origin.fleet.fencing import FencedStorage
from origin.fleet.journal import RedisJournal
from origin.fleet.lease import RedisOwnership
from origin.fleet.spool import RedisSpool
from origin.metrics import Metrics
from origin.storage.group_commit import GroupCommit
from origin.storage.s3 import S3Storage
from tests.origin.broadcast.factory import init, segment, started
from tests.origin.fleet.conftest import versions

ROOM = "launch"
LIVE = layout.live_playlist(ROOM, "a64")


class PausingS3(S3Storage):
    """S3 whose next playlist write stops (the process is paused) until `resume` is set."""

    def __init__(self, base: S3Storage) -> None:
        super().__init__(bucket=base.bucket, client=base.client, max_attempts=2)
        self.armed = threading.Event()
        self.paused = threading.Event()
        self.resume = threading.Event()

    def put_conditional(self, key: str, data: bytes, headers: ObjectHeaders, *, if_match: str | None = None,
                        if_absent: bool = False) -> str:  # fmt: skip
        if key == LIVE and self.armed.is_set():
            self.armed.clear()
            self.paused.set()
            assert self.resume.wait(30)
        return super().put_conditional(key, data, headers, if_match=if_match, if_absent=if_absent)


@dataclass(kw_only=True)
class Instance:
    journal: RedisJournal
    publisher: RoomPublisher
    ownership: RedisOwnership


def instance(journal: RedisJournal, s3: S3Storage, tmp_path: Path) -> Instance:
    """This instance's publisher of the room, once it could take the room (a predecessor's lease ran out)."""
    deadline = time.monotonic() + 5
    while (ownership := journal.try_own(ROOM)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert isinstance(ownership, RedisOwnership)
    commit = GroupCommit(lambda: None)
    commit.note_durable(float("inf"))  # appendfsync always: a readable record is durable
    policy = PublishPolicy(live_window_segments=3, lifecycle=LifecyclePolicy(session_timeout_s=60, end_grace_s=60),
                           filler=None)  # fmt: skip
    publisher = RoomPublisher(
        room=ROOM, ownership=ownership, commit=commit,
        stores=RoomStores(journal=journal, states=RoomStates(journal), storage=FencedStorage(s3, ownership),
                          spool=RedisSpool(journal.client, max_bytes=1 << 20, prefix=journal.prefix)),
        playlists=RoomPlaylists(ROOM, tmp_path / journal.worker, live_window_segments=3, event_interval_s=6.0),
        filler=None, policy=policy, metrics=Metrics(), clock=time.time,
    )  # fmt: skip
    return Instance(journal=journal, publisher=publisher, ownership=ownership)


def ingest(journal: RedisJournal, s3: S3Storage, *records: Record) -> None:
    """What any instance's ingest does: the object into S3, then its record into the journal."""
    for r in records:
        if isinstance(r, ObjectStored):
            o = r.obj
            key = (layout.init_segment(ROOM, o.session, o.rendition) if o.idx == INIT_INDEX
                   else layout.media_segment(ROOM, o.session, o.rendition, o.idx))  # fmt: skip
            s3.put(key, b"media", headers_for(ObjectKind.SEGMENT))
    with journal.locked(ROOM):
        journal.append(ROOM, list(records))


def opening(segments: int) -> list[Record]:
    now = time.time()
    return [started(at=now), init(at=now), *[segment(i, at=now) for i in range(segments)]]


def live(s3: S3Storage) -> m3u8.M3U8:
    return m3u8.loads(s3.get(LIVE).decode())


def owners_in_order(s3: S3Storage) -> list[int]:
    return [int(v.decode().rsplit("# spillway-owner ", 1)[1]) for v in versions(s3, LIVE)]


def test_the_successor_continues_the_same_playlist(
    s3: S3Storage, journals: tuple[RedisJournal, RedisJournal], tmp_path: Path
) -> None:
    a_journal, b_journal = journals
    ingest(a_journal, s3, *opening(4))
    a = instance(a_journal, s3, tmp_path)
    assert a.publisher.run().published == 4
    a_journal.leases.stop()  # A dies
    ingest(b_journal, s3, segment(4, at=time.time()), segment(5, at=time.time()))
    b = instance(b_journal, s3, tmp_path)
    assert b.ownership.token > a.ownership.token
    assert b.publisher.run().published == 2
    after = live(s3)
    assert after.media_sequence == 3 and [s.uri.rsplit("/", 1)[1] for s in after.segments] == [
        "000003.m4s", "000004.m4s", "000005.m4s"]  # fmt: skip
    assert not any(s.discontinuity for s in after.segments)  # same session: nothing to mark
    assert owners_in_order(s3) == sorted(owners_in_order(s3))
    b.publisher.close()


def test_an_owner_paused_between_its_decision_and_its_playlist_write_never_writes_after_its_successor(
    s3: S3Storage, journals: tuple[RedisJournal, RedisJournal], tmp_path: Path
) -> None:
    a_journal, b_journal = journals
    slow = PausingS3(s3)
    ingest(a_journal, s3, *opening(3))
    a = instance(a_journal, slow, tmp_path)
    a.publisher.run()
    ingest(a_journal, s3, segment(3, at=time.time()))
    slow.armed.set()
    errors: list[BaseException] = []

    def a_pass() -> None:
        try:
            a.publisher.run()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=a_pass)
    worker.start()
    assert slow.paused.wait(10)  # A decided (Published msn 3 is in the journal) and stopped mid-write
    a_journal.leases.stop()  # paused: no renewals; the 1 s lease runs out
    ingest(b_journal, s3, segment(4, at=time.time()))
    b = instance(b_journal, s3, tmp_path)
    assert b.publisher.run().published == 1  # msn 3 (A's decision) was already published: B adds msn 4
    b_version = s3.get(LIVE)
    slow.resume.set()  # A wakes up and finishes its pass
    worker.join(10)
    assert len(errors) == 1 and isinstance(errors[0], OwnershipLostError)
    assert s3.get(LIVE) == b_version  # A's in-flight version did not land
    tokens = owners_in_order(s3)
    assert tokens == sorted(tokens) and tokens[-1] == b.ownership.token
    assert [s.uri.rsplit("/", 1)[1] for s in live(s3).segments] == ["000002.m4s", "000003.m4s", "000004.m4s"]
    with pytest.raises(OwnershipLostError):  # and its next pass is refused at the journal
        ingest(a_journal, s3, segment(5, at=time.time()))
        a.publisher.run()
    b.publisher.close()
