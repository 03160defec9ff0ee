"""Listener delay behind live (not a test): what hls.js reports in the embed page, per configuration.

For each configuration: a fresh origin (gunicorn, 2 workers) and nginx edge on 127.0.0.1, a room, a
contract-following ffmpeg pusher in real time (tests/support/pusher.py) at the configuration's segment
length, and three listeners — the embed page in the system Chromium (never downloaded), playing through the
edge — who join the running broadcast (live window full) a third of a segment apart, since where hls.js starts
depends on the phase of the segment clock. After a warm-up every page is sampled once per second:

  hls_latency_s   `hls.latency`: seconds between the playhead and the live edge of the playlist hls.js has —
                  the figure the page shows as "N s behind live" (the goal: median ≤ 5 s)
  wall_delay_s    now − `hls.playingDate` (the segment's EXT-X-PROGRAM-DATE-TIME): also counts the time a
                  segment takes to be encoded, pushed, published and noticed — closer to what a listener hears
                  relative to the room. The origin anchors PROGRAM-DATE-TIME at (publish time of the session's
                  first segment − its duration), so this misses that one segment's encode + upload time
  stalls          'waiting' events of the audio element during the window

Player settings are varied by rewriting the page's config block in the browser (page.route), so the
defaults measured are exactly what origin/player/page.py serves.

    .venv/bin/python bench/latency.py                       # every configuration, 60 s each
    .venv/bin/python bench/latency.py --seconds 20 --only default
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from playwright.sync_api import Browser, Page, Route  # noqa: E402

from origin.edge.nginx_process import EdgeOptions, run_edge  # noqa: E402
from origin.player import page as player_page  # noqa: E402
from tests.origin.player.browser import chromium  # noqa: E402
from tests.support.hls_check import wait_for  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.origin_server import origin_server  # noqa: E402
from tests.support.pusher import Push  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ROOM = "latency-bench"
TOKEN = "ingest-token-for-the-latency-bench"
WARMUP_S = 12.0  # page load, first segments, hls.js settling on its target
LISTENERS = 3  # pages per configuration, joining a third of a segment apart
TRANSCODER_DEFAULT_SEGMENT_S = 2.0  # transcoder/settings.py SEGMENT_SECONDS (owned there)


@dataclass(frozen=True, kw_only=True)
class Config:
    name: str
    segment_s: float
    live_window_segments: int = 6  # SPILLWAY_LIVE_WINDOW_SEGMENTS default
    hls: dict[str, Any] = field(default_factory=dict)  # overrides of the page's hlsConfig


CONFIGS = [
    Config(name="default", segment_s=TRANSCODER_DEFAULT_SEGMENT_S),
    Config(name="seg2-sync2", segment_s=2.0, hls={"liveSyncDurationCount": 2}),
    Config(name="seg1", segment_s=1.0),
    Config(name="seg1-win4", segment_s=1.0, live_window_segments=4),
    Config(name="seg1-sync2", segment_s=1.0, hls={"liveSyncDurationCount": 2}),
]

SAMPLE_JS = """() => {
  const p = window.spillway, h = p && p.hls, a = p && p.audio;
  return {
    mode: p ? p.mode : null,
    latency: h ? h.latency : null,
    target: h ? h.targetLatency : null,
    playing_date_ms: h && h.playingDate ? h.playingDate.getTime() : null,
    now_ms: Date.now(),
    current_time: a ? a.currentTime : null,
    playback_rate: a ? a.playbackRate : null,
    stalls: window.__stalls || 0,
  };
}"""


def _override(page: Page, overrides: dict[str, Any]) -> None:
    """Rewrite the hlsConfig in the embed page's config block before the player reads it."""

    def handle(route: Route) -> None:
        response = route.fetch()
        text = response.text()
        marker = 'id="spillway-config">'
        head, rest = text.split(marker, 1)
        block, tail = rest.split("</script>", 1)
        config = json.loads(block)
        config["hlsConfig"].update(overrides)
        route.fulfill(response=response, body=head + marker + json.dumps(config) + "</script>" + tail)

    page.route("**/embed/*", handle)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"median": statistics.median(values), "p95": _pct(values, 0.95), "min": min(values), "max": max(values)}


def _room_state(edge_url: str) -> str | None:
    r = httpx.get(f"{edge_url}/rooms/{ROOM}/status.json", timeout=5)
    return str(r.json()["state"]) if r.status_code == 200 else None


def _join(browser: Browser, edge_url: str, cfg: Config) -> Page:
    """One listener: open the embed page, press play, count its stalls."""
    page = browser.new_page(viewport={"width": 480, "height": 200})
    if cfg.hls:
        _override(page, cfg.hls)
    page.goto(f"{edge_url}/embed/{ROOM}")
    page.wait_for_function("() => window.spillway && window.spillway.mode === 'live'", timeout=30_000)
    page.evaluate("() => { window.__stalls = 0; window.spillway.audio.addEventListener('waiting', "
                  "() => { window.__stalls += 1; }); }")
    page.click("#play")
    page.wait_for_function("() => window.spillway.audio.currentTime > 0.5", timeout=30_000)
    return page


