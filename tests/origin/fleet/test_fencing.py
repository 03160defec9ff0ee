"""FencedStorage against a real S3 (moto) and Redis: a superseded owner never writes over its successor."""

from __future__ import annotations

import time

import pytest

from origin.contract.cache_policy import ObjectKind, headers_for
from origin.errors import OwnershipLostError
from origin.fleet.fencing import FencedStorage, owner_marker
from origin.fleet.journal import RedisJournal
from origin.fleet.lease import RedisOwnership
from origin.storage.s3 import PreconditionFailedError, S3Storage
from tests.origin.fleet.conftest import versions

KEY = "rooms/launch/live/a64.m3u8"
FILL = "rooms/launch/media/s1/a64/fill-000000007.m4s"
PLAYLIST = headers_for(ObjectKind.LIVE_PLAYLIST)
SEGMENT = headers_for(ObjectKind.SEGMENT)


def own(journal: RedisJournal) -> RedisOwnership:
    ownership = journal.try_own("launch")
    assert isinstance(ownership, RedisOwnership)
    return ownership


def pause_past_lease(journal: RedisJournal, ownership: RedisOwnership) -> None:
    """The owner stops renewing (SIGSTOP, GC) and its lease runs out; it does not know."""
    journal.leases.stop()
    journal.client.delete(f"{journal.prefix}{{launch}}:owner")
    assert not ownership.released


def test_conditional_puts_chain_on_etags(s3: S3Storage) -> None:
    assert s3.etag(KEY) is None
    first = s3.put_conditional(KEY, b"#EXTM3U\n1\n", PLAYLIST, if_absent=True)
    with pytest.raises(PreconditionFailedError):
        s3.put_conditional(KEY, b"#EXTM3U\n2\n", PLAYLIST, if_absent=True)
    second = s3.put_conditional(KEY, b"#EXTM3U\n2\n", PLAYLIST, if_match=first)
    with pytest.raises(PreconditionFailedError):
        s3.put_conditional(KEY, b"#EXTM3U\n3\n", PLAYLIST, if_match=first)
    with pytest.raises(PreconditionFailedError):  # If-Match on a key that does not exist
        s3.put_conditional("rooms/launch/none.m3u8", b"#EXTM3U\n", PLAYLIST, if_match=first)
    assert s3.etag(KEY) == second and s3.get(KEY) == b"#EXTM3U\n2\n"


def test_a_paused_owner_never_writes_a_playlist_after_its_successor(
    s3: S3Storage, journals: tuple[RedisJournal, RedisJournal]
) -> None:
    a_journal, b_journal = journals
    a = own(a_journal)
    a_store = FencedStorage(s3, a)
    a_store.put(KEY, b"#EXTM3U\nA1\n", PLAYLIST)
    a_store.put(KEY, b"#EXTM3U\nA2\n", PLAYLIST)  # chained on its own ETag: no HEAD, no lease check
    pause_past_lease(a_journal, a)
    b = own(b_journal)
    assert b.token > a.token
    b_store = FencedStorage(s3, b)
    b_store.put(KEY, b"#EXTM3U\nA2\n", PLAYLIST)  # even the same text: the owner's mark makes it another version
    with pytest.raises(OwnershipLostError):  # A wakes up with a pass in flight
        a_store.put(KEY, b"#EXTM3U\nA3\n", PLAYLIST)
    with pytest.raises(OwnershipLostError):  # and again: it never learns B's ETag
        a_store.put(KEY, b"#EXTM3U\nA4\n", PLAYLIST)
    b_store.put(KEY, b"#EXTM3U\nB2\n", PLAYLIST)
    history = versions(s3, KEY)
    assert history == [b"#EXTM3U\nA1\n" + owner_marker(a.token), b"#EXTM3U\nA2\n" + owner_marker(a.token),
                       b"#EXTM3U\nA2\n" + owner_marker(b.token), b"#EXTM3U\nB2\n" + owner_marker(b.token)]


def test_a_new_owner_takes_over_the_playlist_a_dead_owner_left(
    s3: S3Storage, journals: tuple[RedisJournal, RedisJournal]
) -> None:
    a_journal, b_journal = journals
    a = own(a_journal)
    FencedStorage(s3, a).put(KEY, b"#EXTM3U\nA1\n", PLAYLIST)
    a_journal.leases.stop()  # A dies: its lease runs out (1 s)
    b = None
    for _ in range(40):
        b = b_journal.try_own("launch")
        if b is not None:
            break
        time.sleep(0.05)
    assert isinstance(b, RedisOwnership)
    FencedStorage(s3, b).put(KEY, b"#EXTM3U\nB1\n", PLAYLIST)  # HEAD, lease check, If-Match the dead one's ETag
    assert s3.get(KEY) == b"#EXTM3U\nB1\n" + owner_marker(b.token)


def test_filler_is_created_once_and_never_changes(s3: S3Storage, journals: tuple[RedisJournal, RedisJournal]) -> None:
    a_journal, b_journal = journals
    a = own(a_journal)
    FencedStorage(s3, a).put(FILL, b"silence as A timed it", SEGMENT)
    pause_past_lease(a_journal, a)
    b = own(b_journal)
    FencedStorage(s3, b).put(FILL, b"silence as B timed it", SEGMENT)  # exists: the first bytes stay
    FencedStorage(s3, a).put(FILL, b"silence as A timed it", SEGMENT)
    assert versions(s3, FILL) == [b"silence as A timed it"]
