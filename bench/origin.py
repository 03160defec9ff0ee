"""Origin publish latency under N rooms pushing pre-encoded segments at real-time pace (not a test).

For each N: a fresh 2-worker origin (gunicorn), N rooms with the default 3-rendition ladder and the product's
segment length (--segment-seconds, default 1 s), each room PUTting its three segments once per segment
length (random phase), for --seconds, paced as the transcoder sends them (--client, CLIENTS below).
Publish latency = segment received at the origin → the playlist naming it written to storage, from the origin's
own histogram. Reports p50/p99 per N, origin CPU (master + workers, from /proc) per segment, and the largest N
with p99 ≤ 250 ms, every PUT accepted and no slot filled. Loopback only; every loop is bounded.

    .venv/bin/python bench/origin.py --backend filesystem --rooms 50 100 200 300 500
    .venv/bin/python bench/origin.py --backend s3 --rooms 5 10 20 40
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.put_client import PutClient, PutError  # noqa: E402
from origin.contract.ingest import SEGMENT_SECONDS_DEFAULT, WAVE_HEADER, format_wave  # noqa: E402
from origin.settings import Settings  # noqa: E402
from tests.support.live_push import encode_segments, process_cpu_seconds, segment_at  # noqa: E402
from tests.support.metrics_text import counter_total  # noqa: E402
from tests.support.moto_server import FAKE_AWS_ENV, moto_server  # noqa: E402
from tests.support.origin_server import origin_server  # noqa: E402
from tests.support.pusher import new_session_id  # noqa: E402

LADDER = (("a48", 48_000, 1), ("a64", 64_000, 2), ("a128", 128_000, 2))
SEGMENT_S = SEGMENT_SECONDS_DEFAULT  # --segment-seconds overrides it
TOKEN = "bench-ingest-token-0123456789abcdef"
GOAL_P99_S = 0.250
# How the pushers send a segment's renditions. The transcoder (transcoder/uploads.py, since 2026-12-08): one
# kept-alive connection per session, a segment's whole ladder in one PUT (a wave), awaiting its 201. Before waves
# (`lanes`): a kept-alive connection per rendition, the ladder's three PUTs side by side. Before that, ffmpeg 5.1's
# hls muxer PUT them itself (measured against a server that answers 300 ms late): a connection per PUT, chunked,
# closed once the body is written, so the renditions did not wait for each other's 201; the first rendition's
# segment closes one AAC frame (21-24 ms) before the others'.
CLIENTS = {
    "transcoder": "as the transcoder sends (default): one kept-alive connection per room, a segment's whole ladder "
                  "in one PUT (a wave, the spillway-wave framing), awaiting its 201",
    "lanes": "as the transcoder sent before waves: a kept-alive connection per rendition, the ladder side by side, "
             "each PUT awaiting its 201",
    "ffmpeg": "as ffmpeg sent until 2026-12-08: a connection per PUT, no 201 awaited, the ladder one AAC frame "
              "apart",
    "per-put": "a connection per PUT, the renditions one after another, each awaiting its 201",
    "keep-alive": "reused connections, each PUT awaiting its 201 (a client other than ffmpeg)",
    "ffmpeg-playlists": "as ffmpeg, each segment followed by its rendition's index.m3u8 (the transcoder until "
                        "it kept ffmpeg's playlists local)",
}
FFMPEG_PLAYLIST = b"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n" + (
    b'#EXT-X-MAP:URI="init_0.mp4"\n' + b"#EXTINF:1.000000,\n000000.m4s\n" * 3)
LADDER_SPREAD_S = 0.023


def histogram(metrics_text: str) -> list[tuple[float, float]]:
    out = []
    for m in re.finditer(r'spillway_publish_latency_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)', metrics_text):
        le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
        out.append((le, float(m.group(2))))
    return sorted(out)


def histogram_delta(after: list[tuple[float, float]], before: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The cumulative buckets observed between two scrapes."""
    earlier = dict(before)
    return [(le, c - earlier.get(le, 0.0)) for le, c in after]


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Linear interpolation inside the bucket holding quantile q (as Prometheus' histogram_quantile)."""
    total = buckets[-1][1] if buckets else 0
    if total == 0:
        return float("nan")
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_count) / max(count - prev_count, 1e-9)
        prev_le, prev_count = le, count
    return buckets[-1][0]


