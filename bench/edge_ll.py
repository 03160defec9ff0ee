"""Low-latency pollers through one edge (not a test): do blocking reloads collapse, and how fast do they wake?

The real origin (gunicorn, 2 workers) with an LL room fed by the real transcoder (`--low-latency`, the
product's defaults), the nginx edge (origin/edge, 2 workers) in front, and N simulated LL-HLS players split
over client processes, each on its own keep-alive connection and each on one rendition (round robin). A
player behaves like hls.js in lowLatencyMode: it loads the playlist, then asks for the next part with a
blocking reload (`_HLS_msn`/`_HLS_part`), fetches the part the answer lists last, and asks for the next one.

Reported over the steady window (after WARMUP_S):
    upstream_per_part      blocking requests the edge sent the origin per (rendition, msn, part): the goal
                           is at most 1 (the cache lock collapses identical held requests); from nginx's
                           upstream log
    wake_spread_ms         a player's answer time − the first answer to the same request (p50/p99/max): what
                           collapsing costs the last of a thousand players
    part_fetch_ms          part GETs through the edge (immutable, from storage via the edge's cache)
    errors                 any non-200 answer or transport error, by kind

    .venv/bin/python bench/edge_ll.py                       # 1,000 pollers, 30 s
    .venv/bin/python bench/edge_ll.py --pollers 200 --seconds 15
Loopback only; every loop is bounded by the run's deadline and a per-request timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.edge import Connection, _raise_nofile  # noqa: E402
from origin.broadcast.playlist_ll import edge_of  # noqa: E402
from origin.edge.nginx_process import EdgeOptions, run_edge  # noqa: E402
from tests.support.hls_check import wait_for  # noqa: E402
from tests.support.origin_server import origin_server  # noqa: E402
from tests.support.transcoder_proc import transcoder  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ROOM = "edge-ll-bench"
TOKEN = "edge-ll-bench-ingest-token-0123456789"
WARMUP_S = 5.0
RAMP_S = 2.0
REQUEST_TIMEOUT_S = 10.0


def _last_part_uri(text: str) -> str | None:
    last = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-PART:") and 'URI="' in line:
            last = line.split('URI="', 1)[1].split('"', 1)[0]
    return last


async def _pollers(host: str, port: int, paths: list[str], count: int, offset: int, seconds: float) -> dict[str, Any]:
    started = time.monotonic()
    deadline, steady_from = started + seconds, started + WARMUP_S
    answers: dict[str, list[float]] = defaultdict(list)  # "path msn part" -> wall times of the answers
    errors: Counter[str] = Counter()
    part_ms: list[float] = []
    blocked_ms: list[float] = []
    requests = 0

    async def get(conn: Connection, path: str) -> tuple[int, bytes]:
        nonlocal requests
        requests += 1
        try:
            return await asyncio.wait_for(conn.get(path), timeout=REQUEST_TIMEOUT_S)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            conn.close()
            return -1, type(exc).__name__.encode()

    async def player(i: int) -> None:
        await asyncio.sleep(RAMP_S * i / max(1, count))
        path = paths[(offset + i) % len(paths)]
        conn = Connection(host, port)
        try:
            status, body = await get(conn, path)
            while status != 200 and time.monotonic() < deadline:
                errors[f"playlist:{status}"] += 1
                await asyncio.sleep(0.5)
                status, body = await get(conn, path)
            while time.monotonic() < deadline:
                edge = edge_of(body.decode(errors="replace"))
                msn, part = edge.last_msn + 1, edge.next_parts
                t0 = time.monotonic()
                status, body = await get(conn, f"{path}?_HLS_msn={msn}&_HLS_part={part}")
                t1 = time.monotonic()
                if status != 200:
                    errors[f"blocking:{status if status > 0 else body.decode()}"] += 1
                    await asyncio.sleep(0.2)
                    status, body = await get(conn, path)
                    continue
                if t0 >= steady_from:
                    answers[f"{path} {msn} {part}"].append(time.time())
                    blocked_ms.append((t1 - t0) * 1000)
                uri = _last_part_uri(body.decode(errors="replace"))
                if uri is not None and time.monotonic() < deadline:
                    p0 = time.monotonic()
                    got, _ = await get(conn, urljoin(path, uri))
                    if got != 200:
                        errors[f"part:{got}"] += 1
                    elif p0 >= steady_from:
                        part_ms.append((time.monotonic() - p0) * 1000)
        finally:
            conn.close()

    await asyncio.gather(*(player(i) for i in range(count)))
    return {"answers": dict(answers), "errors": dict(errors), "part_ms": part_ms, "blocked_ms": blocked_ms,
            "requests": requests}  # fmt: skip


def _client_main(host: str, port: int, paths: list[str], count: int, offset: int, seconds: float, out: Any) -> None:
    _raise_nofile()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    out.put(asyncio.run(_pollers(host, port, paths, count, offset, seconds)))


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, round(q * (len(s) - 1)))], 1)


def run(pollers: int, seconds: float, procs: int) -> dict[str, Any]:
    with origin_server(workers=2) as origin:
        origin.create_room(ROOM, ingest_token=TOKEN)
        options = EdgeOptions(origin_url=origin.base_url, worker_processes=2, worker_connections=pollers + 2048,
                              log_every_request=False)  # fmt: skip
        with run_edge(options) as edge, transcoder(origin=origin.base_url, room=ROOM, token=TOKEN,
                                                   extra=("--low-latency",)):  # fmt: skip
            base = edge.base_url
            master = f"{base}/rooms/{ROOM}/master.m3u8"
            wait_for(lambda: httpx.get(master).status_code == 200, timeout_s=40, what="the master playlist")
            text = httpx.get(master).text
            paths = [urljoin(f"/rooms/{ROOM}/master.m3u8", u) for u in text.splitlines() if u and u[0] != "#"]
            wait_for(lambda: all(httpx.get(f"{base}{p}").text.count("#EXTINF") >= 2 for p in paths), timeout_s=40,
                     what="LL segments")  # fmt: skip
            ctx = mp.get_context("spawn")
            queue = ctx.Queue()
            shares = [pollers // procs + (1 if i < pollers % procs else 0) for i in range(procs)]
            offsets = [sum(shares[:i]) for i in range(procs)]
            host, port = edge.params.listen_host, edge.port
            workers = [ctx.Process(target=_client_main, args=(host, port, paths, n, o, seconds, queue))
                       for n, o in zip(shares, offsets, strict=True)]  # fmt: skip
            begun = time.time()
            for w in workers:
                w.start()
            results = [queue.get(timeout=seconds + 120) for _ in workers]
            for w in workers:
                w.join(timeout=30)
            steady_from = begun + WARMUP_S + 1.0  # the processes' own steady window starts a little later
            upstream = edge.upstream_log()
    answers: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    part_ms: list[float] = []
    blocked_ms: list[float] = []
    for r in results:
        for k, v in r["answers"].items():
            answers[k].extend(v)
        errors.update(r["errors"])
        part_ms += r["part_ms"]
        blocked_ms += r["blocked_ms"]
    spread = [(t - min(times)) * 1000 for times in answers.values() for t in times]
    per_part: Counter[str] = Counter()
    for e in upstream:
        if e.uri in paths and "_HLS_part=" in e.args:
            q = dict(kv.split("=", 1) for kv in e.args.split("&") if "=" in kv)
            per_part[f"{e.uri} {q.get('_HLS_msn')} {q.get('_HLS_part')}"] += 1
    counts = [per_part.get(k, 0) for k in answers]  # 0: answered from the edge's cache, nothing held
    result = {
        "pollers": pollers,
        "renditions": len(paths),
        "seconds": seconds,
        "client_processes": procs,
        "steady_since_s": round(steady_from - begun, 1),
        "requests": sum(r["requests"] for r in results),
        "blocking_answers": sum(len(v) for v in answers.values()),
        "distinct_requests": len(answers),
        "upstream_per_part": {"max": max(counts, default=0), "mean": round(statistics.fmean(counts), 3)
                              if counts else None, "over_one": sum(1 for c in counts if c > 1)},
        "errors": dict(errors),
        "wake_spread_ms": {"p50": _pct(spread, 0.5), "p99": _pct(spread, 0.99), "max": _pct(spread, 1.0)},
        "blocked_ms": {"p50": _pct(blocked_ms, 0.5), "p99": _pct(blocked_ms, 0.99)},
        "part_fetch_ms": {"p50": _pct(part_ms, 0.5), "p99": _pct(part_ms, 0.99)},
    }  # fmt: skip
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    names = ["wake spread", "part fetch"]
    keys = ["wake_spread_ms", "part_fetch_ms"]
    for j, q in enumerate(["p50", "p99"]):
        ax.bar([i + 0.4 * j for i in range(len(keys))], [result[k][q] or 0 for k in keys], width=0.4, label=q)
    ax.set_xticks([i + 0.2 for i in range(len(keys))], names)
    ax.set_ylabel("ms")
    up = result["upstream_per_part"]
    ax.set_title(f"{result['pollers']} LL pollers through one edge: upstream/part max {up['max']}, "
                 f"errors {sum(result['errors'].values())}", fontsize=10)  # fmt: skip
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pollers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--procs", type=int, default=4)
    args = parser.parse_args()
    if not 1 <= args.pollers <= 20_000 or not 5 < args.seconds <= 600:
        parser.error("1 <= --pollers <= 20000 and 5 < --seconds <= 600")
    result = run(args.pollers, args.seconds, args.procs)
    print(json.dumps(result), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "edge_ll.json").write_text(json.dumps(result, indent=2))
    plot(result, RESULTS / "edge_ll.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