def run_config(cfg: Config, seconds: float) -> dict[str, Any]:
    edge_port = free_port()
    edge_url = f"http://127.0.0.1:{edge_port}"
    env = {"SPILLWAY_PUBLIC_BASE_URL": edge_url, "SPILLWAY_LIVE_WINDOW_SEGMENTS": str(cfg.live_window_segments)}
    samples: list[dict[str, Any]] = []
    stalls = 0
    with (
        origin_server(workers=2, env=env) as origin,
        run_edge(EdgeOptions(origin_url=origin.base_url, listen_port=edge_port, log_every_request=False)),
        chromium() as browser,
    ):
        origin.create_room(ROOM, ingest_token=TOKEN, title="Latency bench")
        # A listener who joins a running broadcast: the live window is full before the page loads.
        join_after_s = cfg.live_window_segments * cfg.segment_s + 2
        push = Push(origin=origin.base_url, room=ROOM, token=TOKEN,
                    seconds=join_after_s + WARMUP_S + seconds + 20, segment_seconds=cfg.segment_s)
        proc = push.spawn()
        try:
            wait_for(lambda: _room_state(edge_url) == "live", timeout_s=30, what="the room to go live", interval_s=0.5)
            time.sleep(join_after_s)
            # Listeners join at different phases of the segment clock (where hls.js starts depends on it).
            pages = []
            for n in range(LISTENERS):
                pages.append(_join(browser, edge_url, cfg))
                time.sleep(cfg.segment_s / LISTENERS + 0.1 * n)
            time.sleep(WARMUP_S)
            for page in pages:
                page.evaluate("() => { window.__stalls = 0; }")
            start = time.monotonic()
            for i in range(int(seconds)):
                for n, page in enumerate(pages):
                    samples.append({"t": round(time.monotonic() - start, 3), "listener": n,
                                    **page.evaluate(SAMPLE_JS)})
                time.sleep(max(0.0, start + i + 1 - time.monotonic()))
            stalls = sum(int(page.evaluate("() => window.__stalls")) for page in pages)
        finally:
            proc.kill()
            proc.wait(timeout=10)
    latency = [s["latency"] for s in samples if s["latency"]]
    wall = [(s["now_ms"] - s["playing_date_ms"]) / 1000 for s in samples if s["playing_date_ms"]]
    result = {
        "config": asdict(cfg),
        "page_defaults": player_page.player_config(
            player_page.EmbedPage(room="x", title="", host="", embed_url="", oembed_url="", status_url="",
                                  hls_url="", replay_url="", stylesheet_url="", hls_js_url="", player_js_url="")
        )["hlsConfig"],
        "samples": len(samples),
        "hls_latency_s": _summary(latency),
        "wall_delay_s": _summary(wall),
        "target_latency_s": samples[-1]["target"] if samples else None,
        "listeners": LISTENERS,
        "stalls": stalls,
        "series": samples,
    }
    print(json.dumps({k: v for k, v in result.items() if k not in ("series", "page_defaults")}), flush=True)
    return result


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for color, r in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], results, strict=False):
        for n in range(r["listeners"]):
            pts = [(s["t"], s["latency"]) for s in r["series"] if s["latency"] and s["listener"] == n]
            left.plot([p[0] for p in pts], [p[1] for p in pts], color=color, linewidth=1,
                      label=r["config"]["name"] if n == 0 else None)
    left.axhline(5.0, color="grey", linestyle="--", label="goal 5 s")
    left.set_xlabel("seconds into the window")
    left.set_ylabel("hls.latency (s behind the live edge)")
    left.set_title("Delay hls.js reports, per configuration")
    left.legend(fontsize=8)
    names = [r["config"]["name"] for r in results]
    x = range(len(names))
    med = [r["hls_latency_s"].get("median", 0) for r in results]
    p95 = [r["hls_latency_s"].get("p95", 0) for r in results]
    wall = [r["wall_delay_s"].get("median", 0) for r in results]
    right.bar([i - 0.27 for i in x], med, width=0.27, label="hls.latency median")
    right.bar(list(x), p95, width=0.27, label="hls.latency p95")
    right.bar([i + 0.27 for i in x], wall, width=0.27, label="wall delay (PDT) median")
    right.axhline(5.0, color="grey", linestyle="--")
    right.set_xticks(list(x), names, rotation=15, fontsize=8)
    right.set_ylabel("seconds")
    right.set_title("Median / p95")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring window per configuration")
    parser.add_argument("--only", nargs="*", help="configuration names to run (default: all)")
    parser.add_argument("--out", default=str(RESULTS / "latency"), help="results path without extension")
    args = parser.parse_args()
    if not 5 <= args.seconds <= 600:
        parser.error("--seconds must be within 5..600")
    chosen = [c for c in CONFIGS if not args.only or c.name in args.only]
    if not chosen:
        parser.error(f"no configuration named {args.only}; known: {[c.name for c in CONFIGS]}")
    results = [run_config(cfg, args.seconds) for cfg in chosen]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"seconds": args.seconds, "warmup_s": WARMUP_S, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "runs": results}, indent=2) + "\n")
    plot(results, out.with_suffix(".png"))
    print(f"\n{'configuration':<18} {'hls.latency median':>19} {'p95':>6} {'wall delay median':>18} {'p95':>6} "
          f"{'stalls':>6}")
    for r in results:
        lat, wall = r["hls_latency_s"], r["wall_delay_s"]
        print(f"{r['config']['name']:<18} {lat.get('median', 0):>19.2f} {lat.get('p95', 0):>6.2f} "
              f"{wall.get('median', 0):>18.2f} {wall.get('p95', 0):>6.2f} {r['stalls']!s:>6}")
    print(f"\nwrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
