"""The bench pusher as a library: pre-encoded fMP4 segments PUT at real-time pace, every answer recorded.

Each room plays ffmpeg's part of docs/ingest.md (start, inits, one PUT per rendition per segment, end),
at a random phase, through one aiohttp session. Like ffmpeg, a PUT that fails is not retried: the log says
which segments were acknowledged (201), which is what the fleet tests compare the replay against.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from origin.broadcast import fmp4
from tests.support.pusher import new_session_id

LADDER = (("a48", 48_000, 1), ("a64", 64_000, 2), ("a128", 128_000, 2))
Media = dict[str, tuple[bytes, list[bytes]]]  # rendition -> (init, media segments)


def encode_segments(out: Path, seconds: float, *, segment_s: float, ladder: tuple[tuple[str, int, int], ...] = LADDER
                    ) -> Media:  # fmt: skip
    """Per rendition: init + media segments, encoded once and replayed by every room."""
    media: Media = {}
    for name, bitrate, channels in ladder:
        d = out / name
        d.mkdir(parents=True)
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
             f"anoisesrc=r=48000:a=0.08:c=pink:d={seconds}", "-c:a", "aac", "-b:a", str(bitrate),
             "-ac", str(channels), "-ar", "48000", "-f", "hls", "-hls_time", str(segment_s),
             "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
             "-hls_segment_filename", str(d / "%06d.m4s"), str(d / "index.m3u8")],
            check=True,
        )  # fmt: skip
        segs = [p.read_bytes() for p in sorted(d.glob("*.m4s"))][:-1]  # drop the short tail
        media[name] = ((d / "init.mp4").read_bytes(), segs)
    return media


_RETIMED: dict[tuple[str, int], bytes] = {}


def segment_at(rendition: str, segs: list[bytes], idx: int) -> bytes:
    """The encoded segments replayed in a loop, retimed so decode times keep increasing (the origin checks)."""
    key = (rendition, idx)
    if key not in _RETIMED:
        template = segs[idx % len(segs)]
        ticks = fmp4.inspect_segment(segs[0]).duration_ticks
        _RETIMED[key] = fmp4.retime_segment(template, base_decode_time=idx * ticks, sequence_number=idx + 1)
    return _RETIMED[key]


def process_cpu_seconds(master_pid: int) -> float:
    """CPU time of a process and its children (a gunicorn master and its workers), from /proc."""
    pids = [master_pid] + [int(p) for p in subprocess.run(
        ["pgrep", "-P", str(master_pid)], capture_output=True, text=True, check=False).stdout.split()]  # fmt: skip
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@dataclass(kw_only=True)
class PushLog:
    acked: set[tuple[str, str, str, int]] = field(default_factory=set)  # (room, session, rendition, index)
    failures: Counter[str] = field(default_factory=Counter)  # "503", "ClientConnectionError", ...
    failed_at: list[float] = field(default_factory=list)  # monotonic times of failed segment PUTs
    ack_s: list[float] = field(default_factory=list)  # PUT → 201, seconds
    sessions: dict[str, str] = field(default_factory=dict)  # room -> session

    def fail(self, what: str) -> None:
        self.failures[what] += 1
        self.failed_at.append(time.monotonic())


async def push_room(
    http: aiohttp.ClientSession, base_url: str, room: str, media: Media, *, token: str, t0: float, seconds: float,
    segment_s: float, log: PushLog,
) -> None:  # fmt: skip
    session = new_session_id() + f"-{random.randrange(16**6):06x}"
    log.sessions[room] = session
    auth = {"Authorization": f"Bearer {token}"}
    body = {"segment_seconds": segment_s, "renditions": [
        {"name": n, "bitrate": b, "channels": c, "sample_rate": 48_000} for n, b, c in LADDER if n in media]}
    async with http.post(f"{base_url}/ingest/{room}/{session}/start", json=body, headers=auth) as r:
        assert r.status == 201, await r.text()
    for name, (init, _) in media.items():
        async with http.put(f"{base_url}/ingest/{room}/{session}/{name}/init.mp4", data=init, headers=auth) as r:
            assert r.status == 201, await r.text()
    phase = random.uniform(0, segment_s)
    for idx in range(int(seconds // segment_s)):
        await asyncio.sleep(max(0.0, t0 + phase + idx * segment_s - time.monotonic()))
        for name, (_, segs) in media.items():  # like ffmpeg: renditions one after another
            sent = time.monotonic()
            try:
                async with http.put(f"{base_url}/ingest/{room}/{session}/{name}/{idx:06d}.m4s",
                                    data=segment_at(name, segs, idx), headers=auth) as r:  # fmt: skip
                    if r.status == 201:
                        log.acked.add((room, session, name, idx))
                        log.ack_s.append(time.monotonic() - sent)
                    else:
                        log.fail(str(r.status))
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.fail(type(exc).__name__)
    with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
        async with http.post(f"{base_url}/ingest/{room}/{session}/end", json={"reason": "eos"}, headers=auth):
            pass
