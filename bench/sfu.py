"""The room in front (not a test): seat → first audio, HLS → seat promotion, Janus + transcoder CPU per room.

Everything real on 127.0.0.1: Janus (Debian, generated config), the origin (gunicorn, 2 workers,
SPILLWAY_SFU=janus), `spillway transcode --janus`, a speaker in Chromium (fake microphone: a tone), and embed
pages in a second Chromium.

  seat_to_audio_ms     the player's seat granted (join answered 201) → first inbound audio energy in
                       getStats (polled every 10 ms): Janus join, offer/answer, ICE + DTLS on loopback
  seat_to_live_ms      granted → the WebRTC element playing and the crossfade started (what the player shows)
  promotion_s          a seated listener closes its page → the HLS listener is on WebRTC (cap 1): the DELETE,
                       status.json's urgent publish, the player's status poll (5 s ± 20 %), the seat
  cpu                  CPU % of one core over a window: Janus, and the transcoder (supervisor + ffmpeg), for
                       the room with the speaker and 0 / N WebRTC listeners

    .venv/bin/python bench/sfu.py                  # 12 seats, 5 promotions, CPU with 0 and 4 listeners
    .venv/bin/python bench/sfu.py --seats 5 --promotions 2 --cpu-seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from playwright.sync_api import Browser, Page  # noqa: E402

from origin.admission.sfu.naming import RoomKeys, janus_room_id  # noqa: E402
from tests.support.janus import ADMIN_KEY, ROOM_SECRET, janus_server  # noqa: E402
from tests.support.origin_server import origin_server  # noqa: E402
from tests.support.transcoder_proc import transcoder  # noqa: E402
from tests.support.webrtc import speaker_site, tone_wav, webrtc_browsers  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TOKEN = "ingest-token-for-the-sfu-bench-012345"
ROOM_KEYS = RoomKeys(key=ROOM_SECRET.encode())
JANUS_ENV = {"SPILLWAY_JANUS_ROOM_SECRET": ROOM_SECRET, "SPILLWAY_JANUS_ADMIN_KEY": ADMIN_KEY}
CLK_TCK = os.sysconf("SC_CLK_TCK")

FIRST_AUDIO = """() => new Promise((resolve) => {
  const p = window.spillway;
  const started = performance.now();
  const tick = async () => {
    const pc = p.seat && p.seat.pc();
    if (pc) {
      const stats = await pc.getStats();
      let energy = 0;
      stats.forEach(s => { if (s.type === "inbound-rtp" && s.kind === "audio") energy = s.totalAudioEnergy || 0; });
      if (energy > 0) { resolve(performance.now()); return; }
    }
    if (performance.now() - started > 20000) { resolve(null); return; }
    setTimeout(tick, 10);
  };
  tick();
})"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def tree_cpu(pid: int) -> float:
    return cpu_seconds(pid) + sum(tree_cpu(c) for c in children(pid))


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": len(values),
        "p50": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "min": ordered[0],
        "max": ordered[-1],
    }


def open_listener(browser: Browser, url: str) -> Page:
    page = browser.new_page()
    page.goto(url)
    page.wait_for_function("() => window.spillway.mode === 'live'", timeout=30_000)
    return page


def seat_round(browser: Browser, url: str) -> tuple[float, float]:
    page = open_listener(browser, url)
    try:
        page.wait_for_function("() => window.spillway.status && window.spillway.status.realtime.open", timeout=15_000)
        page.click("#play")
        first = page.evaluate(FIRST_AUDIO)
        page.wait_for_function("() => window.spillway.transport === 'webrtc'", timeout=20_000)
        timing = page.evaluate("() => window.spillway.seatTimings[window.spillway.seatTimings.length - 1]")
        assert first is not None, "no inbound audio"
        return float(first) - float(timing["granted"]), float(timing["live"]) - float(timing["granted"])
    finally:
        page.close()


def promotion_round(browser: Browser, url: str) -> float:
    seated = open_listener(browser, url)
    seated.click("#play")
    seated.wait_for_function("() => window.spillway.transport === 'webrtc'", timeout=20_000)
    waiting = open_listener(browser, url)
    waiting.click("#play")
    waiting.wait_for_function("() => !window.spillway.audio.paused && window.spillway.transport === 'hls'",
                              timeout=20_000)  # fmt: skip
    time.sleep(1.0)
    left = time.monotonic()
    seated.close()
    waiting.wait_for_function("() => window.spillway.transport === 'webrtc'", timeout=30_000)
    promoted = time.monotonic() - left
    waiting.close()
    time.sleep(1.0)  # let the lease go before the next round
    return promoted


def cpu_window(janus_pid: int, transcoder_pid: int, seconds: float) -> dict[str, float]:
    j0, t0, w0 = cpu_seconds(janus_pid), tree_cpu(transcoder_pid), time.monotonic()
    time.sleep(seconds)
    j1, t1, w1 = cpu_seconds(janus_pid), tree_cpu(transcoder_pid), time.monotonic()
    return {"janus_pct": 100 * (j1 - j0) / (w1 - w0), "transcoder_pct": 100 * (t1 - t0) / (w1 - w0)}


