"""The publish scheduler's gathering: one pass per segment of a room's whole ladder, not one per rendition.

A scripted publisher stands in for RoomPublisher (the scheduler only calls `run`, reads `expected_renditions`,
`ownership` and `commit`); ownership comes from the in-memory journal.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import pytest

from origin.broadcast.journal.base import Ownership
from origin.broadcast.journal.memory import MemoryJournal
from origin.broadcast.model import BroadcastState
from origin.broadcast.publish import waves
from origin.broadcast.publish.claims import Claims
from origin.broadcast.publish.room import PassResult, RoomPublisher
from origin.broadcast.publish.scheduler import PublishScheduler
from origin.broadcast.states import RoomStates

ROOM = "waves"


@dataclass(kw_only=True)
class ScriptedPublisher:
    ownership: Ownership
    expected_renditions: int = 3
    passes: list[float] = field(default_factory=list)  # monotonic time of each pass
    threads: list[str] = field(default_factory=list)  # the thread each pass ran on
    started: bool = False

    def run(self) -> PassResult:
        self.passes.append(time.monotonic())
        self.threads.append(threading.current_thread().name)
        self.started = True
        return PassResult(state=BroadcastState.LIVE)

    def close(self) -> None:
        self.ownership.release()


def _scheduler(*, inline: bool = True) -> tuple[PublishScheduler, dict[str, ScriptedPublisher]]:
    journal = MemoryJournal()
    made: dict[str, ScriptedPublisher] = {}

    def make(room: str, ownership: Ownership) -> RoomPublisher:
        made[room] = ScriptedPublisher(ownership=ownership)
        return made[room]  # type: ignore[return-value]  # the scheduler's side of RoomPublisher only

    sched = PublishScheduler(journal=journal, states=RoomStates(journal), make_publisher=make,
                             claims=Claims(journal, time.time), clock=time.time, on_result=lambda room, result: None,
                             inline=inline)  # fmt: skip
    return sched, made


async def _settle(seconds: float) -> None:
    await asyncio.sleep(seconds)


def test_a_segments_whole_ladder_is_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waves, "GATHER_MAX_S", 5.0)  # a wave that completes must not wait for this

    async def main() -> None:
        sched, made = _scheduler()
        sched.start()
        try:
            sched.request(ROOM)  # a session start: the room is taken, its first pass learns the ladder
            await _settle(0.2)
            publisher = made[ROOM]
            assert len(publisher.passes) == 1
            started = time.monotonic()
            for rendition in ("a48", "a64", "a128"):  # ffmpeg: one rendition after another
                sched.request(ROOM, rendition)
                await _settle(0.01)
            for _ in range(100):
                if len(publisher.passes) >= 2:
                    break
                await _settle(0.02)
            await _settle(0.1)
            assert len(publisher.passes) == 2  # the three renditions: one pass, not three
            assert publisher.passes[1] - started < 2.0  # it did not wait for GATHER_MAX_S
        finally:
            await sched.stop()

    asyncio.run(main())


def test_a_rendition_that_never_rings_holds_the_others_only_up_to_the_gather_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(waves, "GATHER_MAX_S", 0.5)

    async def main() -> None:
        sched, made = _scheduler()
        sched.start()
        try:
            sched.request(ROOM)
            await _settle(0.2)
            publisher = made[ROOM]
            rang = time.monotonic()
            sched.request(ROOM, "a48")
            sched.request(ROOM, "a64")  # a128 never comes (a rendition of the ladder died)
            await _settle(0.2)
            assert len(publisher.passes) == 1  # still gathering
            for _ in range(100):
                if len(publisher.passes) >= 2:
                    break
                await _settle(0.05)
            assert len(publisher.passes) == 2 and publisher.passes[1] - rang >= 0.5
        finally:
            await sched.stop()

    asyncio.run(main())


def test_an_urgent_request_does_not_gather(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waves, "GATHER_MAX_S", 5.0)
    monkeypatch.setattr(waves, "GATHER_S", 5.0)

    async def main() -> None:
        sched, made = _scheduler()
        sched.start()
        try:
            sched.request(ROOM, urgent=True)  # a filler deadline, maintenance
            await _settle(0.2)
            assert len(made[ROOM].passes) == 1
            sched.request(ROOM, "a48")
            sched.request(ROOM, urgent=True)  # the deadline comes while a wave gathers: it does not wait
            await _settle(0.3)
            assert len(made[ROOM].passes) >= 2
        finally:
            await sched.stop()

    asyncio.run(main())


def test_remote_storage_does_not_wait_for_waves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waves, "GATHER_MAX_S", 5.0)  # S3: a wave would wait for the slowest PUT

    async def main() -> None:
        sched, made = _scheduler(inline=False)
        sched.start()
        try:
            sched.request(ROOM)
            await _settle(0.3)
            sched.request(ROOM, "a48")
            for _ in range(100):
                if len(made[ROOM].passes) >= 2:
                    break
                await _settle(0.02)
            assert len(made[ROOM].passes) == 2  # after GATHER_S, not GATHER_MAX_S
        finally:
            await sched.stop()

    asyncio.run(main())


def test_a_new_owners_first_pass_runs_off_the_loop_and_the_rest_on_it() -> None:
    """The first pass folds the whole journal and rebuilds the DVR: seconds for a long broadcast
    (bench/takeover.py), which must not stall the worker's ingest and joins."""

    async def main() -> None:
        sched, made = _scheduler(inline=True)
        sched.start()
        try:
            sched.request(ROOM, urgent=True)
            await _settle(0.2)
            sched.request(ROOM, urgent=True)
            await _settle(0.2)
            assert made[ROOM].threads[0].startswith("pass")  # a shard thread
            assert made[ROOM].threads[1:] == [threading.main_thread().name]
        finally:
            await sched.stop()

    asyncio.run(main())
