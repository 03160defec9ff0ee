"""RedisJournal beyond the shared contract: locks that run out, lease hand-over, fencing tokens that only grow."""

from __future__ import annotations

import time

import pytest
import redis

from origin.errors import UnavailableError
from origin.fleet.journal import RedisJournal
from origin.fleet.lease import RedisOwnership
from tests.origin.broadcast.factory import init, started
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy


def test_a_lock_holder_paused_past_the_lock_ttl_cannot_append(redis_server: RedisServer, prefix: str) -> None:
    slow = RedisJournal(redis_server.client(), worker="slow", prefix=prefix, lock_ttl_s=0.2)
    other = RedisJournal(redis_server.client(), worker="other", prefix=prefix)
    with slow.locked("launch"):
        time.sleep(0.3)  # paused inside its locked section: the lock ran out
        with other.locked("launch"):
            other.append("launch", [started()])
        with pytest.raises(UnavailableError):
            slow.append("launch", [init()])
    assert other.read("launch", 0)[0] == [started()]


def test_a_busy_lock_answers_unavailable_after_the_wait(redis_server: RedisServer, prefix: str) -> None:
    holder = RedisJournal(redis_server.client(), worker="holder", prefix=prefix)
    waiter = RedisJournal(redis_server.client(), worker="waiter", prefix=prefix, lock_wait_s=0.2)
    with holder.locked("launch"), pytest.raises(UnavailableError), waiter.locked("launch"):
        pass


def test_leases_are_renewed_while_held_and_move_when_their_holder_stops(
    journals: tuple[RedisJournal, RedisJournal],
) -> None:
    a_journal, b_journal = journals
    a = a_journal.try_own("launch")
    assert isinstance(a, RedisOwnership)
    time.sleep(1.5)  # longer than the 1 s lease: renewed in the background
    assert not a.lost and b_journal.try_own("launch") is None
    a_journal.leases.stop()
    started_at = time.monotonic()
    while (b := b_journal.try_own("launch")) is None:
        assert time.monotonic() - started_at < 3
        time.sleep(0.02)
    assert b.token == a.token + 1 and time.monotonic() - started_at <= 1.2  # the rest of A's lease, no more
    assert a.lost  # no renewal for a whole lease length


def test_tokens_keep_growing_across_a_deletion(journals: tuple[RedisJournal, RedisJournal]) -> None:
    journal, _ = journals
    first = journal.try_own("launch")
    assert first is not None
    journal.append("launch", [started()], fence=first)
    first.release()
    journal.delete("launch")
    assert not journal.exists("launch") and journal.rooms() == []
    again = journal.try_own("launch")
    assert again is not None and again.token > first.token  # a stale owner of the old broadcast stays fenced
    again.release()


def test_inside_its_lock_a_reader_skips_the_round_trip_for_what_it_knows(
    journals: tuple[RedisJournal, RedisJournal], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = journals
    a.append("launch", [started()])
    lranges: list[int] = []
    real = b.client.lrange
    monkeypatch.setattr(b.client, "lrange", lambda *args: lranges.append(1) or real(*args))
    with b.locked("launch"):
        records, offset = b.read("launch", 0)
        assert records == [started()] and len(lranges) == 1  # what another instance appended: read
        b.append("launch", [init()])
        assert b.read("launch", offset) == ([init()], offset + 1) and len(lranges) == 2
        assert b.read("launch", offset + 1) == ([], offset + 1) and len(lranges) == 2  # known: no round trip
    assert b.read("launch", offset + 1) == ([], offset + 1) and len(lranges) == 3  # unlocked: ask again


@pytest.mark.parametrize("fenced", [False, True])
def test_an_append_whose_answer_was_lost_lands_once_and_succeeds(
    redis_server: RedisServer, prefix: str, fenced: bool
) -> None:
    """redis-py retries a call whose connection closed before its answer (a Redis restart): the retry of an
    append that landed must neither append again nor be refused (ingest deletes the object of a refused record)."""
    with TcpProxy(redis_server.port) as proxy:
        journal = RedisJournal(redis.Redis(port=proxy.port), worker="w", prefix=prefix, lock_ttl_s=2.0)
        owner = journal.try_own("launch") if fenced else None
        journal.append("launch", [started()], fence=owner)  # the script is loaded (a lost NOSCRIPT proves nothing)
        with journal.locked("launch"):
            proxy.lose_reply_to(b"EVALSHA")
            journal.append("launch", [init()], fence=owner)
        assert proxy.lost == 1
        assert journal.read("launch", 0)[0] == [started(), init()]
        journal.close()


def test_a_lock_whose_answer_was_lost_is_ours_on_the_retry(redis_server: RedisServer, prefix: str) -> None:
    with TcpProxy(redis_server.port) as proxy:
        journal = RedisJournal(redis.Redis(port=proxy.port), worker="w", prefix=prefix, lock_wait_s=1.0)
        with journal.locked("launch"):  # the scripts are loaded (a lost NOSCRIPT would prove nothing)
            journal.append("launch", [started()])
        proxy.lose_reply_to(b"EVALSHA")
        with journal.locked("launch"):  # not "busy": the lock its lost answer took is its own
            journal.append("launch", [init()])
        assert proxy.lost == 1 and journal.read("launch", 0)[0] == [started(), init()]
        journal.close()


def test_a_claim_whose_answer_was_lost_is_taken_on_the_retry(redis_server: RedisServer, prefix: str) -> None:
    """Not "owned elsewhere" until its own lease runs out (2 s unpublished); another claim still fails."""
    with TcpProxy(redis_server.port) as proxy:
        journal = RedisJournal(redis.Redis(port=proxy.port), worker="w", prefix=prefix)
        warm = journal.try_own("warm-up")  # the script is loaded (a lost NOSCRIPT proves nothing)
        assert warm is not None
        proxy.lose_reply_to(b"EVALSHA")
        ownership = journal.try_own("launch")
        assert proxy.lost == 1 and ownership is not None
        assert journal.try_own("launch") is None  # one owner: a second claim of this process is refused
        other = RedisJournal(redis_server.client(), worker="x", prefix=prefix)
        assert other.try_own("launch") is None
        ownership.release()
        third = RedisJournal(redis_server.client(), worker="y", prefix=prefix)  # `other` waits out the lease it saw
        again = third.try_own("launch")
        assert again is not None and again.token == ownership.token + 1  # one epoch for the claim and its retry
        warm.release()
        for j in (third, other, journal):
            j.close()
