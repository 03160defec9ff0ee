"""Edge offload under simulated listeners (not a test): how many requests reach storage as the audience grows.

For each listener count: a fresh counting upstream (tests/cdn_config/upstream.py — it counts every request it
receives) with a live room whose writer appends a 2 s segment (64 kb/s → 16 KB) and rewrites the media
playlist every 2 s; a fresh nginx edge (origin/edge, 2 workers) in front of it; and N simulated players split
over client processes, each player on its own keep-alive connection. A player behaves like hls.js on a live
stream: it loads the playlist, then the init segment and the last three segments, then re-polls the playlist
every TTL (origin.contract.cache_policy LIVE_PLAYLIST_MAX_AGE_S) and fetches each new segment once. Reported per level
over a steady window: edge requests/s (nginx stub_status), upstream requests/s (counted at the upstream),
offload, client errors and latencies, and how far players fell behind their schedule (client CPU saturation
shows up there, so the achieved request rate is reported as measured, not as the target). Loopback only;
every loop is bounded.

    .venv/bin/python bench/edge.py                      # 1k, 5k, 10k listeners, 25 s each
    .venv/bin/python bench/edge.py --listeners 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from origin.contract import layout  # noqa: E402
from origin.contract.cache_policy import LIVE_PLAYLIST_MAX_AGE_S, ObjectKind, headers_for  # noqa: E402
from origin.edge.nginx_process import EdgeOptions, run_edge  # noqa: E402
from tests.cdn_config.upstream import CountingStore  # noqa: E402

ROOM = "bench-room"
SESSION = "bench-session-01"
RENDITION = "a64"
SEGMENT_S = 2.0
BITRATE_BPS = 64_000
WINDOW_SEGMENTS = 6
START_BACK_SEGMENTS = 3  # players start three target durations from the live edge
RAMP_S = 3.0  # players join spread over this long
WARMUP_S = 5.0  # excluded from the steady window (ramp + first fetches)
RESULTS = ROOT / "bench" / "results"


# ---- upstream: a live room ---------------------------------------------------------------------------
class LiveWriter:
    """Appends a segment and rewrites the live playlist every SEGMENT_S, like the origin publishing."""

    def __init__(self, store: CountingStore) -> None:
        self.store = store
        self.index = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.segment_bytes = int(BITRATE_BPS * SEGMENT_S / 8)

    def _segment(self, index: int) -> bytes:
        return index.to_bytes(4, "big") * (self.segment_bytes // 4)

    def publish_next(self) -> None:
        key = layout.media_segment(ROOM, SESSION, RENDITION, self.index)
        self.store.put(key, self._segment(self.index), headers_for(ObjectKind.SEGMENT))
        first = max(0, self.index - WINDOW_SEGMENTS + 1)
        media = f"../media/{SESSION}/{RENDITION}"
        lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{int(SEGMENT_S)}",
                 f"#EXT-X-MEDIA-SEQUENCE:{first}", f'#EXT-X-MAP:URI="{media}/init.mp4"']
        for i in range(first, self.index + 1):
            lines += [f"#EXTINF:{SEGMENT_S:.3f},", f"{media}/{i:06d}.m4s"]
        self.store.put(layout.live_playlist(ROOM, RENDITION), ("\n".join(lines) + "\n").encode(),
                       headers_for(ObjectKind.LIVE_PLAYLIST))
        self.index += 1

    def start(self) -> None:
        self.store.put(layout.init_segment(ROOM, SESSION, RENDITION), b"\0" * 700, headers_for(ObjectKind.INIT))
        for _ in range(WINDOW_SEGMENTS):
            self.publish_next()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SEGMENT_S):
            self.publish_next()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# ---- clients: simulated players --------------------------------------------------------------------------
@dataclass
class ClientStats:
    requests: dict[str, int] = field(default_factory=lambda: {"playlist": 0, "segment": 0, "init": 0})
    errors: dict[str, int] = field(default_factory=dict)
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {"playlist": [], "segment": []})
    poll_lateness_ms: list[float] = field(default_factory=list)  # actual poll start − scheduled start
    bytes: int = 0
    steady_requests: int = 0


def _raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Connection:
    """One player's keep-alive HTTP/1.1 connection to the edge: a minimal client, because aiohttp tops out
    near 2,800 requests/s on this 2-core machine (measured) — far below what 10k players ask for."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            body = await self.reader.readexactly(int(lower[at + 17:end]))
        elif b"transfer-encoding: chunked" in lower:
            chunks = []
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            await self.reader.readexactly(2)
            body = b"".join(chunks)
        else:
            body = b""
        if b"connection: close" in lower:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _players(host: str, port: int, count: int, seconds: float, stats: ClientStats) -> None:
    playlist_path = "/" + layout.live_playlist(ROOM, RENDITION)
    started = time.monotonic()
    deadline = started + seconds
    steady_from = started + WARMUP_S

    async def fetch(conn: Connection, path: str, kind: str) -> bytes | None:
        t0 = time.monotonic()
        try:
            status, body = await asyncio.wait_for(conn.get(path), timeout=10)
            ok = status == 200
            label = str(status)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            conn.close()
            ok, body, label = False, b"", type(exc).__name__
        stats.requests[kind] += 1
        if t0 >= steady_from:
            stats.steady_requests += 1
        if not ok:
            stats.errors[f"{kind}:{label}"] = stats.errors.get(f"{kind}:{label}", 0) + 1
            return None
        stats.bytes += len(body)
        if kind in stats.latencies_ms and t0 >= steady_from:
            stats.latencies_ms[kind].append((time.monotonic() - t0) * 1000)
        return body

    async def player(delay: float) -> None:
        await asyncio.sleep(delay)
        conn = Connection(host, port)
        seen: set[str] = set()
        first = True
        next_poll = time.monotonic()
        try:
            while next_poll < deadline:
                now = time.monotonic()
                if next_poll > now:
                    await asyncio.sleep(next_poll - now)
                polled_at = time.monotonic()
                if not first and polled_at >= steady_from:
                    stats.poll_lateness_ms.append((polled_at - next_poll) * 1000)
                body = await fetch(conn, playlist_path, "playlist")
                if body is not None:
                    text = body.decode(errors="replace")
                    uris = [line for line in text.splitlines() if line and not line.startswith("#")]
                    if first:
                        init = text.split('URI="', 1)[1].split('"', 1)[0]
                        await fetch(conn, urljoin(playlist_path, init), "init")
                        seen.update(uris[:-START_BACK_SEGMENTS])
                        first = False
                    for uri in uris:
                        if uri not in seen and time.monotonic() < deadline:
                            seen.add(uri)
                            await fetch(conn, urljoin(playlist_path, uri), "segment")
                next_poll = polled_at + LIVE_PLAYLIST_MAX_AGE_S
        finally:
            conn.close()

    await asyncio.gather(*(player(RAMP_S * i / count) for i in range(count)))


