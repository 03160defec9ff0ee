"""Cardinality and cost of /metrics with many rooms (not a test): the per-room series come and go with the
rooms, the workers' own series stay a fixed set.

In one process with PROMETHEUS_MULTIPROC_DIR set (as under gunicorn): N rooms get a real file journal each
(a session and a few published segments), the fleet metrics see N rooms' worth of events, then the per-room
collector is scraped while they are live, and again after they ended (past the grace). Prints series counts,
exposition size and scrape time. Bounded: N rooms, three scrapes.

    .venv/bin/python bench/metrics.py --rooms 1000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="spillway-bench-metrics-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from origin import metrics
from origin.broadcast.journal.files import FileJournal
from origin.broadcast.model import BroadcastState, Publication, RenditionSpec
from origin.broadcast.records import Published, SessionStarted, StateChanged
from origin.broadcast.states import RoomStates
from origin.ops.room_metrics import RoomCollector, RoomSampler, Seats
from origin.ops.room_stats import FileStatsStore, RoomStatsTracker

LADDER = tuple(RenditionSpec(name=n, bitrate=b, channels=2, sample_rate=48_000)
               for n, b in (("a48", 48_000), ("a64", 64_000), ("a128", 128_000)))  # fmt: skip


class Seated:
    def seats(self, room: str, now: float) -> Seats | None:
        return Seats(taken=10, cap=50, hls_recent=1000)


def scrape(collector: RoomCollector) -> dict[str, float]:
    started = time.perf_counter()
    body, _ = metrics.render([collector])
    took = time.perf_counter() - started
    lines = [line for line in body.decode().splitlines() if line and not line.startswith("#")]
    return {"series": len(lines), "room_series": sum('room="' in line for line in lines), "bytes": len(body),
            "scrape_ms": round(took * 1000, 1)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=1000)
    args = parser.parse_args()
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="spillway-bench-state-") as state_dir:
        journal = FileJournal(Path(state_dir))
        stats = FileStatsStore(journal.room_dir)
        m = metrics.Metrics(stats=RoomStatsTracker(stats), storage_backend="filesystem")
        for i in range(args.rooms):
            room = f"room{i:05d}"
            pubs = tuple(Publication(rendition=r.name, msn=k, session="s1", idx=k, duration_s=1.0, pdt=now - 5 + k,
                                     discontinuity=False, size=8000, received_at=now - 5 + k)
                         for r in LADDER for k in range(5))  # fmt: skip
            journal.append(room, [SessionStarted(session="s1", at=now - 6, segment_seconds=1.0, ladder=LADDER),
                                  Published(publications=pubs)])  # fmt: skip
            m.session_started(room)
            for _ in pubs:
                m.received(room)
                m.published(room, 0.02, now)
            m.live_edge(room, now)
            m.room_state(room, "live", now)
        clock = [now]
        sampler = RoomSampler(states=RoomStates(journal), stats=stats, seats=Seated(), clock=lambda: clock[0],
                              max_rooms=args.rooms)  # fmt: skip
        collector = RoomCollector(sampler)
        live = scrape(collector)
        for i in range(args.rooms):
            journal.append(f"room{i:05d}", [StateChanged(state=BroadcastState.ENDED, at=now)])
        just_ended = scrape(collector)
        clock[0] = now + 301.0
        long_ended = scrape(collector)
        again = scrape(collector)
    print(json.dumps({"rooms": args.rooms, "live": live, "just_ended": just_ended, "ended_past_grace": long_ended,
                      "next_scrape": again}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
