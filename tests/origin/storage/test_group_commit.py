"""Group commit: every waiter is released by a barrier that started after it asked, and shares it."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from origin.storage.group_commit import GroupCommit


class SlowSync:
    def __init__(self, seconds: float = 0.02) -> None:
        self.seconds = seconds
        self.calls = 0
        self.fail_next = False

    def __call__(self) -> None:
        self.calls += 1
        time.sleep(self.seconds)
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk on fire")


def test_many_async_waiters_share_a_few_barriers() -> None:
    sync = SlowSync()
    commit = GroupCommit(sync)

    async def main() -> None:
        await asyncio.gather(*(commit.barrier() for _ in range(200)))

    asyncio.run(main())
    commit.close()
    assert 1 <= sync.calls <= 3 and commit.barriers == sync.calls


def test_a_waiter_is_never_released_by_a_barrier_that_started_before_it() -> None:
    started = threading.Event()
    release = threading.Event()
    calls: list[float] = []

    def sync() -> None:
        calls.append(time.monotonic())
        started.set()
        release.wait(5)

    commit = GroupCommit(sync)
    first = threading.Thread(target=commit.barrier_blocking)
    first.start()
    assert started.wait(5)
    done = threading.Event()

    def late() -> None:
        commit.barrier_blocking()
        done.set()

    threading.Thread(target=late).start()
    time.sleep(0.05)
    assert not done.is_set()  # the running barrier may not cover writes made after it started
    release.set()
    assert done.wait(5) and len(calls) == 2
    first.join()
    commit.close()


def test_a_failed_barrier_fails_its_waiters_and_the_next_one_works() -> None:
    sync = SlowSync(0.0)
    commit = GroupCommit(sync)
    sync.fail_next = True
    with pytest.raises(OSError, match="disk on fire"):
        commit.barrier_blocking()

    async def again() -> None:
        await commit.barrier()

    asyncio.run(again())
    commit.close()
