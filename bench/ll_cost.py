"""What low-latency HLS costs the origin (not a test): CPU per room with and without parts, and part lateness.

For each mode (standard: ffmpeg's hls muxer PUTs 1 s segments; low latency: `--low-latency`, one chunked
fragmented-MP4 stream per rendition cut into ~0.2 s parts) and each room count: a fresh origin (gunicorn,
2 workers, the product's defaults) and N real transcoders (`spillway transcode`, the default 3-rendition
ladder, a generated tone in real time). After a warm-up the origin's CPU (master + workers, from /proc) is read
over the window, and per room one listener at the origin follows a64 with blocking reloads (low latency) or
polls it (standard).

    cpu_cores_per_room     origin CPU seconds per second, per room
    part_lateness_ms       low latency: a blocking reload's answer time − the part's end by the playlist's
                           PROGRAM-DATE-TIME (same machine, same clock): encoder and transfer delay, the
                           origin's publish and its wake-up, as the listener sees it (p50/p99)
    part_jitter_ms         the same minus the room's smallest: the origin's queueing and jitter (the goal,
                           "p99 part publish ≤ 100 ms", is read on this one: PDT is stamped by the origin)

The transcoders share the cores (≈ 4 % of a core each in ffmpeg): rooms per host here is a lower bound.

    .venv/bin/python bench/ll_cost.py --rooms 4 8 12 --seconds 30
Loopback only; every loop is bounded by the window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from origin.broadcast.playlist_ll import edge_of  # noqa: E402
from tests.support.hls_check import wait_for  # noqa: E402
from tests.support.live_push import process_cpu_seconds  # noqa: E402
from tests.support.origin_server import origin_server  # noqa: E402
from tests.support.transcoder_proc import transcoder  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TOKEN = "ll-cost-ingest-token-0123456789abcdef"
WARMUP_S = 8.0
GOAL_P99_MS = 100.0


def _part_ends(text: str) -> dict[tuple[int, int], float]:
    """(msn, part index) -> the part's end on the wall clock, from the segments' PROGRAM-DATE-TIME."""
    msn, k, start, offset, out = 0, 0, None, 0.0, {}
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            start, offset = datetime.fromisoformat(line.split(":", 1)[1].replace("Z", "+00:00")).timestamp(), 0.0
        elif line.startswith("#EXT-X-PART:") and start is not None:
            offset += float(line.split("DURATION=", 1)[1].split(",", 1)[0])
            out[(msn, k)] = start + offset
            k += 1
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",", 1)[0])
            msn, k = msn + 1, 0
            if start is not None:
                start, offset = start + duration, 0.0  # the next segment (the open one has no PDT tag of its own)
    return out


async def _follow(url: str, seconds: float, low_latency: bool) -> list[float]:
    """Per new part: answer time − the part's end (wall clock, PDT); standard rooms are polled, not timed."""
    deadline = time.monotonic() + seconds
    seen: set[tuple[int, int]] = set()
    lateness: list[float] = []
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(url)).text
        seen.update(_part_ends(text))
        while time.monotonic() < deadline:
            if not low_latency:
                await asyncio.sleep(1.0)
                await client.get(url)
                continue
            edge = edge_of(text)
            resp = await client.get(url, params={"_HLS_msn": edge.last_msn + 1, "_HLS_part": edge.next_parts})
            now = time.time()
            if resp.status_code != 200:
                await asyncio.sleep(0.2)
                text = (await client.get(url)).text
                continue
            text = resp.text
            for key, end in _part_ends(text).items():
                if key not in seen:
                    seen.add(key)
                    lateness.append(now - end)
    return lateness


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None}
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 1), "p99": round(ordered[int(0.99 * (len(ordered) - 1))], 1)}


def run_step(rooms: int, seconds: float, low_latency: bool) -> dict[str, Any]:
    with origin_server(workers=2) as origin, contextlib.ExitStack() as stack:
        names = [f"llcost-{i:03d}" for i in range(rooms)]
        for name in names:
            origin.create_room(name, ingest_token=TOKEN)
        extra = ("--low-latency",) if low_latency else ()
        for name in names:
            stack.enter_context(transcoder(origin=origin.base_url, room=name, token=TOKEN, extra=extra))
        urls = [f"{origin.base_url}/rooms/{n}/live/a64.m3u8" for n in names]
        wait_for(lambda: all(httpx.get(u).text.count("#EXTINF") >= 2 for u in urls), timeout_s=60, what="segments")
        time.sleep(WARMUP_S)
        cpu0, t0 = process_cpu_seconds(origin.process.pid), time.monotonic()

        async def all_rooms() -> list[list[float]]:
            return await asyncio.gather(*(_follow(u, seconds, low_latency) for u in urls))

        follows = asyncio.run(all_rooms())
        cpu = process_cpu_seconds(origin.process.pid) - cpu0
        wall = time.monotonic() - t0
    lateness = [e * 1000 for f in follows for e in f]
    jitter = [(e - min(f)) * 1000 for f in follows if f for e in f]
    step = {
        "mode": "low latency" if low_latency else "standard",
        "rooms": rooms,
        "window_s": round(wall, 1),
        "origin_cpu_cores": round(cpu / wall, 3),
        "cpu_cores_per_room": round(cpu / wall / rooms, 4),
        "parts_seen": len(lateness),
        "part_lateness_ms": _quantiles(lateness),
        "part_jitter_ms": _quantiles(jitter),
    }  # fmt: skip
    print(json.dumps(step), flush=True)
    return step


def plot(steps: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for mode in ("standard", "low latency"):
        mine = [s for s in steps if s["mode"] == mode]
        left.plot([s["rooms"] for s in mine], [100 * s["cpu_cores_per_room"] for s in mine], marker="o", label=mode)
    left.set_xlabel("rooms")
    left.set_ylabel("origin CPU per room (% of a core)")
    left.legend()
    left.grid(alpha=0.3)
    ll = [s for s in steps if s["mode"] == "low latency" and s["part_lateness_ms"]["p99"] is not None]
    right.plot([s["rooms"] for s in ll], [s["part_lateness_ms"]["p99"] for s in ll], marker="o", label="p99")
    right.plot([s["rooms"] for s in ll], [s["part_lateness_ms"]["p50"] for s in ll], marker="o", label="p50")
    right.axhline(GOAL_P99_MS, color="red", linestyle="--", label="goal p99 ≤ 100 ms")
    right.set_xlabel("rooms")
    right.set_ylabel("part lateness at the origin (ms)")
    right.legend()
    right.grid(alpha=0.3)
    fig.suptitle("Low-latency HLS at the origin (2 cores, transcoders on the same cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, nargs="+", default=[4, 8, 12])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    if not all(1 <= r <= 100 for r in args.rooms) or not 5 <= args.seconds <= 600:
        parser.error("1 <= rooms <= 100 and 5 <= --seconds <= 600")
    steps = [run_step(r, args.seconds, ll) for r in args.rooms for ll in (False, True)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ll_cost.json").write_text(json.dumps(steps, indent=2))
    plot(steps, RESULTS / "ll_cost.png")
    for r in args.rooms:
        std, low = (next(s for s in steps if s["rooms"] == r and s["mode"] == m) for m in ("standard", "low latency"))
        ratio = low["cpu_cores_per_room"] / std["cpu_cores_per_room"] if std["cpu_cores_per_room"] else float("nan")
        print(f"{r} rooms: LL/standard origin CPU per room = {ratio:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
