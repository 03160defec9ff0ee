"""Waves: the renditions of a room's segment that rang, so that one pass publishes the segment's whole ladder.

A transcoder's ffmpeg PUTs a segment's renditions without waiting for any 201; the first rendition's segment
closes one AAC frame before the others' (21-24 ms apart, measured with ffmpeg 5.1's hls muxer). A ring that
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
# first waits up to this long, so it sits in the publish latency's tail. It must cover ffmpeg's ladder spread (one
# AAC frame) plus the durability barriers' jitter: with ffmpeg's pacing (bench/origin.py, 2 runs each,
# alternated) 25 ms split most waves (0.53-0.58 passes per segment PUT; 150 rooms p99 351-373 ms), 40 ms
# 0.44-0.49 (150 rooms 234-347 ms), 60 ms 0.42-0.48 (473-660 ms); 50 rooms p99 49.2-49.9 ms with each.
GATHER_MAX_S = 0.040


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
