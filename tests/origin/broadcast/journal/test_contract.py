"""The journal contract, run against every backend: the file journal (with real processes), the Redis journal
of a fleet (a real redis-server) and the twin."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from origin.broadcast.journal.base import Journal
from origin.broadcast.journal.files import JOURNAL_NAME, FileJournal
from origin.broadcast.journal.memory import MemoryJournal
from origin.broadcast.records import DownloadBuilt, EndRequested
from origin.errors import OwnershipLostError
from origin.fleet.journal import RedisJournal
from tests.origin.broadcast.factory import init, segment, started
from tests.support.redis_server import RedisServer


def redis_journal(server: RedisServer, prefix: str, *, lease_s: float = 3.0) -> RedisJournal:
    return RedisJournal(server.client(), worker=f"w{uuid.uuid4().hex[:6]}", prefix=prefix, lease_s=lease_s)


@pytest.fixture(params=["files", "memory", "redis"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    if request.param == "redis":
        j = redis_journal(request.getfixturevalue("redis_server"), f"test-{uuid.uuid4().hex[:10]}:")
        yield j
        j.close()
        return
    yield FileJournal(tmp_path) if request.param == "files" else MemoryJournal()


def test_appends_are_read_in_order_from_any_offset(journal: Journal) -> None:
    assert journal.read("launch", 0) == ([], 0) and not journal.exists("launch")
    journal.append("launch", [started(), init()])
    records, offset = journal.read("launch", 0)
    assert records == [started(), init()] and journal.exists("launch") and journal.rooms() == ["launch"]
    journal.append("launch", [segment(0)])
    more, end = journal.read("launch", offset)
    assert more == [segment(0)] and journal.read("launch", end) == ([], end)


def test_ownership_is_exclusive_until_released(journal: Journal) -> None:
    first = journal.try_own("launch")
    assert first is not None and journal.try_own("launch") is None
    first.release()
    again = journal.try_own("launch")
    assert again is not None
    again.release()


def test_delete_forgets_the_room(journal: Journal) -> None:
    journal.append("launch", [started()])
    journal.delete("launch")
    assert not journal.exists("launch") and journal.read("launch", 0) == ([], 0)


def _appends_never_interleave(handles: list[Journal], rounds: int) -> None:
    """Four threads (spread over `handles`: processes) append inside locked sections; none overlaps another."""
    inside: list[int] = []
    overlap: list[bool] = []

    def work(journal: Journal, n: int) -> None:
        for _ in range(rounds):
            with journal.locked("launch"):
                inside.append(n)
                overlap.append(len(inside) > 1)
                journal.append("launch", [DownloadBuilt(size=n)])
                inside.remove(n)

    threads = [threading.Thread(target=work, args=(handles[n % len(handles)], n)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not any(overlap) and len(handles[0].read("launch", 0)[0]) == 4 * rounds


def test_locked_sections_do_not_interleave_across_threads(journal: Journal) -> None:
    _appends_never_interleave([journal], 50)


def _append_many(root: str, n: int) -> None:
    j = FileJournal(Path(root))
    for _ in range(200):
        with j.locked("launch"):
            j.append("launch", [DownloadBuilt(size=n), EndRequested(at=float(n))])


def test_processes_appending_at_once_never_interleave_a_record(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    records, _ = FileJournal(tmp_path).read("launch", 0)
    assert len(records) == 1600
    pairs = list(zip(records[::2], records[1::2], strict=True))
    assert all(a.size == int(b.at) for a, b in pairs)  # type: ignore[union-attr]  # each append stayed whole


def _own_and_wait(root: str, ready: multiprocessing.synchronize.Event, done: multiprocessing.synchronize.Event) -> None:
    held = FileJournal(Path(root)).try_own("launch")
    assert held is not None
    ready.set()
    done.wait(30)


def test_an_owner_that_dies_frees_the_room(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    owner = ctx.Process(target=_own_and_wait, args=(str(tmp_path), ready, done))
    owner.start()
    assert ready.wait(30)
    assert FileJournal(tmp_path).try_own("launch") is None
    owner.kill()
    owner.join(10)
    taken = FileJournal(tmp_path).try_own("launch")
    assert taken is not None
    taken.release()


def test_a_torn_tail_is_skipped_and_the_next_append_starts_a_fresh_line(tmp_path: Path) -> None:
    j = FileJournal(tmp_path)
    j.append("launch", [started()])
    with open(tmp_path / "rooms" / "launch" / JOURNAL_NAME, "ab") as fh:
        fh.write(b'["o","torn')  # a crash in the middle of a write
    assert j.read("launch", 0)[0] == [started()]  # the partial line is not a record yet
    fresh = FileJournal(tmp_path)  # a restarted process appends after it
    fresh.append("launch", [init()])
    assert fresh.read("launch", 0)[0] == [started(), init()]
    assert os.path.getsize(tmp_path / "rooms" / "launch" / JOURNAL_NAME) > 0


def test_replace_swaps_the_whole_journal(journal: Journal) -> None:
    journal.append("launch", [started(), init(), segment(0)])
    journal.replace("launch", [started()])
    assert journal.read("launch", 0)[0] == [started()]
    journal.append("launch", [init()])
    assert journal.read("launch", 0)[0] == [started(), init()]


# -- fencing: backends where an owner can be superseded while it lives (leases) ------------------------------


@pytest.fixture(params=["memory", "redis"])
def leased(request: pytest.FixtureRequest) -> Iterator[tuple[Journal, Journal]]:
    """Two handles on one journal (two processes), with a short lease on the Redis one."""
    if request.param == "memory":
        j = MemoryJournal()
        yield j, j
        return
    server, prefix = request.getfixturevalue("redis_server"), f"test-{uuid.uuid4().hex[:10]}:"
    a, b = redis_journal(server, prefix, lease_s=1.0), redis_journal(server, prefix, lease_s=1.0)
    yield a, b
    a.close()
    b.close()


def test_locked_sections_do_not_interleave_across_handles(leased: tuple[Journal, Journal]) -> None:
    _appends_never_interleave(list(leased), 30)


def _lapse(journal: Journal, room: str) -> None:
    """The owner is paused past its lease (its renewals stop; the lease runs out)."""
    if isinstance(journal, MemoryJournal):
        journal.expire(room)
        return
    assert isinstance(journal, RedisJournal)
    journal.leases.stop()  # no more renewals from this process
    journal.client.pexpire(f"{journal.prefix}{{{room}}}:owner", 1)
    time.sleep(0.01)


def test_a_superseded_owner_cannot_append_or_replace(leased: tuple[Journal, Journal]) -> None:
    first_journal, second_journal = leased
    first = first_journal.try_own("launch")
    assert first is not None and not first.lost
    first_journal.append("launch", [started()], fence=first)
    _lapse(first_journal, "launch")
    second = second_journal.try_own("launch")
    assert second is not None and second.token > first.token
    with pytest.raises(OwnershipLostError):
        first_journal.append("launch", [init()], fence=first)
    with pytest.raises(OwnershipLostError):
        first_journal.replace("launch", [], fence=first)
    assert first.lost
    second_journal.append("launch", [init()], fence=second)
    first_journal.append("launch", [segment(0)])  # arrivals (ingest) need no fence
    assert second_journal.read("launch", 0)[0] == [started(), init(), segment(0)]
    second.release()


def test_a_lapsed_owner_nobody_replaced_keeps_its_fence(leased: tuple[Journal, Journal]) -> None:
    journal, _ = leased
    owner = journal.try_own("launch")
    assert owner is not None
    _lapse(journal, "launch")
    journal.append("launch", [started()], fence=owner)  # no successor: its decisions still stand
    assert journal.read("launch", 0)[0] == [started()]
