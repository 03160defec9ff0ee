"""Bounded chaos run against the demo stack with listeners attached (not a test).

Stack: origin (gunicorn, 2 workers) → S3 (moto) through a fault-injecting proxy; a real transcoder
(supervisor + ffmpeg, 1 s segments) on a tone; two ffmpeg listeners on the live master, a playlist watcher.
Every 12–20 s one fault, drawn at random: SIGKILL of ffmpeg, a source stall (SIGSTOP of ffmpeg for 6–12 s),
20 % of storage writes failing or hanging for 20 s, SIGKILL of a gunicorn worker, a host change (a new
transcoder replaces the old one). Reports segments lost (goal 0), playlist versions naming missing objects
(goal 0), the longest time the live edge stood still and the longest listener stall, and recovery times.

    .venv/bin/python bench/chaos.py --minutes 3 --seed 7
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import m3u8

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.fault_proxy import Delay, Drop, FaultProxy, Hang, Reply  # noqa: E402
from tests.support.hls_check import LiveListener, PlaylistWatcher, wait_for  # noqa: E402
from tests.support.moto_server import FAKE_AWS_ENV, moto_server  # noqa: E402
from tests.support.origin_server import origin_server  # noqa: E402
from tests.support.transcoder_proc import TranscoderProcess, transcoder  # noqa: E402

ROOM = "chaos"
TOKEN = "chaos-ingest-token-0123456789abcdef"
BUCKET = "chaos"
RENDITIONS = ("a48", "a64", "a128")
FAULTS = ("ffmpeg_kill", "source_stall", "storage_faults", "worker_kill", "host_change")


@dataclass
class EdgeTracker:
    """Follows the live playlist's newest segment; the longest time it did not move is the worst stall a
    player with an empty buffer would have seen."""

    url: str
    longest_still_s: float = 0.0
    longest_still_at: float = 0.0  # monotonic time the longest still interval began
    last_uri: str = ""
    last_change: float = field(default_factory=time.monotonic)
    real_after: dict[float, float] = field(default_factory=dict)  # fault time -> first real segment seen after
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    text = client.get(self.url).text
                    uris = [ln for ln in text.splitlines() if ln.endswith(".m4s")]
                    now = time.monotonic()
                    if uris and uris[-1] != self.last_uri:
                        self.last_uri, self.last_change = uris[-1], now
                        if "/fill-" not in uris[-1]:
                            for t in list(self.real_after):
                                if self.real_after[t] < 0:
                                    self.real_after[t] = now - t
                    if now - self.last_change > self.longest_still_s:
                        self.longest_still_s, self.longest_still_at = now - self.last_change, self.last_change
                self.stop.wait(0.1)


def listener_stall_s(listener: LiveListener, until: float) -> float:
    """Longest wall-clock gap between two reads of decoded audio while the broadcast was live."""
    times = [t for t in listener.read_times if t <= until] + [until]
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.environ.update(FAKE_AWS_ENV)
    events: list[dict[str, object]] = []
    with contextlib.ExitStack() as stack:
        moto = stack.enter_context(moto_server(buckets=[BUCKET]))
        proxy = stack.enter_context(FaultProxy(moto.endpoint_url, seed=args.seed))
        env = {"SPILLWAY_STORAGE": "s3", "SPILLWAY_S3_BUCKET": BUCKET, "SPILLWAY_S3_ENDPOINT_URL": proxy.url,
               "SPILLWAY_S3_ACL": "public-read"}  # fmt: skip
        origin = stack.enter_context(origin_server(workers=2, env=env))
        origin.create_room(ROOM, ingest_token=TOKEN)
        read = f"{moto.endpoint_url}/{BUCKET}/rooms/{ROOM}"
        urls = [f"{read}/master.m3u8"] + [f"{read}/{k}/{r}.m3u8" for k in ("live", "replay") for r in RENDITIONS]
        watcher = stack.enter_context(PlaylistWatcher(urls=lambda: urls))
        tx_stack = contextlib.ExitStack()
        current: TranscoderProcess = tx_stack.enter_context(transcoder(origin=origin.base_url, room=ROOM, token=TOKEN))
        wait_for(lambda: httpx.get(f"{read}/master.m3u8").status_code == 200, timeout_s=30, what="the stream")
        listeners = [LiveListener(f"{read}/master.m3u8", keep_pcm=False) for _ in range(2)]
        edge = EdgeTracker(url=f"{read}/live/a64.m3u8")
        threading.Thread(target=edge.run, daemon=True).start()
        started = time.monotonic()
        deadline = started + args.minutes * 60
        # Every kind of fault at least once, in random order, then random draws while time remains.
        schedule = rng.sample(FAULTS, len(FAULTS))
        while time.monotonic() < deadline - 20:
            time.sleep(rng.uniform(12, 20))
            kind = schedule.pop(0) if schedule else rng.choice(FAULTS)
            t = time.monotonic()
            detail = ""
            if kind == "ffmpeg_kill":
                os.kill(current.ffmpeg_pid(), signal.SIGKILL)
            elif kind == "source_stall":
                pid, hold = current.ffmpeg_pid(), rng.uniform(6, 12)
                os.kill(pid, signal.SIGSTOP)
                time.sleep(hold)
                os.kill(pid, signal.SIGCONT)
                detail = f"{hold:.1f}s"
                t = time.monotonic()  # recovery counts from the source's return
            elif kind == "storage_faults":
                proxy.set_random_faults(0.2, [Reply(status=503), Reply(status=500, forward_first=True),
                                              Hang(seconds=6.0), Delay(seconds=2.0), Drop()])  # fmt: skip
                time.sleep(20)
                proxy.clear_faults()
                t = time.monotonic()
            elif kind == "worker_kill":
                os.kill(origin.worker_pids()[0], signal.SIGKILL)
            elif kind == "host_change":
                new_stack = contextlib.ExitStack()
                new = new_stack.enter_context(
                    transcoder(origin=origin.base_url, room=ROOM, token=TOKEN, source="sine=f=660:r=48000")
                )
                time.sleep(1)
                current.stop()
                tx_stack.close()
                tx_stack, current = new_stack, new
            edge.real_after[t] = -1.0
            events.append({"at_s": round(t - started, 1), "fault": kind, "detail": detail, "_t": t})
            print(f"{t - started:6.1f}s  {kind} {detail}", flush=True)
        time.sleep(8)
        live_until = time.monotonic()  # stalls are measured while the broadcast is live
        edge.stop.set()
        current.stop()
        tx_stack.close()
        assert origin.end_broadcast(ROOM).status_code == 200
        wait_for(lambda: all("#EXT-X-ENDLIST" in httpx.get(f"{read}/replay/{r}.m3u8").text for r in RENDITIONS),
                 timeout_s=120, what="the replay")  # fmt: skip
        for listener in listeners:
            with contextlib.suppress(AssertionError):
                listener.finish(timeout_s=120)
        metrics = httpx.get(f"{origin.base_url}/metrics").text
        received = sum(
            float(v) for v in re.findall(r'^spillway_segments_received_total ([0-9.e+]+)', metrics, re.M)
        )
        in_replay = 0
        for r in RENDITIONS:
            replay = m3u8.loads(httpx.get(f"{read}/replay/{r}.m3u8").text)
            in_replay += sum(1 for s in replay.segments if "/fill-" not in s.uri)
        wall = time.monotonic() - started
    for e in events:
        t = e.pop("_t")
        e["recovery_s"] = round(edge.real_after.get(t, -1.0), 2)  # type: ignore[arg-type]
    result = {
        "minutes": round(wall / 60, 2),
        "seed": args.seed,
        "faults": events,
        "segments_received": int(received),
        "segments_in_replay": in_replay,
        "segments_lost": int(received) - in_replay,
        "playlist_versions_checked": watcher.versions,
        "dangling_references": len(watcher.violations),
        "sequence_regressions": len(watcher.sequence_regressions),
        "longest_live_edge_still_s": round(edge.longest_still_s, 2),
        "longest_live_edge_still_began_at_s": round(edge.longest_still_at - started, 1),
        "longest_listener_stall_s": round(max(listener_stall_s(x, live_until) for x in listeners), 2),
        "listener_decoded_s": [round(x.decoded_s, 1) for x in listeners],
        "storage_writes_faulted": proxy.faulted().get("PUT", 0),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "faults"}, indent=2))
    out = ROOT / "bench" / "results" / "chaos"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    _plot(result, out.with_suffix(".png"))
    return 0 if result["segments_lost"] == 0 and result["dangling_references"] == 0 else 1


def _plot(result: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    faults = result["faults"]
    assert isinstance(faults, list)
    fig, ax = plt.subplots(figsize=(8, 4))
    colors = dict(zip(FAULTS, ("tab:red", "tab:orange", "tab:blue", "tab:purple", "tab:green"), strict=True))
    for f in faults:
        ax.bar(f["at_s"], max(f["recovery_s"], 0.05), width=4, color=colors[f["fault"]], label=f["fault"])
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(dict(zip(labels, handles, strict=False)).values(), dict(zip(labels, handles, strict=False)).keys())
    ax.set_xlabel("time into the run (s)")
    ax.set_ylabel("recovery: fault → next real segment live (s)")
    ax.set_title(
        f"Chaos: {result['segments_lost']} segments lost, {result['dangling_references']} dangling references, "
        f"longest edge stall {result['longest_live_edge_still_s']} s"
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
