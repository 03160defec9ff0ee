"""Glass-to-ear latency in sound (not a test): a beep emitted by the room's source, heard in Chromium.

The source is what an SFU forwards: ffmpeg sends Opus RTP (a 1 kHz beep of 100 ms every BEEP_EVERY_S seconds,
silence between) to the transcoder's SDP input and, encoded identically, to a second port this bench reads: the
RTP timestamps and arrival times there give each beep's emission time on the wall clock (the earliest packet's
offset, so sender start-up does not count). The transcoder runs with the product's defaults, `--low-latency` or
not; listeners are the embed page (LISTENERS pages) and a bare page with hls.js at its defaults (the same
vendored build, `new Hls()`), in the system Chromium, playing through the nginx edge, joining a third of a
segment apart. In each page an AnalyserNode on the audio element finds beep onsets (RMS over a
threshold, refined to the first loud sample of the analysed buffer) and stamps them with Date.now().

    glass_to_ear_s   onset heard − beep emitted (same machine, same clock)
    pdt_delay_s      now − hls.playingDate: what the timestamps claim (the difference is the pipeline before
                     the origin stamps a segment)

    .venv/bin/python bench/glass_to_ear.py --seconds 60
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from playwright.sync_api import Page  # noqa: E402

from origin.edge.nginx_process import EdgeOptions, run_edge  # noqa: E402
from tests.origin.player.browser import chromium  # noqa: E402
from tests.support.hls_check import wait_for  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.origin_server import origin_server  # noqa: E402
from tests.support.transcoder_proc import transcoder  # noqa: E402
from tests.transcoder.rtp import PAYLOAD_TYPE, free_rtp_port, sdp_for  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ROOM = "glass-to-ear"
TOKEN = "glass-to-ear-ingest-token-0123456789"
BEEP_EVERY_S = 8.0  # longer than any listener's delay: a beep is never matched to the one before it
BEEP_S = 0.1
LISTENERS = 3  # embed pages; one bare hls.js page besides
BARE_PAGE = "/bench-hls-defaults.html"  # served by the bench (a route), same origin as the edge
BARE_HTML = """<!doctype html><html><body><audio id="a"></audio><button id="play">play</button>
<script src="{hls_js}"></script><script>
const audio = document.getElementById('a'), hls = new Hls();
hls.loadSource('{master}'); hls.attachMedia(audio);
hls.on(Hls.Events.MANIFEST_PARSED, () => audio.play());  // hls.js's README usage
window.spillway = {{audio, hls, mode: 'live'}};
document.getElementById('play').onclick = () => audio.play();  // already playing: a no-op
</script></body></html>"""
WARMUP_S = 10.0

PROBE = """() => {
  const p = window.spillway;
  if (window.__beeps) return true;
  if (!p || !p.audio) return false;
  const ctx = new AudioContext();
  const src = ctx.createMediaElementSource(p.audio);
  const an = ctx.createAnalyser();
  an.fftSize = 2048;
  src.connect(an);
  an.connect(ctx.destination);
  const buf = new Float32Array(an.fftSize);
  window.__beeps = [];
  let loud = false;
  setInterval(() => {
    an.getFloatTimeDomainData(buf);
    let first = -1, sum = 0;
    for (let i = 0; i < buf.length; i++) { sum += buf[i] * buf[i]; if (first < 0 && Math.abs(buf[i]) > 0.2) first = i; }
    const rms = Math.sqrt(sum / buf.length);
    const now = Date.now() - (ctx.outputLatency || 0) * 1000;
    if (!loud && rms > 0.05 && first >= 0) {
      loud = true;
      window.__beeps.push(now - (buf.length - first) / ctx.sampleRate * 1000);
    } else if (loud && rms < 0.01) {
      loud = false;
    }
  }, 5);
  ctx.resume();
  return true;
}"""
STATE = """() => { const h = window.spillway && window.spillway.hls;
  return {beeps: window.__beeps || [], pdt: h && h.playingDate ? h.playingDate.getTime() : null,
          latency: h ? h.latency : null, target: h ? h.targetLatency : null, stalls: window.__stalls || 0}; }"""
COUNT_STALLS = """() => { window.__stalls = 0;
  window.spillway.audio.addEventListener('waiting', () => { window.__stalls += 1; }); }"""


@dataclass(kw_only=True)
class Emissions:
    """Beep emission times from the RTP copy: wall time of media time 0 (the earliest packet's offset)."""

    port: int
    offset: float | None = None
    first_ts: int | None = None
    packets: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", self.port))
            sock.settimeout(0.2)
            while not self._stop.is_set():
                try:
                    data = sock.recv(2048)
                except TimeoutError:
                    continue
                now = time.time()
                if len(data) < 12 or data[1] & 0x7F != PAYLOAD_TYPE:
                    continue
                (ts,) = struct.unpack_from(">I", data, 4)
                if self.first_ts is None:
                    self.first_ts = ts
                media_s = ((ts - self.first_ts) & 0xFFFFFFFF) / 48_000
                candidate = now - media_s
                self.offset = candidate if self.offset is None else min(self.offset, candidate)
                self.packets += 1

    def emitted(self, heard_wall: float) -> float:
        """Emission wall time of the beep heard at `heard_wall` (the latest beep before it)."""
        assert self.offset is not None
        k = int((heard_wall - self.offset) // BEEP_EVERY_S)
        return self.offset + k * BEEP_EVERY_S

    def stop(self) -> None:
        self._stop.set()


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] if s else float("nan")


def run_config(low_latency: bool, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        port, copy_port = free_rtp_port(), free_rtp_port()
        sdp = Path(tmp) / "room.sdp"
        sdp.write_text(sdp_for(port))
        emissions = Emissions(port=copy_port)
        listener_thread = threading.Thread(target=emissions.run, daemon=True)
        listener_thread.start()
        beep = f"aevalsrc=0.8*sin(2*PI*1000*t)*lt(mod(t\\,{BEEP_EVERY_S:g})\\,{BEEP_S:g}):s=48000"
        encode = ["-c:a", "libopus", "-b:a", "64k", "-payload_type", str(PAYLOAD_TYPE), "-f", "rtp"]
        edge_port = free_port()
        env = {"SPILLWAY_PUBLIC_BASE_URL": f"http://127.0.0.1:{edge_port}"}  # the page and its fetches: the edge
        with origin_server(workers=2, env=env) as origin:
            origin.create_room(ROOM, ingest_token=TOKEN)
            with run_edge(EdgeOptions(origin_url=origin.base_url, listen_port=edge_port,
                                      log_every_request=False)) as edge:  # fmt: skip
                extra = ("--low-latency",) if low_latency else ()
                with transcoder(origin=origin.base_url, room=ROOM, token=TOKEN,
                                source_args=("--sdp", str(sdp)), extra=extra):  # fmt: skip
                    sender = subprocess.Popen(
                        ["ffmpeg", "-v", "error", "-nostdin", "-re", "-f", "lavfi", "-i", beep,
                         "-map", "0:a", *encode, f"rtp://127.0.0.1:{port}",
                         "-map", "0:a", *encode, f"rtp://127.0.0.1:{copy_port}"],
                        stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                    try:
                        base = edge.base_url
                        wait_for(lambda: httpx.get(f"{base}/rooms/{ROOM}/master.m3u8").status_code == 200,
                                 timeout_s=40, what="the stream")  # fmt: skip
                        samples = _listen(base, seconds, emissions)
                    finally:
                        sender.kill()
                        sender.wait()
        emissions.stop()
    return {"low_latency": low_latency, **samples}


def _listen(base: str, seconds: float, emissions: Emissions) -> dict[str, Any]:
    heard: list[float] = []
    pdt: list[float] = []
    latency: list[float] = []
    embed = httpx.get(f"{base}/embed/{ROOM}").text
    hls_js = re.search(r'<script[^>]+src="([^"]*hls[^"]*\.js)"', embed)
    assert hls_js, "the embed page names no hls.js"
    bare = BARE_HTML.format(hls_js=hls_js.group(1), master=f"{base}/rooms/{ROOM}/master.m3u8")
    with chromium() as browser:
        pages: list[Page] = []
        for i in range(LISTENERS + 1):
            page = browser.new_page(viewport={"width": 480, "height": 200})
            if i == LISTENERS:
                page.route(f"{base}{BARE_PAGE}", lambda route: route.fulfill(body=bare, content_type="text/html"))
                page.goto(f"{base}{BARE_PAGE}")
            else:
                page.goto(f"{base}/embed/{ROOM}")
            page.wait_for_function("() => window.spillway && window.spillway.mode === 'live'", timeout=40_000)
            page.wait_for_function(PROBE, timeout=30_000)
            page.click("#play")
            page.wait_for_function("() => window.spillway.audio.currentTime > 0.5", timeout=30_000)
            page.evaluate(COUNT_STALLS)
            pages.append(page)
            time.sleep(0.35)
        time.sleep(WARMUP_S)
        for page in pages:
            page.evaluate("() => { window.__beeps = []; }")
        end = time.time() + seconds
        while time.time() < end:
            time.sleep(1.0)
            for page in pages:
                st = page.evaluate(STATE)
                if st["pdt"]:
                    pdt.append(time.time() - st["pdt"] / 1000)
                if st["latency"] is not None:
                    latency.append(float(st["latency"]))
        listeners = []
        by_page: dict[str, list[float]] = {}
        for page in pages:
            st = page.evaluate(STATE)
            mine = [b / 1000 - emissions.emitted(b / 1000) for b in st["beeps"]]
            heard += [b / 1000 for b in st["beeps"]]
            kind = "hls.js defaults" if page.url.endswith(BARE_PAGE) else "embed"
            by_page.setdefault(kind, []).extend(mine)
            listeners.append({"page": kind, "median_s": round(statistics.median(mine), 3) if mine else None,
                              "stalls_after_warmup": st["stalls"], "target_latency_s": st["target"]})  # fmt: skip
    g2e = [h - emissions.emitted(h) for h in heard]
    return {
        "beeps_heard": len(g2e),
        "glass_to_ear_s": {"median": round(statistics.median(g2e), 3) if g2e else None,
                           "p95": round(_pct(g2e, 0.95), 3), "max": round(max(g2e), 3) if g2e else None},
        "pdt_delay_s": {"median": round(statistics.median(pdt), 3) if pdt else None, "p95": round(_pct(pdt, 0.95), 3)},
        "hls_latency_s": {"median": round(statistics.median(latency), 3) if latency else None},
        "listeners": listeners,
        "by_page": {k: {"median": round(statistics.median(v), 3), "p95": round(_pct(v, 0.95), 3)}
                    for k, v in by_page.items() if v},
        "samples": [round(x, 3) for x in g2e],
    }  # fmt: skip


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    labels = ["low latency" if r["low_latency"] else "standard" for r in results]
    ax.boxplot([r["samples"] or [0] for r in results], tick_labels=labels)
    ax.axhline(1.5, color="red", linestyle="--", label="goal: median ≤ 1.5 s")
    ax.set_ylabel("glass-to-ear (s): beep at the source → heard in Chromium")
    ax.set_title("Listener delay in sound, hls.js through the nginx edge")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--only", choices=["standard", "low-latency"])
    args = parser.parse_args()
    configs = [False, True] if args.only is None else [args.only == "low-latency"]
    results = [run_config(ll, args.seconds) for ll in configs]
    for r in results:
        print(json.dumps({k: v for k, v in r.items() if k != "samples"}), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "glass_to_ear.json").write_text(json.dumps(results, indent=2))
    plot(results, RESULTS / "glass_to_ear.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