def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 4))
    a.boxplot([doc["seat_to_audio_ms"]["values"], doc["seat_to_live_ms"]["values"]])
    a.set_xticks([1, 2], ["grant → first audio", "grant → playing"])
    a.set_ylabel("ms")
    a.set_title("Seat granted → WebRTC audio")
    b.bar(range(len(doc["promotion_s"]["values"])), doc["promotion_s"]["values"], color="tab:orange")
    b.axhline(10, color="red", linestyle="--", label="goal ≤ 10 s")
    b.set_xlabel("round")
    b.set_ylabel("s")
    b.set_title("HLS → seat promotion")
    b.legend()
    labels = [f"{r['listeners']} listeners" for r in doc["cpu"]]
    x = range(len(labels))
    c.bar([i - 0.2 for i in x], [r["janus_pct"] for r in doc["cpu"]], width=0.4, label="Janus")
    c.bar([i + 0.2 for i in x], [r["transcoder_pct"] for r in doc["cpu"]], width=0.4, label="transcoder")
    c.set_xticks(list(x), labels)
    c.set_ylabel("% of one core")
    c.set_title("CPU per room (1 speaker)")
    c.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seats", type=int, default=12, help="seat → first audio rounds")
    parser.add_argument("--promotions", type=int, default=5, help="HLS → seat promotion rounds")
    parser.add_argument("--listeners", type=int, default=4, help="WebRTC listeners for the loaded CPU window")
    parser.add_argument("--cpu-seconds", type=float, default=20.0, help="each CPU window")
    parser.add_argument("--out", default=str(RESULTS / "sfu"), help="results path without extension")
    args = parser.parse_args()
    if not (1 <= args.seats <= 100 and 1 <= args.promotions <= 20 and 0 <= args.listeners <= 20
            and 5 <= args.cpu_seconds <= 300):  # fmt: skip
        parser.error("seats 1..100, promotions 1..20, listeners 0..20, cpu-seconds 5..300")
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spillway-bench-sfu-")))
        wav = tone_wav(tmp / "tone.wav", frequency_hz=660)
        janus = stack.enter_context(janus_server())
        env = {**JANUS_ENV, "SPILLWAY_SFU": "janus", "SPILLWAY_JANUS_URL": janus.url,
               "SPILLWAY_SEAT_LEASE_SECONDS": "9"}  # fmt: skip
        origin = stack.enter_context(origin_server(workers=2, env=env))
        for room, cap in (("bench-seats", 1000), ("bench-promotion", 1)):
            origin.create_room(room, ingest_token=TOKEN, realtime_cap=cap)
        tx = stack.enter_context(transcoder(origin=origin.base_url, room="bench-seats", token=TOKEN, env=JANUS_ENV,
                                            source_args=("--janus", janus.url)))  # fmt: skip
        stack.enter_context(transcoder(origin=origin.base_url, room="bench-promotion", token=TOKEN, env=JANUS_ENV,
                                       source_args=("--janus", janus.url)))  # fmt: skip
        site = stack.enter_context(speaker_site())
        speakers, listeners = stack.enter_context(webrtc_browsers(fake_audio=wav))
        for room in ("bench-seats", "bench-promotion"):
            page = speakers.new_page()
            page.goto(site.add(f"/speaker-{room}", url=janus.url, room=janus_room_id(room),
                               token=ROOM_KEYS.speaker_token(room), ids=ROOM_KEYS.speaker_ids(room)))  # fmt: skip
            page.wait_for_function("() => window.speaker.state === 'up'", timeout=20_000)
        for room in ("bench-seats", "bench-promotion"):
            deadline = time.monotonic() + 30
            while httpx.get(f"{origin.base_url}/rooms/{room}/master.m3u8").status_code != 200:
                assert time.monotonic() < deadline, f"no HLS for {room}"
                time.sleep(0.2)

        cpu = [{"listeners": 0, **cpu_window(janus.pid or 0, tx.proc.pid, args.cpu_seconds)}]
        seats_url = f"{origin.base_url}/embed/bench-seats"
        audio_ms, live_ms = [], []
        for i in range(args.seats):
            a, b = seat_round(listeners, seats_url)
            audio_ms.append(a)
            live_ms.append(b)
            print(f"seat {i + 1}: grant → first audio {a:.0f} ms, → playing {b:.0f} ms", flush=True)
        loaded = [open_listener(listeners, seats_url) for _ in range(args.listeners)]
        for page in loaded:
            page.click("#play")
            page.wait_for_function("() => window.spillway.transport === 'webrtc'", timeout=20_000)
        cpu.append({"listeners": args.listeners, **cpu_window(janus.pid or 0, tx.proc.pid, args.cpu_seconds)})
        for page in loaded:
            page.close()
        promo_url = f"{origin.base_url}/embed/bench-promotion"
        promotions = []
        for i in range(args.promotions):
            promotions.append(promotion_round(listeners, promo_url))
            print(f"promotion {i + 1}: {promotions[-1]:.2f} s", flush=True)

    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    doc = {
        "meta": {"when": when, "cores": os.cpu_count(), "cpu_seconds": args.cpu_seconds},
        "seat_to_audio_ms": {**summary(audio_ms), "values": audio_ms},
        "seat_to_live_ms": {**summary(live_ms), "values": live_ms},
        "promotion_s": {**summary(promotions), "values": promotions},
        "cpu": cpu,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    plot(doc, out.with_suffix(".png"))
    s, live, p = doc["seat_to_audio_ms"], doc["seat_to_live_ms"], doc["promotion_s"]
    print(f"\nseat granted → first WebRTC audio: p50 {s['p50']:.0f} ms, p90 {s['p90']:.0f} ms (n={s['n']})")
    print(f"seat granted → playing (crossfade starts): p50 {live['p50']:.0f} ms, p90 {live['p90']:.0f} ms")
    print(f"HLS → seat promotion: p50 {p['p50']:.2f} s, max {p['max']:.2f} s (n={p['n']})")
    for r in cpu:
        print(f"CPU, 1 speaker + {r['listeners']} WebRTC listeners: Janus {r['janus_pct']:.1f} %, "
              f"transcoder {r['transcoder_pct']:.1f} % of one core")  # fmt: skip
    print(f"\nwrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