async def push_room(
    session: aiohttp.ClientSession,
    origin: str,
    room: str,
    media: dict[str, tuple[bytes, list[bytes]]],
    *,
    seconds: float,
    t0: float,
    errors: list[str],
    client_mode: str,
) -> int:
    sid = new_session_id() + f"-{random.randrange(16**6):06x}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = {
        "segment_seconds": SEGMENT_S,
        "renditions": [{"name": n, "bitrate": b, "channels": c, "sample_rate": 48_000} for n, b, c in LADDER],
    }
    async with session.post(f"{origin}/ingest/{room}/{sid}/start", json=body, headers=auth) as r:
        if r.status != 201:
            errors.append(f"start {r.status}")
            return 0
    for name, (init, _) in media.items():
        async with session.put(f"{origin}/ingest/{room}/{sid}/{name}/init_0.mp4", data=init, headers=auth) as r:
            if r.status != 201:
                errors.append(f"init {r.status}")
    phase = random.uniform(0, SEGMENT_S)
    sent = 0
    n_segments = int(seconds // SEGMENT_S)
    url = urllib.parse.urlsplit(origin)
    client = PutClient(url.hostname or "127.0.0.1", url.port or 80, TOKEN,
                       keep_alive=client_mode in ("keep-alive", "transcoder"))  # fmt: skip
    lanes = {name: PutClient(url.hostname or "127.0.0.1", url.port or 80, TOKEN, keep_alive=True)
             for name in media} if client_mode == "lanes" else {}  # fmt: skip
    for idx in range(n_segments):
        due = t0 + phase + idx * SEGMENT_S
        if client_mode == "transcoder":
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            pieces = [(name, segment_at(name, segs, idx)) for name, (_, segs) in media.items()]
            framing = format_wave([(name, len(piece)) for name, piece in pieces])
            try:
                status = await client.put(f"/ingest/{room}/{sid}/{idx:06d}.m4s", b"".join(p for _, p in pieces),
                                          headers=f"{WAVE_HEADER}: {framing}\r\n".encode())  # fmt: skip
            except (OSError, TimeoutError, PutError) as exc:
                errors.append(type(exc).__name__)
                continue
            if status != 201:
                errors.append(f"wave {status}")
            else:
                sent += len(pieces)
            continue
        if client_mode == "lanes":
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            answers = await asyncio.gather(*(
                lanes[name].put(f"/ingest/{room}/{sid}/{name}/{idx:06d}.m4s", segment_at(name, segs, idx))
                for name, (_, segs) in media.items()
            ), return_exceptions=True)  # fmt: skip
            for answer in answers:
                if isinstance(answer, BaseException):
                    errors.append(type(answer).__name__)
                elif answer != 201:
                    errors.append(f"segment {answer}")
                else:
                    sent += 1
            continue
        for i, (name, (_, segs)) in enumerate(media.items()):
            path, body = f"/ingest/{room}/{sid}/{name}/{idx:06d}.m4s", segment_at(name, segs, idx)
            try:
                if client_mode.startswith("ffmpeg"):  # the first rendition, the others one AAC frame later; no 201
                    await asyncio.sleep(max(0.0, due + (LADDER_SPREAD_S if i else 0.0) - time.monotonic()))
                    await client.fire(path, body)
                    if client_mode == "ffmpeg-playlists":
                        await client.fire(f"/ingest/{room}/{sid}/{name}/index.m3u8", FFMPEG_PLAYLIST)
                else:  # one after another, each awaiting its 201
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    if (status := await client.put(path, body)) != 201:
                        errors.append(f"segment {status}")
                sent += 1
            except (OSError, TimeoutError, PutError) as exc:
                errors.append(type(exc).__name__)
    client.close()
    for lane in lanes.values():
        lane.close()
    try:
        async with session.post(f"{origin}/ingest/{room}/{sid}/end", json={"reason": "eos"}, headers=auth) as r:
            if r.status != 200:
                errors.append(f"end {r.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:  # an overloaded origin may reset it: counted, reported
        errors.append(f"end {type(exc).__name__}")
    return sent


async def drive(
    origin: str, rooms: list[str], media: dict[str, tuple[bytes, list[bytes]]], seconds: float, master_pid: int,
    *, client_mode: str,
) -> dict[str, object]:
    errors: list[str] = []
    # aiohttp carries only the few other requests (start, inits, end, /metrics); segments go by PutClient.
    connector = aiohttp.TCPConnector(limit=400, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        t0 = time.monotonic() + 1.0
        pushes = asyncio.gather(
            *(push_room(session, origin, room, media, seconds=seconds, t0=t0, errors=errors, client_mode=client_mode)
              for room in rooms)
        )
        steady = asyncio.create_task(steady_window(session, origin, master_pid, t0=t0, seconds=seconds))
        sent = await pushes
        window = await steady
    return {"segments_sent": sum(sent), "errors": len(errors), "error_kinds": sorted(set(errors))[:5], **window}


async def steady_window(session: aiohttp.ClientSession, origin: str, master_pid: int, *, t0: float,
                        seconds: float) -> dict[str, float]:  # fmt: skip
    """Origin CPU per segment and publish latency while every room is pushing: from one segment after the last
    room's first PUT to one segment before the first room's last, so neither start-up (every room's start, inits
    and first segments within one second) nor the filler after the pushes end counts."""
    async def sample() -> tuple[float, float, float, float, float, list[tuple[float, float]]]:
        async with session.get(f"{origin}/metrics") as r:
            text = await r.text()
        return (time.monotonic(), process_cpu_seconds(master_pid), time.process_time(),
                counter_total(text, "spillway_segments_received_total"),
                counter_total(text, "spillway_filler_segments_total"), histogram(text))  # fmt: skip

    start, stop = t0 + 2 * SEGMENT_S, t0 + seconds - SEGMENT_S
    *_, hist_0 = await sample()  # before the first segment (the pushes start at t0 + a random phase)
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    t_a, cpu_a, client_a, seg_a, filler_a, hist_a = await sample()
    await asyncio.sleep(max(0.0, stop - time.monotonic()))
    t_b, cpu_b, client_b, seg_b, filler_b, hist_b = await sample()
    received = max(seg_b - seg_a, 1.0)  # segment PUTs, every rendition's counted
    delta = histogram_delta(hist_b, hist_a)
    startup = histogram_delta(hist_a, hist_0)  # every room's first segments
    return {"steady_seconds": round(t_b - t_a, 1), "steady_segments": received,
            "steady_cpu_ms_per_segment": round(1000 * (cpu_b - cpu_a) / received, 3),
            # the load generator's own CPU: it shares the machine's cores with the origin
            "steady_client_cpu_ms_per_segment": round(1000 * (client_b - client_a) / received, 3),
            "steady_p50_ms": round(quantile(delta, 0.50) * 1000, 1),
            "steady_p99_ms": round(quantile(delta, 0.99) * 1000, 1),
            "startup_p50_ms": round(quantile(startup, 0.50) * 1000, 1),
            "startup_p99_ms": round(quantile(startup, 0.99) * 1000, 1),
            # slots the origin filled while every pusher was on time: segments it fell too far behind to publish
            "steady_filler_segments": int(filler_b - filler_a)}


def run_step(n_rooms: int, *, backend: str, seconds: float, media: dict[str, tuple[bytes, list[bytes]]],
             env: dict[str, str], workers: int, client_mode: str) -> dict[str, object]:  # fmt: skip
    with origin_server(workers=workers, env=env) as origin:
        rooms = [f"bench-{i:04d}" for i in range(n_rooms)]
        with httpx.Client(timeout=30) as client:
            for room in rooms:
                r = client.put(
                    f"{origin.base_url}/v1/rooms/{room}",
                    json={"ingest_token": TOKEN, "realtime_cap": 0},
                    headers={"Authorization": "Bearer test-admin-token"},
                )
                r.raise_for_status()
        metrics_before = httpx.get(f"{origin.base_url}/metrics").text
        before = histogram(metrics_before)
        cpu_before = process_cpu_seconds(origin.process.pid)
        t = time.monotonic()
        result = asyncio.run(drive(origin.base_url, rooms, media, seconds, origin.process.pid,
                                   client_mode=client_mode))  # fmt: skip
        wall = time.monotonic() - t
        time.sleep(SEGMENT_S * 2)  # let the last publishes land
        metrics_after = httpx.get(f"{origin.base_url}/metrics").text
        after = histogram(metrics_after)
        cpu = process_cpu_seconds(origin.process.pid) - cpu_before
    delta = histogram_delta(after, before)
    published = delta[-1][1] if delta else 0
    step = {
        "backend": backend,
        "workers": workers,
        "client": client_mode,
        "rooms": n_rooms,
        "seconds": round(wall, 1),
        "segments_published": int(published),
        "segment_puts_per_s": round(int(result["segments_sent"]) / wall, 1),  # type: ignore[call-overload]
        "p50_ms": round(quantile(delta, 0.50) * 1000, 1),
        "p99_ms": round(quantile(delta, 0.99) * 1000, 1),
        "origin_cpu_s_per_s": round(cpu / wall, 2),
        "origin_cpu_ms_per_segment": round(1000 * cpu / max(int(result["segments_sent"]), 1), 3),  # type: ignore[call-overload]
        # Filler the origin made (a source late past its deadline): 0 unless the origin fell behind the pushers.
        "filler_segments": int(counter_total(metrics_after, "spillway_filler_segments_total")
                               - counter_total(metrics_before, "spillway_filler_segments_total")),
        # Acknowledged by the origin (a 201): in the ffmpeg mode the pushers do not read answers, so this is the check.
        "segments_received": int(counter_total(metrics_after, "spillway_segments_received_total")
                                 - counter_total(metrics_before, "spillway_segments_received_total")),
        "passes_per_segment": round((counter_total(metrics_after, "spillway_publish_passes_total")
                                     - counter_total(metrics_before, "spillway_publish_passes_total"))
                                    / max(int(result["segments_sent"]), 1), 2),  # type: ignore[call-overload]
        **result,
    }
    print(json.dumps(step), flush=True)
    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["filesystem", "s3"], default="filesystem")
    parser.add_argument("--rooms", type=int, nargs="+", default=[50, 100, 200, 300, 500])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--segment-seconds", type=float, default=SEGMENT_SECONDS_DEFAULT,
                        help="default: the product default")
    parser.add_argument("--workers", type=int, default=Settings().workers,
                        help="gunicorn workers (default: the product default, SPILLWAY_WORKERS)")
    parser.add_argument("--client", choices=list(CLIENTS), default="transcoder",
                        help="; ".join(f"{k}: {v}" for k, v in CLIENTS.items()))
    args = parser.parse_args()
    global SEGMENT_S
    SEGMENT_S = args.segment_seconds
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    steps: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        media = encode_segments(Path(tmp), seconds=SEGMENT_S * 6 + 1, segment_s=SEGMENT_S)
        with contextlib.ExitStack() as stack:
            env: dict[str, str] = {"SPILLWAY_JOIN_RATE_PER_MINUTE": "100000", "SPILLWAY_SESSIONS_PER_MINUTE": "1000"}
            if args.backend == "s3":
                moto = stack.enter_context(moto_server(buckets=["bench"]))
                os.environ.update(FAKE_AWS_ENV)
                env.update({"SPILLWAY_STORAGE": "s3", "SPILLWAY_S3_BUCKET": "bench",
                            "SPILLWAY_S3_ENDPOINT_URL": moto.endpoint_url})  # fmt: skip
            for n in args.rooms:
                steps.append(run_step(n, backend=args.backend, seconds=args.seconds, media=media, env=env,
                                      workers=args.workers, client_mode=args.client))
    passing = [s["rooms"] for s in steps if float(s["p99_ms"]) <= GOAL_P99_S * 1000 and s["errors"] == 0  # type: ignore[arg-type]
               and s["segments_received"] == s["segments_sent"] and s["steady_filler_segments"] == 0]
    summary = {"backend": args.backend, "segment_seconds": SEGMENT_S, "client": args.client, "steps": steps,
               "largest_rooms_p99_le_250ms": max(passing, default=0)}  # type: ignore[type-var]
    out = results_dir / f"origin-{args.backend}{'' if args.client == 'transcoder' else '-' + args.client}"
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    _plot(steps, out.with_suffix(".png"), args.backend)
    print(f"largest N with p99 <= 250 ms ({args.backend}): {summary['largest_rooms_p99_le_250ms']}")
    return 0


def _plot(steps: list[dict[str, object]], path: Path, backend: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rooms = [s["rooms"] for s in steps]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(rooms, [s["p50_ms"] for s in steps], marker="o", label="p50")
    ax.plot(rooms, [s["p99_ms"] for s in steps], marker="o", label="p99")
    ax.axhline(GOAL_P99_S * 1000, color="red", linestyle="--", label="goal p99 250 ms")
    ax.set_xlabel(f"rooms (3 renditions, {SEGMENT_S:g} s segments, real-time pace)")
    ax.set_ylabel("publish latency (ms)")
    ax.set_title(f"Origin publish latency, {steps[0]['workers'] if steps else '?'} gunicorn workers, {backend} storage")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
