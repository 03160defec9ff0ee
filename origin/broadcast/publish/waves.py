"""Waves: the renditions of a room's segment that rang, so that one pass publishes the segment's whole ladder.

A transcoder PUTs a segment's renditions one after another (each waits for its 201: ~5-10 ms apart). A ring that
names its rendition opens a wave: the pass starts once every rendition of the room's open session rang, or
GATHER_MAX_S after the first ring if one never does (a rendition that died). A ring without a rendition (a
session start, an event, the admin end) gathers GATHER_S. Local storage only: on remote storage a rendition's
PUT takes tens of ms, a wave waits for the slowest, and passes run in threads anyway (measured with S3 on moto:
p50 40 → 56-79 ms at 10 rooms). Event loop only.
"""

from __future__ import annotations

import asyncio

GATHER_S = 0.012
# A wave that outwaits this publishes what rang; the late rendition gets its own pass. Every segment that rang
# first waits up to this long, so it sits in the publish latency's tail: at 50 rooms (bench/origin.py, 3 runs
# each, alternated) 50 ms gave p99 66-74 ms, 25 ms 49.4-49.6 ms at the same CPU (3.0-3.5 ms per segment), and no
# waves at all (a pass per rendition) 3.8-3.9 ms per segment.
GATHER_MAX_S = 0.025


class Waves:
    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._rang: dict[str, set[str]] = {}  # room -> renditions that rang since its last pass started
        self._done: dict[str, asyncio.Event] = {}

    def rang(self, room: str, rendition: str | None, *, expected: int, urgent: bool) -> None:
        """A ring (`rendition`: a segment of it); `expected`: the renditions of the room's open session."""
        if rendition is not None:
            self._rang.setdefault(room, set()).add(rendition)
        if urgent or self.complete(room, expected):  # a gathering pass goes now
            event = self._done.get(room)
            if event is not None:
                event.set()

    def complete(self, room: str, expected: int) -> bool:
        return expected > 0 and len(self._rang.get(room, ())) >= expected

    async def gather(self, room: str, expected: int) -> None:
        """Wait for the rest of the wave (or GATHER_S without one)."""
        if self.complete(room, expected):
            return
        if not self._rang.get(room) or not self.enabled:
            await asyncio.sleep(GATHER_S)
            return
        event = self._done[room] = asyncio.Event()
        try:
            await asyncio.wait_for(event.wait(), GATHER_MAX_S)
        except TimeoutError:
            pass  # a rendition that does not come (yet): publish the others
        finally:
            self._done.pop(room, None)

    def started(self, room: str) -> None:
        """A pass starts: what rings from now on is the next wave."""
        self._rang.pop(room, None)
