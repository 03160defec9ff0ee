"""A listener's-eye check of live playlists, read straight from storage (S3 over HTTP) while a test runs.

For every (room, rendition) it polls the live playlist and, for each new version: the media sequence must
not go back; every object it names (segments, EXT-X-MAP) must be readable — checked once per name, right
after the version naming it was seen (names are immutable, so once there, always there). It records when
the live edge (the last segment) advanced, for stall figures. Every loop is bounded by `until`.
"""

from __future__ import annotations

import asyncio
import itertools
import posixpath
import re
import time
from dataclasses import dataclass, field

import aiohttp
import m3u8

_OWNER = re.compile(r"^# spillway-owner (\d+)$", re.MULTILINE)  # origin/fleet/fencing.py


@dataclass(kw_only=True)
class Track:
    versions: int = 0
    last_text: str = ""
    last_msn: int = -1
    last_edge: str = ""
    advances: list[float] = field(default_factory=list)  # monotonic times the live edge moved
    owners: list[tuple[float, int]] = field(default_factory=list)  # (first seen, owner token) per new owner
    regressions: list[str] = field(default_factory=list)
    dangling: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class EdgeWatch:
    base_url: str  # the bucket over HTTP: {base_url}/{key}
    keys: list[tuple[str, str]]  # (room, live playlist key)
    interval_s: float = 0.5
    tracks: dict[str, Track] = field(default_factory=dict)
    _present: set[str] = field(default_factory=set)

    async def run(self, http: aiohttp.ClientSession, until: float) -> None:
        await asyncio.gather(*(self._watch(http, room, key, until) for room, key in self.keys))

    async def _watch(self, http: aiohttp.ClientSession, room: str, key: str, until: float) -> None:
        track = self.tracks.setdefault(key, Track())
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                async with http.get(f"{self.base_url}/{key}") as r:
                    text = await r.text() if r.status == 200 else ""
            except (TimeoutError, aiohttp.ClientError):
                text = ""
            if text and text != track.last_text:
                await self._version(http, key, text, track)
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def _version(self, http: aiohttp.ClientSession, key: str, text: str, track: Track) -> None:
        seen_at = time.monotonic()
        track.versions += 1
        track.last_text = text
        playlist = m3u8.loads(text)
        msn = playlist.media_sequence or 0
        if msn < track.last_msn:
            track.regressions.append(f"{key}: media sequence {track.last_msn} -> {msn}")
        track.last_msn = max(track.last_msn, msn)
        names = [s.uri for s in playlist.segments] + [s.init_section.uri for s in playlist.segments if s.init_section]
        for uri in dict.fromkeys(names):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(key), uri))
            if target in self._present:
                continue
            async with http.head(f"{self.base_url}/{target}") as r:
                if r.status == 200:
                    self._present.add(target)
                else:
                    track.dangling.append(f"{key} names {target} ({r.status})")
        mark = _OWNER.search(text)
        if mark is not None and (not track.owners or track.owners[-1][1] != int(mark.group(1))):
            track.owners.append((seen_at, int(mark.group(1))))
        edge = playlist.segments[-1].uri if playlist.segments else ""
        if edge != track.last_edge:
            track.last_edge = edge
            track.advances.append(seen_at)

    def longest_stall(self, key: str, start: float, end: float) -> float:
        """The longest time the live edge stood still in an interval that overlaps [start, end] (monotonic):
        from the last advance before `start` (a kill) to the next, and so on; open at `end`."""
        times = self.tracks[key].advances
        before = [t for t in times if t < start]
        points = [*before[-1:], *(t for t in times if start <= t <= end), end]
        return max(b - a for a, b in itertools.pairwise(points)) if len(points) > 1 else end - start