def _client_main(host: str, port: int, count: int, seconds: float, out: Any) -> None:
    _raise_nofile()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    stats = ClientStats()
    asyncio.run(_players(host, port, count, seconds, stats))
    out.put(asdict(stats))


# ---- one level --------------------------------------------------------------------------------------------
def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def run_level(listeners: int, seconds: float, procs: int) -> dict[str, Any]:
    with CountingStore() as store:
        writer = LiveWriter(store)
        writer.start()
        options = EdgeOptions(origin_url=store.url, worker_processes=2, worker_connections=listeners + 2048,
                              log_every_request=False)
        with run_edge(options) as edge:
            ctx = mp.get_context("spawn")
            queue = ctx.Queue()
            shares = [listeners // procs + (1 if i < listeners % procs else 0) for i in range(procs)]
            host, port = edge.params.listen_host, edge.port
            workers = [ctx.Process(target=_client_main, args=(host, port, n, seconds, queue)) for n in shares]
            t_start = time.monotonic()
            for w in workers:
                w.start()
            samples: list[tuple[float, int, int]] = []  # (t, edge requests, upstream requests)
            while time.monotonic() < t_start + seconds + 1:
                samples.append((time.monotonic() - t_start, edge.status().requests, store.count()))
                time.sleep(1.0)
            results = [queue.get(timeout=120) for _ in workers]
            for w in workers:
                w.join(timeout=30)
            writer.stop()
            upstream = store.requests()
    steady = [s for s in samples if WARMUP_S <= s[0] <= seconds]
    (t0, e0, u0), (t1, e1, u1) = steady[0], steady[-1]
    edge_rps = (e1 - e0) / (t1 - t0)
    upstream_rps = (u1 - u0) / (t1 - t0)
    merged = ClientStats()
    for r in results:
        for k, v in r["requests"].items():
            merged.requests[k] += v
        for k, v in r["errors"].items():
            merged.errors[k] = merged.errors.get(k, 0) + v
        for k, v in r["latencies_ms"].items():
            merged.latencies_ms[k].extend(v)
        merged.poll_lateness_ms.extend(r["poll_lateness_ms"])
        merged.bytes += r["bytes"]
    target_rps = listeners * (1 / LIVE_PLAYLIST_MAX_AGE_S + 1 / SEGMENT_S)
    by_path: dict[str, int] = {}
    for req in upstream:
        kind = "playlist" if req.path.endswith(".m3u8") else "segment"
        by_path[kind] = by_path.get(kind, 0) + 1
    result = {
        "listeners": listeners,
        "seconds": seconds,
        "client_processes": procs,
        "steady_window_s": round(t1 - t0, 1),
        "target_edge_rps": round(target_rps),
        "edge_rps": round(edge_rps, 1),
        "upstream_rps": round(upstream_rps, 2),
        "offload_pct": round(100 * (1 - upstream_rps / edge_rps), 3) if edge_rps else None,
        "upstream_requests_total": len(upstream),
        "upstream_by_kind": by_path,
        "client_requests": merged.requests,
        "client_errors": merged.errors,
        "error_rate_pct": round(100 * sum(merged.errors.values()) / max(1, sum(merged.requests.values())), 3),
        "egress_mbps": round(merged.bytes * 8 / seconds / 1e6, 1),
        "playlist_latency_ms": {"p50": _percentile(merged.latencies_ms["playlist"], 0.5),
                                "p99": _percentile(merged.latencies_ms["playlist"], 0.99)},
        "segment_latency_ms": {"p50": _percentile(merged.latencies_ms["segment"], 0.5),
                               "p99": _percentile(merged.latencies_ms["segment"], 0.99)},
        "poll_lateness_ms": {"p50": _percentile(merged.poll_lateness_ms, 0.5),
                             "p99": _percentile(merged.poll_lateness_ms, 0.99),
                             "mean": round(statistics.fmean(merged.poll_lateness_ms), 1)
                             if merged.poll_lateness_ms else None},
    }
    print(json.dumps(result), flush=True)
    return result


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["listeners"] for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(xs, [r["edge_rps"] for r in results], "o-", label="edge requests/s (achieved)")
    left.plot(xs, [r["target_edge_rps"] for r in results], "o--", color="grey",
              label="edge requests/s (players' target)")
    left.set_xlabel("simulated listeners")
    left.set_ylabel("requests/s")
    left.set_title("Listener load at the nginx edge")
    left.legend()
    right.plot(xs, [r["upstream_rps"] for r in results], "o-", color="tab:red", label="requests/s reaching storage")
    for r in results:
        right.annotate(f"{r['offload_pct']}% offload", (r["listeners"], r["upstream_rps"]),
                       textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    right.set_ylim(0, max(2.0, max(r["upstream_rps"] for r in results) * 2))
    right.set_xlabel("simulated listeners")
    right.set_title("Upstream (storage) load: flat")
    right.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--out", default=str(RESULTS / "edge"), help="results path without extension")
    args = parser.parse_args()
    if args.seconds <= WARMUP_S + 3:
        parser.error(f"--seconds must exceed {WARMUP_S + 3}")
    _raise_nofile()
    results = [run_level(n, args.seconds, args.procs) for n in args.listeners]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"cpus": os.cpu_count(), "segment_s": SEGMENT_S, "bitrate_bps": BITRATE_BPS,
            "playlist_poll_s": LIVE_PLAYLIST_MAX_AGE_S, "nginx_workers": 2}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "levels": results}, indent=2) + "\n")
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
