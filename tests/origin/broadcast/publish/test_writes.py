"""The pass's playlist writes: concurrent on an executor, every write attempted, the first failure raised."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from origin.broadcast.publish.playlists import Write
from origin.broadcast.publish.writes import put_all
from origin.contract.cache_policy import ObjectKind
from origin.errors import StorageError
from origin.storage.memory import MemoryStorage

WRITES = [Write(key=f"rooms/r/live/a{i}.m3u8", text=f"#EXTM3U\n#{i}\n", kind=ObjectKind.LIVE_PLAYLIST)
          for i in range(4)]  # fmt: skip


@pytest.mark.parametrize("threads", [0, 3])
def test_every_write_is_attempted_and_the_first_failure_raised_after_all_ran(threads: int) -> None:
    storage = MemoryStorage(fail=lambda key: key.endswith("a1.m3u8"))
    pool = ThreadPoolExecutor(threads) if threads else None
    try:
        with pytest.raises(StorageError, match="injected"):
            put_all(storage, WRITES, durable=False, io=pool)
    finally:
        if pool is not None:
            pool.shutdown()
    written = set(storage.objects)
    if threads:  # concurrent: the other three were written despite the failure
        assert written == {w.key for w in WRITES} - {WRITES[1].key}
    else:  # one at a time: stops at the failure, in order
        assert written == {WRITES[0].key}


def test_writes_carry_their_text_and_cache_headers() -> None:
    storage = MemoryStorage()
    with ThreadPoolExecutor(2) as pool:
        put_all(storage, WRITES, durable=True, io=pool)
    assert storage.text(WRITES[2].key) == WRITES[2].text
    assert "max-age" in storage.get_headers(WRITES[2].key).cache_control
