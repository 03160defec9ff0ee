"""One contract, every admission backend (embedded SQLite, Redis): the same tests, the same answers.

Includes a model-based check: random operation sequences against the backend and against
`decision.LeaseTable` (the reference semantics) must give identical results.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import multiprocessing.queues
import multiprocessing.synchronize
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from origin.admission.backend import HLS_BUCKET_S, HLS_WINDOW_BUCKETS
from origin.admission.decision import LeaseEndedError, LeaseNotFoundError, LeaseTable
from origin.admission.redis_backend import RedisAdmission
from origin.admission.sqlite_backend import SqliteAdmission
from origin.rooms import Room
from tests.origin.admission.backends import hammer_admit, open_backend
from tests.origin.admission.conftest import START, BackendUnderTest

T0 = START
LEASE_S = 30.0


def _lease(i: int) -> str:
    return f"lease-{i:016d}"


def test_admit_to_cap_then_refuse(under_test: BackendUnderTest) -> None:
    b = under_test.backend
    results = [b.admit("r", lease=_lease(i), cap=3, now=T0 + i, lease_s=LEASE_S) for i in range(5)]
    assert [r.admitted for r in results] == [True, True, True, False, False]
    assert [r.seats_taken for r in results] == [1, 2, 3, 3, 3]
    assert results[2].expires_at == T0 + 2 + LEASE_S
    assert results[3].expires_at is None
    assert b.seats_taken("r", now=T0 + 5) == 3
    assert b.seats_taken("other", now=T0 + 5) == 0  # rooms are independent
    assert b.admit("other", lease=_lease(9), cap=1, now=T0, lease_s=LEASE_S).admitted


def test_cap_zero_admits_nobody(under_test: BackendUnderTest) -> None:
    assert not under_test.backend.admit("r", lease=_lease(0), cap=0, now=T0, lease_s=LEASE_S).admitted


def test_heartbeat_renews_and_keeps_the_seat(under_test: BackendUnderTest) -> None:
    b = under_test.backend
    b.admit("r", lease=_lease(1), cap=1, now=T0, lease_s=LEASE_S)
    assert b.renew("r", lease=_lease(1), now=T0 + 25, lease_s=LEASE_S) == T0 + 25 + LEASE_S
    assert not b.admit("r", lease=_lease(2), cap=1, now=T0 + 50, lease_s=LEASE_S).admitted  # still held
    assert b.seats_taken("r", now=T0 + 54.9) == 1
    assert b.seats_taken("r", now=T0 + 55) == 0


def test_heartbeat_unknown_is_404_and_expired_is_410(under_test: BackendUnderTest) -> None:
    b = under_test.backend
    with pytest.raises(LeaseNotFoundError):
        b.renew("r", lease=_lease(1), now=T0, lease_s=LEASE_S)
    b.admit("r", lease=_lease(1), cap=1, now=T0, lease_s=LEASE_S)
    with pytest.raises(LeaseNotFoundError):
        b.renew("another-room", lease=_lease(1), now=T0, lease_s=LEASE_S)
    with pytest.raises(LeaseEndedError):
        b.renew("r", lease=_lease(1), now=T0 + LEASE_S, lease_s=LEASE_S)
    with pytest.raises(LeaseEndedError):  # and it stays ended: no resurrection
        b.renew("r", lease=_lease(1), now=T0 + LEASE_S + 1, lease_s=LEASE_S)


def test_leave_frees_the_seat(under_test: BackendUnderTest) -> None:
    b = under_test.backend
    b.admit("r", lease=_lease(1), cap=1, now=T0, lease_s=LEASE_S)
    b.release("r", lease=_lease(1), now=T0 + 1)
    assert b.seats_taken("r", now=T0 + 1) == 0
    assert b.admit("r", lease=_lease(2), cap=1, now=T0 + 1, lease_s=LEASE_S).admitted
    b.release("r", lease=_lease(1), now=T0 + 2)  # leaving twice is fine
    with pytest.raises(LeaseEndedError):
        b.renew("r", lease=_lease(1), now=T0 + 2, lease_s=LEASE_S)
    with pytest.raises(LeaseNotFoundError):
        b.release("r", lease=_lease(7), now=T0 + 2)


def test_expiry_frees_seats(under_test: BackendUnderTest) -> None:
    b = under_test.backend
    for i in range(3):
        assert b.admit("r", lease=_lease(i), cap=3, now=T0, lease_s=LEASE_S).admitted
    assert not b.admit("r", lease=_lease(3), cap=3, now=T0 + LEASE_S - 0.001, lease_s=LEASE_S).admitted
    results = [b.admit("r", lease=_lease(10 + i), cap=3, now=T0 + LEASE_S, lease_s=LEASE_S) for i in range(4)]
    assert [r.admitted for r in results] == [True, True, True, False]
    with pytest.raises(LeaseEndedError):  # reaped by those admits, remembered as ended
        b.renew("r", lease=_lease(0), now=T0 + LEASE_S + 1, lease_s=LEASE_S)


def test_a_lowered_cap_admits_nobody_until_below_it(under_test: BackendUnderTest) -> None:
    b = under_test.backend
    for i in range(5):
        b.admit("r", lease=_lease(i), cap=5, now=T0, lease_s=LEASE_S)
    assert not b.admit("r", lease=_lease(5), cap=2, now=T0, lease_s=LEASE_S).admitted
    for i in range(3):
        b.release("r", lease=_lease(i), now=T0)
    assert not b.admit("r", lease=_lease(6), cap=2, now=T0, lease_s=LEASE_S).admitted
    b.release("r", lease=_lease(3), now=T0)
    assert b.admit("r", lease=_lease(7), cap=2, now=T0, lease_s=LEASE_S).admitted


def _writes(under_test: BackendUnderTest) -> int:
    """Rows/keys changed so far, as the backend itself counts them."""
    b = under_test.backend
    if isinstance(b, SqliteAdmission):
        return b.db.connection().total_changes
    assert isinstance(b, RedisAdmission)
    return int(b.client.info("persistence")["rdb_changes_since_last_save"])


def test_a_full_room_costs_no_writes(under_test: BackendUnderTest) -> None:
    b = under_test.backend
    for i in range(2):
        b.admit("r", lease=_lease(i), cap=2, now=T0, lease_s=LEASE_S)
    before = _writes(under_test)
    for i in range(50):
        assert not b.admit("r", lease=_lease(100 + i), cap=2, now=T0 + 1, lease_s=LEASE_S).admitted
    assert _writes(under_test) == before
    b.admit("r2", lease=_lease(1), cap=2, now=T0, lease_s=LEASE_S)
    assert _writes(under_test) > before  # the probe does see writes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_the_reference_table(under_test: BackendUnderTest, seed: int) -> None:
    rng = random.Random(seed)
    b, model = under_test.backend, LeaseTable()
    known: list[str] = []
    now = T0
    for step in range(300):
        now += rng.choice([0.0, 0.5, 3.0, 11.0])
        room = rng.choice(["a", "b"])
        op = rng.random()
        if op < 0.5 or not known:
            lease = _lease(step)
            known.append(lease)
            cap = rng.choice([0, 1, 3, 5])
            got, want = (x.admit(room, lease=lease, cap=cap, now=now, lease_s=20.0) for x in (b, model))
            assert got == want, (step, "admit")
        else:
            lease = rng.choice(known)
            renew = op < 0.8
            outcomes = []
            for x in (b, model):
                try:
                    if renew:
                        outcomes.append(("ok", x.renew(room, lease=lease, now=now, lease_s=20.0)))
                    else:
                        x.release(room, lease=lease, now=now)
                        outcomes.append(("ok", None))
                except (LeaseEndedError, LeaseNotFoundError) as exc:
                    outcomes.append((type(exc).__name__, None))
            assert outcomes[0] == outcomes[1], (step, "renew" if renew else "release")
        for r in ("a", "b"):
            assert b.seats_taken(r, now=now) == model.seats_taken(r, now=now), step
            assert b.live_leases(r, now=now) == model.live_leases(r, now=now), step


def test_threads_hammering_admit_take_exactly_cap(under_test: BackendUnderTest) -> None:
    cap, threads, per_thread = 25, 8, 40
    barrier = threading.Barrier(threads)

    def run(t: int) -> list[bool]:
        backend = open_backend(under_test.spec)  # one backend object per thread, like one per worker
        try:
            barrier.wait(timeout=10)
            return [
                backend.admit("r", lease=f"t{t}-{i:014d}", cap=cap, now=T0, lease_s=LEASE_S).admitted
                for i in range(per_thread)
            ]
        finally:
            backend.close()

    with ThreadPoolExecutor(threads) as pool:
        admitted = sum(sum(r) for r in pool.map(run, range(threads)))
    assert admitted == cap
    assert under_test.backend.seats_taken("r", now=T0) == cap


def test_processes_hammering_admit_take_exactly_cap(under_test: BackendUnderTest) -> None:
    cap, processes, per_process = 40, 4, 60
    ctx = multiprocessing.get_context("spawn")
    args = [(under_test.spec, "r", cap, per_process, T0, f"p{p}") for p in range(processes)]
    with ctx.Pool(processes) as pool:
        results = pool.starmap_async(hammer_admit, args).get(timeout=60)
    assert sum(r.admitted for batch in results for r in batch) == cap
    assert max(r.seats_taken for batch in results for r in batch) == cap
    assert under_test.backend.seats_taken("r", now=T0) == cap


def test_publish_claim_lets_one_writer_through_per_interval(under_test: BackendUnderTest) -> None:
    b, other = under_test.backend, open_backend(under_test.spec)
    try:
        assert b.claim_publish("r", now=T0, interval_s=1.0)
        assert not other.claim_publish("r", now=T0 + 0.5, interval_s=1.0)
        assert not b.claim_publish("r", now=T0 + 0.99, interval_s=1.0)
        assert other.claim_publish("r", now=T0 + 1.0, interval_s=1.0)
        assert b.claim_publish("r2", now=T0 + 1.0, interval_s=1.0)  # per room
        assert b.claim_publish("r", now=T0 - 100, interval_s=1.0)  # a clock stepped back does not block
    finally:
        other.close()


def test_claims_are_per_task(under_test: BackendUnderTest) -> None:
    b, other = under_test.backend, open_backend(under_test.spec)
    try:
        assert b.claim("r", task="sfu-sync", now=T0, interval_s=2.0)
        assert not other.claim("r", task="sfu-sync", now=T0 + 1.9, interval_s=2.0)
        assert other.claim_publish("r", now=T0 + 1.9, interval_s=1.0)  # another task: its own claim
        assert other.claim("r", task="sfu-sync", now=T0 + 2.0, interval_s=2.0)
        with pytest.raises(ValueError):
            b.claim("r", task="Bad Task!", now=T0, interval_s=1.0)
    finally:
        other.close()


def test_live_leases_lists_the_seats_held_now(under_test: BackendUnderTest) -> None:
    b = under_test.backend
    assert b.live_leases("r", now=T0) == []
    for i in range(3):
        b.admit("r", lease=_lease(i), cap=5, now=T0 + i, lease_s=LEASE_S)
    b.admit("other", lease=_lease(9), cap=5, now=T0, lease_s=LEASE_S)
    b.release("r", lease=_lease(1), now=T0 + 3)
    assert b.live_leases("r", now=T0 + 3) == [_lease(0), _lease(2)]
    assert b.live_leases("r", now=T0 + LEASE_S) == [_lease(2)]  # lease 0 expired at T0 + LEASE_S, not reaped yet
    assert b.live_leases("r", now=T0 + 2 + LEASE_S) == []
    assert b.live_leases("other", now=T0) == [_lease(9)]


def test_hls_answers_count_over_the_recent_window(under_test: BackendUnderTest) -> None:
    b, other = under_test.backend, open_backend(under_test.spec)
    try:
        b.add_hls_answers("r", now=T0, count=5)
        other.add_hls_answers("r", now=T0 + 1, count=7)  # another worker
        b.add_hls_answers("r", now=T0 + 15, count=1)
        b.add_hls_answers("r", now=T0, count=0)
        assert b.hls_recent("r", now=T0 + 20) == 13
        assert b.hls_recent("other", now=T0 + 20) == 0
        assert b.hls_recent("r", now=T0 + HLS_BUCKET_S * (HLS_WINDOW_BUCKETS + 1)) == 0
    finally:
        other.close()


def test_room_registry_round_trip(under_test: BackendUnderTest) -> None:
    rooms = under_test.rooms
    assert rooms.get("launch") is None
    room = Room(
        id="launch", ingest_token="tok-" + "x" * 30, title="Launch ✓", host="Ada", realtime_cap=100,
        embed_origins=("https://news.example", "http://localhost:8080"),
    )  # fmt: skip
    rooms.put(room)
    assert rooms.get("launch") == room
    rooms.put(Room(id="launch", ingest_token="other-" + "y" * 30, realtime_cap=5))
    assert rooms.get("launch") == Room(id="launch", ingest_token="other-" + "y" * 30, realtime_cap=5)


def test_check_passes_on_a_working_backend(under_test: BackendUnderTest) -> None:
    under_test.backend.check()


def _admit_in_forked_child(backend: SqliteAdmission, start: multiprocessing.synchronize.Event, n: int) -> None:
    start.wait(10)
    for i in range(n):
        backend.admit("r", lease=f"fork-{os.getpid()}-{i:08d}", cap=30, now=T0, lease_s=LEASE_S)


def test_sqlite_opened_before_fork_still_excludes_writers(tmp_path: Path) -> None:
    """gunicorn --preload opens the backend in the master, then forks workers that must not share its lock."""
    backend = SqliteAdmission.open(tmp_path)
    backend.admit("r", lease=_lease(0), cap=30, now=T0, lease_s=LEASE_S)  # used before the fork
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    children = [ctx.Process(target=_admit_in_forked_child, args=(backend, start, 40)) for _ in range(3)]
    for child in children:
        child.start()
    start.set()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    assert backend.seats_taken("r", now=T0) == 30
    backend.close()


def _try_lock_in_child(backend: SqliteAdmission, results: multiprocessing.queues.Queue[str]) -> None:
    backend.db.connection()  # first use in the child reopens the lock file
    try:
        fcntl.flock(backend.db._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        results.put("acquired")
    except BlockingIOError:
        results.put("blocked")


def test_sqlite_writers_lock_is_reopened_after_fork(tmp_path: Path) -> None:
    """A child must not share the parent's lock (same open file description = no exclusion)."""
    backend = SqliteAdmission.open(tmp_path)
    ctx = multiprocessing.get_context("fork")
    results: multiprocessing.queues.Queue[str] = ctx.Queue()
    with backend.db.write():  # the parent is writing when the child tries
        child = ctx.Process(target=_try_lock_in_child, args=(backend, results))
        child.start()
        child.join(30)
    assert results.get(timeout=5) == "blocked"
    backend.close()
