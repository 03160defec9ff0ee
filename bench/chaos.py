"""Bounded chaos run against the demo stack with listeners attached (not a test).

Stack: origin (gunicorn, 2 workers, default settings) → S3 (moto) through a fault-injecting proxy; a room fed
over RTP (an ffmpeg Opus RTP sender → `spillway transcode --sdp`, default flags, 1 s segments); an ffmpeg
listener on the live master, a playlist watcher (every version: no dangling reference, no sequence
regression) and an edge tracker on the three live playlists.

Faults (`--scenario issue17`, the default, in this order, `--gap` seconds apart): the RTP source killed for
20 s, then back; a host change to a second transcoder on another source; SIGKILL of that transcoder's
ffmpeg; SIGKILL of the gunicorn worker that owns the room; 20 % of storage writes failing, dropped or hung
for 20 s. `--scenario random` draws faults at random for `--minutes` (each kind at least once).

Per fault: the longest time the live edge stood still, the stall of a listener with a 3-segment buffer
(how much further behind it fell) and the time until real audio was on the edge again. Overall: segments
lost, dangling references, sequence regressions, replay coverage, hedged writes.

    .venv/bin/python bench/chaos.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import time
from pathlib import Path

import httpx
import m3u8

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.chaos import FAULTS, RENDITIONS, Durations, Fault, inject, rtp_room  # noqa: E402
from tests.support.hls_check import LiveListener, PlaylistWatcher, wait_for  # noqa: E402
from tests.support.live_edge import (  # noqa: E402
    EdgeTracker,
    first_real_after,
    listener_buffer,
    listener_stalls,
    longest_still,
    stalled_within,
)
from tests.support.metrics_text import counter_total  # noqa: E402
from tests.support.moto_server import FAKE_AWS_ENV  # noqa: E402

ROOM = "chaos"
TOKEN = "chaos-ingest-token-0123456789abcdef"
BUCKET = "chaos"


def run(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed)
    os.environ.update(FAKE_AWS_ENV)
    events: list[Fault] = []
    with contextlib.ExitStack() as stack:
        s = stack.enter_context(rtp_room(room=ROOM, token=TOKEN, bucket=BUCKET, seed=args.seed))
        origin, proxy, read, live = s.origin, s.proxy, s.read, s.live
        urls = s.playlists
        watcher = stack.enter_context(PlaylistWatcher(urls=lambda: urls))
        edge = stack.enter_context(EdgeTracker(urls=live))
        listener = LiveListener(f"{read}/master.m3u8", keep_pcm=False)
        started = time.monotonic()
        time.sleep(args.gap)
        if args.scenario == "issue17":
            schedule, deadline = list(FAULTS), 0.0
        else:
            schedule, deadline = rng.sample(FAULTS, len(FAULTS)), started + args.minutes * 60
        while schedule or time.monotonic() < deadline - 30:
            kind = schedule.pop(0) if schedule else rng.choice(FAULTS)
            t = time.monotonic()
            back, detail = inject(kind, s, rng, Durations())
            events.append(Fault(kind=kind, detail=detail, t=t, back=back))
            print(f"{t - started:6.1f}s  {kind} {detail}", flush=True)
            time.sleep(args.gap)
        live_until = time.monotonic()
        edge.stop()
        s.current.stop()
        s.tx.close()
        assert origin.end_broadcast(ROOM).status_code == 200
        wait_for(lambda: all("#EXT-X-ENDLIST" in httpx.get(f"{read}/replay/{r}.m3u8").text for r in RENDITIONS),
                 timeout_s=120, what="the replay")  # fmt: skip
        with contextlib.suppress(AssertionError):
            listener.finish(timeout_s=120)
        metrics = httpx.get(f"{origin.base_url}/metrics").text
        replays = {r: m3u8.loads(httpx.get(f"{read}/replay/{r}.m3u8").text) for r in RENDITIONS}
        watcher_result = (watcher.versions, list(watcher.violations), list(watcher.sequence_regressions))
        wall = time.monotonic() - started
        faulted = proxy.faulted().get("PUT", 0)
    return summarize(args, events, edge, listener, live, live_until, started, wall, metrics, replays,
                     watcher_result, faulted)  # fmt: skip


def summarize(
    args: argparse.Namespace, events: list[Fault], edge: EdgeTracker, listener: LiveListener,
    live: list[str], live_until: float, started: float, wall: float, metrics: str,
    replays: dict[str, m3u8.M3U8], watcher: tuple[int, list[str], list[str]], faulted: int,
) -> dict[str, object]:  # fmt: skip
    stalls = {u: listener_stalls(edge.seen[u], buffer_segments=3) for u in live}
    ends = [e.t for e in events[1:]] + [live_until]
    first_fault = events[0].t if events else live_until
    faults: list[dict[str, object]] = []
    for e, end in zip(events, ends, strict=True):
        heard = [first_real_after(edge.seen[u], e.back) for u in live]
        faults.append({
            "fault": e.kind, "detail": e.detail, "at_s": round(e.t - started, 1),
            "live_edge_still_s": round(max(longest_still(edge.seen[u], e.t, end) for u in live), 2),
            "listener_stall_s": round(max(stalled_within(stalls[u], e.t, end) for u in live), 2),
            "heard_again_s": round(max(h - e.back for h in heard if h is not None), 2) if None not in heard else None,
        })  # fmt: skip
    received = counter_total(metrics, "spillway_segments_received_total")
    in_replay = sum(1 for p in replays.values() for seg in p.segments if "/fill-" not in seg.uri)
    replay_s = {r: round(sum(seg.duration for seg in p.segments), 1) for r, p in replays.items()}
    return {
        "scenario": args.scenario, "seed": args.seed, "minutes": round(wall / 60, 2),
        "faults": faults,
        "baseline_live_edge_still_s": round(max(longest_still(edge.seen[u], started, first_fault) for u in live), 2),
        "longest_live_edge_still_s": max((float(str(f["live_edge_still_s"])) for f in faults), default=0.0),
        "listener_lag_growth_s": round(max(sum(x.seconds for x in v) for v in stalls.values()), 2),
        "listener_stalls": max(len(v) for v in stalls.values()),
        # what a 3-segment player has buffered: more at the end = it is further behind the speaker by that much
        "listener_buffer_start_s": round(min(listener_buffer(edge.seen[u], started, buffer_segments=3)
                                             for u in live), 2),
        "listener_buffer_end_s": round(min(listener_buffer(edge.seen[u], live_until, buffer_segments=3)
                                           for u in live), 2),
        "source_heard_after_every_fault": all(f["heard_again_s"] is not None for f in faults),
        "segments_received": int(received), "segments_in_replay": in_replay,
        "segments_lost": int(received) - in_replay,
        "replay_seconds": replay_s, "live_seconds": round(live_until - started, 1),
        "playlist_versions_checked": watcher[0], "dangling_references": len(watcher[1]),
        "sequence_regressions": len(watcher[2]), "violations": watcher[1][:5] + watcher[2][:5],
        "ffmpeg_listener_decoded_s": round(listener.decoded_s, 1),
        "storage_writes_faulted": faulted,
        "hedges": {ev: int(counter_total(metrics, "spillway_storage_hedges_total", f'event="{ev}"'))
                   for ev in ("hedged", "won", "repaired")},
        "_timeline": {u.rsplit("/", 1)[1]: [(round(x.at - started, 2), x.msn, x.duration_s, x.uri.split("/")[-2:])
                                           for x in edge.seen[u]] for u in live},
        "edge_polls_per_s": round(edge.polls / len(live) / (live_until - started), 1),
        "filler_segments": int(counter_total(metrics, "spillway_filler_segments_total")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=("issue17", "random"), default="issue17")
    parser.add_argument("--minutes", type=float, default=3.0, help="--scenario random: length of the run")
    parser.add_argument("--gap", type=float, default=12.0, help="seconds between faults")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeline", type=Path, default=None, help="write when each live segment was first seen")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "chaos")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps({k: v for k, v in result.items() if k not in ("faults", "_timeline")}, indent=2))
    for e in result["faults"]:  # type: ignore[attr-defined]
        print(json.dumps(e))
    timeline = result.pop("_timeline")
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    if args.timeline is not None:
        args.timeline.write_text(json.dumps(timeline))
    _plot(result, args.out.with_suffix(".png"))
    ok = result["dangling_references"] == 0 and result["sequence_regressions"] == 0
    return 0 if ok and result["source_heard_after_every_fault"] else 1


def _plot(result: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    faults = result["faults"]
    assert isinstance(faults, list)
    fig, ax = plt.subplots(figsize=(9, 4))
    x = range(len(faults))
    ax.bar([i - 0.2 for i in x], [f["live_edge_still_s"] for f in faults], width=0.4, label="live edge still (s)")
    ax.bar([i + 0.2 for i in x], [f["listener_stall_s"] for f in faults], width=0.4,
           label="3-segment listener stalled (s)")  # fmt: skip
    ax.axhline(1.6, color="tab:red", linestyle="--", linewidth=1, label="goal: 1.6 s")
    ax.set_xticks(list(x), [f"{f['fault']}\n@{f['at_s']}s" for f in faults], fontsize=8)
    ax.set_ylabel("seconds")
    ax.set_title(f"Chaos ({result['scenario']}): {result['dangling_references']} dangling, "
                 f"{result['sequence_regressions']} regressions, listener lag +{result['listener_lag_growth_s']} s")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
