"""The live edge as a listener sees it: when each segment first appears in a live playlist, how long the edge
stood still, and what a player with a 3-segment buffer would have heard (stalls), for system tests and benches.

`EdgeTracker` polls live media playlists and records every new media sequence number with the time it was
first seen. The rest is pure: `longest_still` (the edge standing still within a window), `first_real_after`
(the source heard again), `listener_stalls` (a player that starts 3 segments behind the edge, plays at 1x and
waits whenever the next segment is not there yet: the time it waits is how much further behind it falls).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import m3u8

FILLER_MARK = "/fill-"  # origin-made filler segments (origin/contract/layout.py filler_segment)


@dataclass(frozen=True, kw_only=True)
class Seen:
    at: float  # monotonic time the segment was first seen in the playlist
    msn: int
    duration_s: float
    filler: bool
    uri: str


@dataclass(kw_only=True)
class EdgeTracker:
    urls: Sequence[str]
    interval_s: float = 0.05
    seen: dict[str, list[Seen]] = field(default_factory=dict)
    errors: int = 0
    polls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> EdgeTracker:
        self.seen = {u: [] for u in self.urls}
        self._threads = [threading.Thread(target=self._run, args=(u,), daemon=True, name="edge-tracker")
                         for u in self.urls]  # fmt: skip
        for t in self._threads:  # one poller per playlist: a slow GET of one does not blur the others' times
            t.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def _run(self, url: str) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                try:
                    r = client.get(url)
                    if r.status_code == 200:
                        self._note(url, r.text, time.monotonic())
                except httpx.HTTPError:
                    self.errors += 1
                self.polls += 1
                self._stop.wait(self.interval_s)

    def _note(self, url: str, text: str, now: float) -> None:
        playlist = m3u8.loads(text)
        first = int(playlist.media_sequence or 0)
        seen = self.seen[url]
        last = seen[-1].msn if seen else -1
        for i, seg in enumerate(playlist.segments):
            msn = first + i
            if msn > last:
                uri = str(seg.uri)
                seen.append(Seen(at=now, msn=msn, duration_s=float(seg.duration), filler=FILLER_MARK in uri, uri=uri))

    def real_since(self, url: str, t: float) -> bool:
        return first_real_after(self.seen[url], t) is not None


def advances(seen: Sequence[Seen]) -> list[float]:
    """The times the edge moved (one per poll that saw new segments)."""
    return sorted({s.at for s in seen})


def longest_still(seen: Sequence[Seen], start: float, end: float) -> float:
    """The longest interval without an edge advance that overlaps [start, end] (clipped to the data)."""
    times = advances(seen)
    worst = 0.0
    for a, b in itertools.pairwise(times):
        if b >= start and a <= end:
            worst = max(worst, b - a)
    if times and times[-1] <= end:  # still standing at the end of the window
        worst = max(worst, end - max(times[-1], start))
    return worst


def first_real_after(seen: Sequence[Seen], t: float) -> float | None:
    """When the first segment of real (non-filler) audio appeared after `t`."""
    return next((s.at for s in seen if s.at > t and not s.filler), None)


@dataclass(frozen=True, kw_only=True)
class Stall:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def _play(seen: Sequence[Seen], buffer_segments: int, until: float) -> tuple[list[Stall], float]:
    """(stalls, when the player runs out of what was published by `until`)."""
    if len(seen) < buffer_segments:
        return [], until
    joined = seen[buffer_segments - 1].at  # it starts once the playlist holds `buffer_segments` segments
    at_join = [s for s in seen if s.at <= joined]
    queue = at_join[-buffer_segments:] + [s for s in seen if joined < s.at <= until]
    stalls: list[Stall] = []
    clock = joined
    for seg in queue:
        if seg.at > clock:
            stalls.append(Stall(start=clock, end=seg.at))
            clock = seg.at
        clock += seg.duration_s
    return stalls, clock


def listener_stalls(seen: Sequence[Seen], *, buffer_segments: int = 3) -> list[Stall]:
    """The stalls of a player that joins `buffer_segments` behind the edge and plays at 1x."""
    return _play(seen, buffer_segments, float("inf"))[0]


def listener_buffer(seen: Sequence[Seen], t: float, *, buffer_segments: int = 3) -> float:
    """Seconds of published audio that player has ahead of it at `t` (it joined with ~`buffer_segments`)."""
    return _play(seen, buffer_segments, t)[1] - t


def stalled_within(stalls: Sequence[Stall], start: float, end: float) -> float:
    """Seconds of stall inside [start, end]."""
    return sum(max(0.0, min(s.end, end) - max(s.start, start)) for s in stalls)

