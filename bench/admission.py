"""Admission under load: join decisions/s and latency per backend, and a status.json-first crowd (not a test).

1. Decisions over HTTP: a real origin (gunicorn, --workers uvicorn workers) per backend; at each concurrency,
   C keep-alive clients POST joins for --seconds to a room below its cap (every join takes a seat: a backend
   write and a signed token) and to a room above it (every join is an HLS answer). Reports decisions/s and
   p50/p99 latency seen by the clients (which share the machine's cores with the origin).
2. Decisions in-process: AdmissionService.join on each backend without HTTP, one thread (the policy's own cost).
3. Crowd: --crowd listeners arrive over --arrival-seconds at a cap-100 room behind the nginx edge. Each reads
   status.json from the edge (1 s TTL) and calls the join endpoint only while it says `realtime.open`; the
   rest go straight to HLS. Reports the share of join attempts past the cap that reached the origin (goal 0%)
   next to the naive flow (everyone calls join: 100%), and how many status.json reads reached the origin.

Loopback only; every loop is bounded in count and time.

    .venv/bin/python bench/admission.py                      # full run, ~3 minutes
    .venv/bin/python bench/admission.py --quick              # smoke run, ~1 minute
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import httpx
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from origin.admission.backend import AdmissionBackend  # noqa: E402
from origin.admission.publisher import StatusPublisher  # noqa: E402
from origin.admission.redis_backend import RedisAdmission, RedisRoomRegistry, connect  # noqa: E402
from origin.admission.setup import AdmissionDeps, build_service  # noqa: E402
from origin.admission.sqlite_backend import SqliteAdmission, SqliteRoomRegistry  # noqa: E402
from origin.admission.status import IdleBroadcastView  # noqa: E402
from origin.edge.nginx_process import EdgeOptions, run_edge  # noqa: E402
from origin.rooms import Room, RoomRegistry  # noqa: E402
from origin.storage.filesystem import FilesystemStorage  # noqa: E402
from tests.support.origin_server import ADMIN_TOKEN, origin_server  # noqa: E402
from tests.support.redis_server import run_redis  # noqa: E402

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SEAT_SECRET = "bench-seat-secret-0123456789abcdef0123"
GOAL_RATE = 5_000.0
GOAL_P99_S = 0.050
MAX_CAP = 100_000
MAX_REQUESTS_PER_STEP = 200_000


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _put_room(base: str, room: str, cap: int) -> None:
    r = httpx.put(f"{base}/v1/rooms/{room}", json={"realtime_cap": cap}, headers=AUTH, timeout=10)
    r.raise_for_status()


class _KeepAliveClient(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection sending the same request back to back (a lean load generator:
    aiohttp spends more CPU per request than the origin's join path, and both share this machine's cores)."""

    def __init__(self, request: bytes, sink: list[tuple[float, int]], deadline: float) -> None:
        self.request, self.sink, self.deadline = request, sink, deadline
        self.buf = bytearray()
        self.t0 = 0.0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.t0 = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buf[:end]).lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(self.buf) < end + 4 + length:
                return
            del self.buf[: end + 4 + length]
            self.sink.append((time.perf_counter() - self.t0, int(head[9:12])))
            if time.monotonic() < self.deadline and len(self.sink) < MAX_REQUESTS_PER_STEP:
                self._send()
            else:
                self._finish()
                return

    def _finish(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _load(url: str, concurrency: int, seconds: float) -> tuple[list[float], Counter[int]]:
    """`concurrency` keep-alive clients POSTing back to back until `seconds` pass (or the count cap)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: 0\r\n\r\n".encode()
    sink: list[tuple[float, int]] = []
    deadline = time.monotonic() + seconds
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(concurrency):
        _, client = await loop.create_connection(lambda: _KeepAliveClient(request, sink, deadline), host, port)
        clients.append(client)
    await asyncio.wait_for(asyncio.gather(*(c.done for c in clients)), seconds + 30)
    return [lat for lat, _ in sink], Counter(status for _, status in sink)


def http_decisions(base: str, *, backend: str, concurrencies: list[int], seconds: float) -> list[dict[str, object]]:
    steps: list[dict[str, object]] = []
    for mode in ("below_cap", "above_cap"):
        for c in concurrencies:
            room = f"bench-{mode.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
            _put_room(base, room, MAX_CAP if mode == "below_cap" else 1)
            if mode == "above_cap":
                httpx.post(f"{base}/v1/rooms/{room}/listeners", timeout=10).raise_for_status()  # take the seat
            uvloop.run(_load(f"{base}/v1/rooms/{room}/listeners", min(c, 8), 0.5))  # warm up the workers
            started = time.monotonic()
            latencies, statuses = uvloop.run(_load(f"{base}/v1/rooms/{room}/listeners", c, seconds))
            elapsed = time.monotonic() - started
            latencies.sort()
            want = 201 if mode == "below_cap" else 200
            step = {
                "backend": backend,
                "mode": mode,
                "concurrency": c,
                "requests": len(latencies),
                "decisions_per_s": round(len(latencies) / elapsed, 1),
                "p50_ms": round(_pct(latencies, 0.50) * 1000, 2),
                "p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
                "unexpected_statuses": {str(k): v for k, v in statuses.items() if k != want},
            }
            print(
                f"  {backend:8} {mode:9} c={c:4}  {step['decisions_per_s']:8.0f}/s  "
                f"p50 {step['p50_ms']:6.1f} ms  p99 {step['p99_ms']:6.1f} ms  {dict(statuses)}",
                flush=True,
            )
            steps.append(step)
    return steps


@contextlib.contextmanager
def _backend(kind: str, tmp: Path, redis_url: str) -> Iterator[tuple[AdmissionBackend, RoomRegistry]]:
    if kind == "embedded":
        sqlite = SqliteAdmission.open(tmp / f"state-{uuid.uuid4().hex[:6]}")
        yield sqlite, SqliteRoomRegistry(sqlite.db)
        sqlite.close()
    else:
        client = connect(redis_url)
        prefix = f"bench-{uuid.uuid4().hex[:6]}:"
        yield RedisAdmission(client, prefix=prefix), RedisRoomRegistry(client, prefix=prefix)
        client.close()


def inprocess_decisions(kind: str, tmp: Path, redis_url: str, *, joins: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    with _backend(kind, tmp, redis_url) as (backend, rooms):
        storage = FilesystemStorage(tmp / "inproc-storage")
        deps = AdmissionDeps(
            rooms=rooms,
            backend=backend,
            publisher=StatusPublisher(
                storage=storage,
                rooms=rooms,
                backend=backend,
                broadcasts=IdleBroadcastView(),
                public_base_url="http://127.0.0.1",
                api_url="http://127.0.0.1",
            ),
            storage=storage,
            broadcasts=IdleBroadcastView(),
            seat_token_secret=SEAT_SECRET.encode(),
            admin_token="",
            public_base_url="http://127.0.0.1",
            api_url="http://127.0.0.1",
            lease_s=30.0,
            join_rate_per_minute=10**9,
        )
        svc = build_service(deps)
        for mode, cap in (("below_cap", MAX_CAP), ("above_cap", 1)):
            room = f"inproc-{mode.replace('_', '-')}"
            rooms.put(Room(id=room, ingest_token="t" * 32, realtime_cap=cap))
            if mode == "above_cap":
                svc.join(room, "10.1.1.1", time.time())  # take the only seat: every timed join is past the cap
            n = joins if mode == "above_cap" else min(joins, MAX_CAP - 1)
            lat: list[float] = []
            started = time.perf_counter()
            for i in range(n):
                t0 = time.perf_counter()
                svc.join(room, f"10.0.{i % 250}.{i % 199}", time.time())
                lat.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - started
            lat.sort()
            row = {
                "backend": kind,
                "mode": mode,
                "joins": n,
                "decisions_per_s": round(n / elapsed, 1),
                "p50_us": round(_pct(lat, 0.5) * 1e6, 1),
                "p99_us": round(_pct(lat, 0.99) * 1e6, 1),
            }
            print(f"  {kind:8} {mode:9} in-process {row['decisions_per_s']:9.0f}/s  p99 {row['p99_us']} µs")
            out.append(row)
    return out


async def _crowd(edge: str, room: str, *, listeners: int, arrival_s: float, status_first: bool) -> dict[str, int]:
    counts: Counter[str] = Counter()
    timeout = aiohttp.ClientTimeout(total=20)
    connector = aiohttp.TCPConnector(limit=512)
    rng = random.Random(7)
    arrivals = sorted(rng.uniform(0, arrival_s) for _ in range(listeners))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def listener(at: float, start: float) -> None:
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            if status_first:
                async with session.get(f"{edge}/rooms/{room}/status.json") as resp:
                    status = await resp.json(content_type=None)
                counts["status_reads"] += 1
                if not status["realtime"]["open"]:
                    counts["hls_direct"] += 1
                    return
            async with session.post(f"{edge}/v1/rooms/{room}/listeners") as resp:
                answer = await resp.json(content_type=None)
            counts["join_calls"] += 1
            counts["seats" if answer["mode"] == "realtime" else "hls_from_origin"] += 1

        start = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*(listener(a, start) for a in arrivals)), arrival_s + 30)
    return dict(counts)


def crowd_sim(base: str, *, backend: str, listeners: int, arrival_s: float, cap: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with run_edge(EdgeOptions(origin_url=base, worker_processes=1)) as edge:
        for flow in ("status_first", "naive"):
            room = f"crowd-{flow.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
            _put_room(base, room, cap)
            time.sleep(1.5)  # the room's first status.json is out
            before = sum(1 for e in edge.upstream_log() if e.uri.endswith(f"{room}/status.json"))
            counts = asyncio.run(
                _crowd(
                    edge.base_url, room, listeners=listeners, arrival_s=arrival_s, status_first=flow == "status_first"
                )
            )
            status_upstream = sum(1 for e in edge.upstream_log() if e.uri.endswith(f"{room}/status.json")) - before
            past_cap = listeners - counts.get("seats", 0)
            share = counts.get("hls_from_origin", 0) / past_cap if past_cap else 0.0
            row = {
                "backend": backend,
                "flow": flow,
                "listeners": listeners,
                "arrival_seconds": arrival_s,
                "cap": cap,
                **counts,
                "past_cap": past_cap,
                "share_past_cap_reaching_origin": round(share, 4),
                "status_reads_reaching_origin": status_upstream,
            }
            print(
                f"  {backend:8} {flow:12} seats {counts.get('seats', 0)}/{cap}"
                f"  join calls {counts.get('join_calls', 0)}"
                f"  past-cap joins at origin {counts.get('hls_from_origin', 0)}/{past_cap} = {share:.1%}"
                f"  status.json reads {counts.get('status_reads', 0)} (origin saw {status_upstream})",
                flush=True,
            )
            rows.append(row)
    return rows


def _plot(result: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps: list[dict[str, object]] = result["http"]  # type: ignore[assignment]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for backend in sorted({str(s["backend"]) for s in steps}):
        for mode, style in (("below_cap", "-o"), ("above_cap", "--s")):
            rows = [s for s in steps if s["backend"] == backend and s["mode"] == mode]
            xs = [s["concurrency"] for s in rows]
            ax1.plot(xs, [s["decisions_per_s"] for s in rows], style, label=f"{backend} {mode}")
            ax2.plot(xs, [s["p99_ms"] for s in rows], style, label=f"{backend} {mode}")
    ax1.axhline(GOAL_RATE, color="grey", linestyle=":", label="goal 5,000/s")
    ax2.axhline(GOAL_P99_S * 1000, color="grey", linestyle=":", label="goal p99 50 ms")
    for ax, title, ylabel in ((ax1, "Join decisions per second", "decisions/s"), (ax2, "p99 latency", "ms")):
        ax.set_xscale("log", base=2)
        if ax is ax2:
            ax.set_yscale("log")
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Spillway admission, {result['workers']} uvicorn workers, {result['cpus']} CPUs (client shares them)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["embedded", "redis"], choices=["embedded", "redis"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128, 512])
    parser.add_argument("--seconds", type=float, default=4.0, help="per concurrency step")
    parser.add_argument("--crowd", type=int, default=3_000, help="listeners in the simulated crowd")
    parser.add_argument("--arrival-seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter steps")
    parser.add_argument("--replot", action="store_true", help="redraw admission.png from admission.json")
    args = parser.parse_args()
    if args.replot:
        results_dir = ROOT / "bench" / "results"
        _plot(json.loads((results_dir / "admission.json").read_text()), results_dir / "admission.png")
        return 0
    if args.quick:
        args.concurrency, args.seconds, args.crowd, args.arrival_seconds = [8, 128], 2.0, 1_000, 5.0
    result: dict[str, object] = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "workers": args.workers,
        "seconds_per_step": args.seconds,
        "load_average_before": os.getloadavg(),
        "goal": {"decisions_per_s": GOAL_RATE, "p99_ms": GOAL_P99_S * 1000, "share_past_cap_reaching_origin": 0.0},
        "http": [],
        "in_process": [],
        "crowd": [],
    }
    with tempfile.TemporaryDirectory(prefix="spillway-bench-admission-") as tmp_dir:
        tmp = Path(tmp_dir)
        with run_redis(tmp) as redis_server:
            for backend in args.backends:
                env = {
                    "SPILLWAY_ADMISSION_BACKEND": backend,
                    "SPILLWAY_REDIS_URL": redis_server.url,
                    "SPILLWAY_JOIN_RATE_PER_MINUTE": str(10**9),
                    "SPILLWAY_SEAT_TOKEN_SECRET": SEAT_SECRET,
                    "SPILLWAY_LOG_LEVEL": "warning",
                }
                print(f"{backend}: HTTP join decisions ({args.workers} workers)", flush=True)
                with origin_server(workers=args.workers, env=env) as server:
                    result["http"] += http_decisions(  # type: ignore[operator]
                        server.base_url, backend=backend, concurrencies=args.concurrency, seconds=args.seconds
                    )
                    print(f"{backend}: status.json-first crowd", flush=True)
                    result["crowd"] += crowd_sim(  # type: ignore[operator]
                        server.base_url,
                        backend=backend,
                        listeners=args.crowd,
                        arrival_s=args.arrival_seconds,
                        cap=100,
                    )
                print(f"{backend}: in-process decisions", flush=True)
                result["in_process"] += inprocess_decisions(  # type: ignore[operator]
                    backend, tmp, redis_server.url, joins=20_000 if not args.quick else 5_000
                )
    result["load_average_after"] = os.getloadavg()
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "admission.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(result, results_dir / "admission.png")
    print(f"wrote {results_dir / 'admission.json'} and admission.png")
    http_rows: list[dict[str, object]] = result["http"]  # type: ignore[assignment]
    best = max(
        (s for s in http_rows if float(s["p99_ms"]) <= GOAL_P99_S * 1000),
        key=lambda s: float(s["decisions_per_s"]),
        default=None,
    )
    if best:
        print(
            f"best rate with p99 ≤ 50 ms: {best['decisions_per_s']}/s "
            f"({best['backend']} {best['mode']} c={best['concurrency']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
