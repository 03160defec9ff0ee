"""Origin fleet figures (not a test): what coordination costs per segment, and how long a takeover takes.

Load: N rooms (default 10), the product's 3-rendition ladder and 1 s segments, pre-encoded fMP4 PUT at
real-time pace through the bench pusher (tests/support/live_push.py), S3 = moto, all on 127.0.0.1.

    setups   one instance, local coordination (files) — the baseline
             one instance, Redis coordination, Redis without persistence / with appendfsync always /
             with a replica and SPILLWAY_REDIS_WAIT_REPLICAS=1
             three instances behind nginx round-robin, Redis appendfsync always
    per setup  Redis round trips (read events) and script calls per segment PUT, Redis CPU and origin CPU
               (masters + workers, /proc) per segment, 201 latency (client) and publish latency (origins'
               histograms: recorded → live playlist naming it written) p50/p99
    takeover   three instances, 15 rooms; SIGKILL the busiest owner (and wipe its disk) at 8 s, the busiest
               survivor at 20 s; per moved room: kill → first live playlist version by its new owner (the
               owner mark, polled every 0.2 s), and the live edge's longest stall

    .venv/bin/python bench/fleet.py [--rooms 10] [--seconds 20]
Results: bench/results/fleet.json, fleet.png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.origin import histogram, histogram_delta, quantile  # noqa: E402
from tests.support.edge_watch import EdgeWatch  # noqa: E402
from tests.support.fleet import Fleet, fleet  # noqa: E402
from tests.support.live_push import Media, PushLog, encode_segments, process_cpu_seconds, push_room  # noqa: E402
from tests.support.moto_server import FAKE_AWS_ENV, moto_server  # noqa: E402
from tests.support.origin_server import origin_server  # noqa: E402

TOKEN = "bench-fleet-token-0123456789"
SEGMENT_S = 1.0


def redis_counters(url: str) -> dict[str, float]:
    with redis.Redis.from_url(url) as client:
        info = client.info("all")
    cpu = float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    scripts = float(info.get("cmdstat_evalsha", {}).get("calls", 0))
    return {"reads": float(info.get("total_reads_processed", 0)), "cpu": cpu, "evalsha": scripts}


async def push_all(base_url: str, rooms: list[str], media: Media, seconds: float, watch: EdgeWatch | None = None,
                   faults: tuple[tuple[float, Callable[[], None]], ...] = ()) -> PushLog:  # fmt: skip
    log = PushLog()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        t0 = time.monotonic() + 0.5

        async def fault_at(after_s: float, fn: Callable[[], None]) -> None:
            await asyncio.sleep(after_s)
            await asyncio.to_thread(fn)

        await asyncio.gather(
            *(push_room(http, base_url, r, media, token=TOKEN, t0=t0, seconds=seconds, segment_s=SEGMENT_S, log=log)
              for r in rooms),
            *([watch.run(http, t0 + seconds + 2)] if watch else []), *(fault_at(s, fn) for s, fn in faults),
        )  # fmt: skip
    return log


def create_rooms(base_url: str, rooms: list[str]) -> None:
    with httpx.Client(timeout=10) as client:
        for room in rooms:
            client.put(f"{base_url}/v1/rooms/{room}", json={"ingest_token": TOKEN, "realtime_cap": 0},
                       headers={"Authorization": "Bearer test-admin-token"}).raise_for_status()  # fmt: skip


def publish_histogram(urls: list[str]) -> list[tuple[float, float]]:
    total: dict[float, float] = {}
    for url in urls:
        for le, count in histogram(httpx.get(f"{url}/metrics", timeout=10).text):
            total[le] = total.get(le, 0.0) + count
    return sorted(total.items())


@dataclass(frozen=True, kw_only=True)
class Target:
    base_url: str  # where the pusher sends (an origin, or nginx in front of several)
    metrics_urls: list[str]
    master_pids: list[int]
    redis_url: str | None = None


def ms(seconds: float) -> float:
    return round(1000 * seconds, 1)


def measure(name: str, target: Target, *, rooms: list[str], media: Media, seconds: float) -> dict[str, object]:
    create_rooms(target.base_url, rooms)
    before_hist = publish_histogram(target.metrics_urls)
    before_cpu = sum(process_cpu_seconds(p) for p in target.master_pids)
    before_redis = redis_counters(target.redis_url) if target.redis_url else None
    started = time.monotonic()
    log = asyncio.run(push_all(target.base_url, rooms, media, seconds))
    wall = time.monotonic() - started
    time.sleep(2 * SEGMENT_S)  # the last publications land
    cpu = sum(process_cpu_seconds(p) for p in target.master_pids) - before_cpu
    after_hist = publish_histogram(target.metrics_urls)
    delta = histogram_delta(after_hist, before_hist)
    segments = len(log.acked)
    acks = sorted(log.ack_s)
    out: dict[str, object] = {
        "setup": name, "rooms": len(rooms), "segments": segments, "failed_puts": sum(log.failures.values()),
        "seconds": round(wall, 1), "origin_cpu_ms_per_segment": round(1000 * cpu / max(segments, 1), 2),
        "ack_p50_ms": ms(acks[len(acks) // 2]), "ack_p99_ms": ms(acks[int(len(acks) * 0.99)]),
        "publish_p50_ms": ms(quantile(delta, 0.5)), "publish_p99_ms": ms(quantile(delta, 0.99)),
    }  # fmt: skip
    if before_redis is not None and target.redis_url is not None:
        after = redis_counters(target.redis_url)
        out.update({
            "redis_round_trips_per_segment": round((after["reads"] - before_redis["reads"]) / max(segments, 1), 1),
            "redis_scripts_per_segment": round((after["evalsha"] - before_redis["evalsha"]) / max(segments, 1), 1),
            "redis_cpu_ms_per_segment": round(1000 * (after["cpu"] - before_redis["cpu"]) / max(segments, 1), 2),
        })  # fmt: skip
    print(json.dumps(out), flush=True)
    return out


@contextlib.contextmanager
def local_instance() -> Iterator[tuple[str, int]]:
    with moto_server(buckets=["bench-local"]) as moto, origin_server(workers=1, env={
        **FAKE_AWS_ENV, "SPILLWAY_STORAGE": "s3", "SPILLWAY_S3_BUCKET": "bench-local",
        "SPILLWAY_S3_ENDPOINT_URL": moto.endpoint_url, "SPILLWAY_SESSIONS_PER_MINUTE": "100"}) as origin:  # fmt: skip
        yield origin.base_url, origin.process.pid


def fleet_target(f: Fleet) -> Target:
    return Target(base_url=f.lb_url, metrics_urls=[f"http://127.0.0.1:{i.port}" for i in f.instances],
                  master_pids=[i.server.process.pid for i in f.instances if i.server], redis_url=f.redis_url)


def takeover(media: Media, seconds: float) -> dict[str, object]:
    rooms = [f"take-{i:02d}" for i in range(15)]
    with fleet(instances=3) as f:
        create_rooms(f.lb_url, rooms)
        watch = EdgeWatch(base_url=f.bucket_url, keys=[(r, f"rooms/{r}/live/a48.m3u8") for r in rooms], interval_s=0.2)
        kills: list[dict[str, Any]] = []

        def kill_busiest() -> None:
            owners = f.owners()
            alive = [i.index for i in f.instances if i.server is not None]
            index = max(alive, key=lambda i: sum(1 for o in owners.values() if o == i))
            kills.append({"at": time.monotonic(), "index": index, "rooms": sorted(r for r, o in owners.items()
                                                                                  if o == index)})  # fmt: skip
            f.kill(index, wipe=True)

        log = asyncio.run(push_all(f.lb_url, rooms, media, seconds, watch, ((8.0, kill_busiest), (20.0, kill_busiest))))
    takeovers, stalls = [], []
    for kill in kills:
        for room in kill["rooms"]:
            track = watch.tracks[f"rooms/{room}/live/a48.m3u8"]
            new = [t for t, _ in track.owners if t > kill["at"]]
            if new:
                takeovers.append(new[0] - kill["at"])
            stalls.append(watch.longest_stall(f"rooms/{room}/live/a48.m3u8", kill["at"], kill["at"] + 10))
    result = {
        "rooms_moved": len(takeovers), "kills": len(kills), "failed_puts": sum(log.failures.values()),
        "takeover_s": sorted(round(t, 2) for t in takeovers), "stall_s": sorted(round(s, 2) for s in stalls),
        "takeover_median_s": round(statistics.median(takeovers), 2) if takeovers else None,
        "takeover_max_s": round(max(takeovers), 2) if takeovers else None,
        "stall_max_s": round(max(stalls), 2) if stalls else None,
    }  # fmt: skip
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    rooms = [f"bench-{i:02d}" for i in range(args.rooms)]
    steps: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as env:
        env.enter_context(_fake_aws())
        media = encode_segments(Path(tmp), SEGMENT_S * 8 + 1, segment_s=SEGMENT_S)
        load = {"rooms": rooms, "media": media, "seconds": args.seconds}
        with local_instance() as (url, pid):
            steps.append(measure("1 instance, local (files)", Target(base_url=url, metrics_urls=[url],
                                                                     master_pids=[pid]), **load))  # type: ignore[arg-type]
        wait = {"SPILLWAY_REDIS_WAIT_REPLICAS": "1"}
        for name, instances, durable, replica, extra in (
            ("1 instance, Redis (no persistence)", 1, False, False, {}),
            ("1 instance, Redis (appendfsync always)", 1, True, False, {}),
            ("1 instance, Redis + replica, WAIT 1", 1, False, True, wait),
            ("3 instances, Redis (appendfsync always)", 3, True, False, {}),
        ):
            with fleet(instances=instances, redis_durable=durable, redis_replica=replica, extra_env=extra) as f:
                steps.append(measure(name, fleet_target(f), **load))  # type: ignore[arg-type]
        taken = takeover(media, 32.0)
    summary = {"segment_seconds": SEGMENT_S, "renditions": 3, "steps": steps, "takeover": taken}
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "fleet.json").write_text(json.dumps(summary, indent=2))
    _plot(summary, results / "fleet.png")
    return 0


@contextlib.contextmanager
def _fake_aws() -> Iterator[None]:
    from tests.support.moto_server import fake_aws_env

    with fake_aws_env():
        yield


SHORT = {
    "1 instance, local (files)": "1, files",
    "1 instance, Redis (no persistence)": "1, Redis\nno fsync",
    "1 instance, Redis (appendfsync always)": "1, Redis\nfsync always",
    "1 instance, Redis + replica, WAIT 1": "1, Redis\nWAIT 1",
    "3 instances, Redis (appendfsync always)": "3, Redis\nfsync always",
}


def _plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = summary["steps"]
    names = [SHORT.get(s["setup"], s["setup"]) for s in steps]
    fig, (cpu_ax, lat_ax, take_ax) = plt.subplots(1, 3, figsize=(15, 4.8))
    x = range(len(steps))
    cpu_ax.bar([i - 0.2 for i in x], [s["origin_cpu_ms_per_segment"] for s in steps], 0.4, label="origin")
    cpu_ax.bar([i + 0.2 for i in x], [s.get("redis_cpu_ms_per_segment", 0) for s in steps], 0.4, label="redis")
    cpu_ax.set_ylabel("CPU ms per segment PUT")
    lat_ax.plot(x, [s["ack_p50_ms"] for s in steps], marker="o", label="201 p50")
    lat_ax.plot(x, [s["ack_p99_ms"] for s in steps], marker="o", label="201 p99")
    lat_ax.plot(x, [s["publish_p50_ms"] for s in steps], marker="s", label="publish p50")
    lat_ax.plot(x, [s["publish_p99_ms"] for s in steps], marker="s", label="publish p99")
    lat_ax.set_ylabel("ms")
    for ax in (cpu_ax, lat_ax):
        ax.set_xticks(list(x), names, fontsize=8)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    taken = summary["takeover"]
    take_ax.hist([taken["takeover_s"], taken["stall_s"]], bins=12, label=["kill → new owner's playlist",
                                                                         "live edge stall"])  # fmt: skip
    take_ax.set_xlabel("seconds")
    take_ax.set_ylabel("rooms")
    take_ax.legend(fontsize=8)
    fig.suptitle(f"Origin fleet, {summary['steps'][0]['rooms']} rooms × 3 renditions, 1 s segments, moto S3 "
                 "(all on 2 shared cores)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
