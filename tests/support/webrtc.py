"""WebRTC in Debian's Chromium for the SFU tests: a speaker page (janus.js, fake microphone from a WAV made at
test time), listener browsers, and in-page audio probes (getStats, WebAudio FFT).

Chromium reaches Janus over loopback only with --allow-loopback-in-peer-connection; the page must be served
from http://127.0.0.1 (on about:blank, fetch to Janus fails).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from tests.origin.player.browser import CHROMIUM, CHROMIUM_ARGS

JANUS_JS = Path(__file__).resolve().parents[2] / "origin" / "player" / "vendor" / "janus.js"
WEBRTC_ARGS = [
    "--allow-loopback-in-peer-connection", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
]  # fmt: skip


def tone_wav(path: Path, *, frequency_hz: float, seconds: float = 10.0) -> Path:
    """A 48 kHz mono tone (Chromium loops its fake-capture file)."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
         "-i", f"sine=frequency={frequency_hz}:sample_rate=48000:duration={seconds}",
         "-af", "volume=4", "-ac", "1", "-c:a", "pcm_s16le", str(path)],
        check=True, timeout=30,
    )  # fmt: skip
    return path


@contextlib.contextmanager
def webrtc_browsers(*, fake_audio: Path) -> Iterator[tuple[Browser, Browser]]:
    """(speakers, listeners): two Chromium processes (one Playwright); the speakers' microphone plays `fake_audio`."""
    with sync_playwright() as pw:
        mic = f"--use-file-for-fake-audio-capture={fake_audio}"
        speakers = pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *WEBRTC_ARGS, mic])
        try:
            listeners = pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *WEBRTC_ARGS])
            try:
                yield speakers, listeners
            finally:
                listeners.close()
        finally:
            speakers.close()


SPEAKER_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Speaker</title>
<link rel="icon" href="data:,">
<script id="cfg" type="application/json">%CONFIG%</script>
<script src="/janus.js"></script></head><body><h1>Speaker</h1><script>
const cfg = JSON.parse(document.getElementById("cfg").textContent);
window.speaker = {state: "starting", error: null, handle: null};
Janus.init({debug: false, dependencies: Janus.useDefaultDependencies({adapter: {browserDetails: {browser: "chrome",
  version: 120}}}), callback: () => {
  const janus = new Janus({server: cfg.url, iceServers: [], error: e => { speaker.error = String(e); },
    success: () => janus.attach({plugin: "janus.plugin.audiobridge",
      success: h => { speaker.handle = h; join(0); },
      onmessage: (msg, jsep) => {
        // A speaker slot still held (a previous connection Janus has not timed out yet): take the next one.
        if (msg.error_code === 490 && speaker.slot + 1 < cfg.ids.length) { join(speaker.slot + 1); return; }
        if (msg.error_code) { speaker.error = msg.error_code + " " + msg.error; return; }
        if (msg.audiobridge === "joined" && msg.id === cfg.ids[speaker.slot]) {
          speaker.state = "joined";
          speaker.handle.createOffer({tracks: [{type: "audio", capture: true, recv: true}], trickle: false,
            success: offer => speaker.handle.send({message: {request: "configure", muted: false}, jsep: offer}),
            error: e => { speaker.error = String(e); }});
        }
        if (jsep) speaker.handle.handleRemoteJsep({jsep});
      },
      webrtcState: up => { speaker.state = up ? "up" : "down"; }})});
}});
function join(slot) {
  speaker.slot = slot;
  speaker.handle.send({message: {request: "join", room: cfg.room, id: cfg.ids[slot], token: cfg.token,
    display: cfg.display || "speaker", muted: false}});
}
window.setMuted = m => speaker.handle.send({message: {request: "configure", muted: m}});
// Silence at the microphone (the track sends level 127): Janus then says "stopped-talking" (a muted participant
// is not measured at all).
window.setTalking = on => on ? speaker.handle.unmuteAudio() : speaker.handle.muteAudio();
</script></body></html>"""


@dataclass(kw_only=True)
class SpeakerSite:
    base_url: str
    pages: dict[str, bytes] = field(default_factory=dict)

    def add(self, path: str, *, url: str, room: int, token: str, ids: tuple[int, ...], display: str = "speaker") -> str:
        """A speaker page joining AudioBridge `room` at Janus `url` in the first free speaker slot of `ids`."""
        doc = json.dumps({"url": url, "room": room, "token": token, "ids": list(ids), "display": display})
        self.pages[path] = SPEAKER_PAGE.replace("%CONFIG%", doc).encode()
        return self.base_url + path


@contextlib.contextmanager
def speaker_site() -> Iterator[SpeakerSite]:
    """An HTTP server on 127.0.0.1 serving speaker pages and /janus.js (the vendored copy)."""
    janus_js = JANUS_JS.read_bytes()
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = janus_js if self.path == "/janus.js" else pages.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript" if self.path.endswith(".js") else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="speaker-site", daemon=True)
    thread.start()
    try:
        yield SpeakerSite(base_url=f"http://127.0.0.1:{server.server_address[1]}", pages=pages)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- probes (run in the page) -------------------------------------------------------------------------------

INBOUND_AUDIO = """async () => {
  const pc = window.spillway.seat && window.spillway.seat.pc();
  if (!pc) return null;
  const stats = await pc.getStats();
  let found = null;
  stats.forEach(s => { if (s.type === "inbound-rtp" && s.kind === "audio") found = s; });
  return found && {audioLevel: found.audioLevel || 0, energy: found.totalAudioEnergy || 0,
                   packets: found.packetsReceived || 0, ice: pc.iceConnectionState};
}"""

# The dominant frequency the page is playing, from an AnalyserNode on the WebRTC stream or the HLS element.
PEAK_FREQUENCY = """async (which) => {
  const p = window.spillway;
  window.__probe = window.__probe || {};
  let probe = window.__probe[which];
  if (!probe) {
    const ctx = new AudioContext();
    const src = which === "rtc" ? ctx.createMediaStreamSource(p.rtcAudio.srcObject)
                                : ctx.createMediaElementSource(p.audio);
    const an = ctx.createAnalyser();
    an.fftSize = 8192;
    src.connect(an);
    const sink = ctx.createGain();  // pulled by the destination, so the analyser keeps running
    sink.gain.value = which === "rtc" ? 0 : 1;  // the HLS element now plays through this graph
    an.connect(sink);
    sink.connect(ctx.destination);
    probe = window.__probe[which] = {ctx, an};
  }
  await probe.ctx.resume();
  const peaks = [];
  for (let i = 0; i < 8; i++) {
    await new Promise(r => setTimeout(r, 120));
    const bins = new Float32Array(probe.an.frequencyBinCount);
    probe.an.getFloatFrequencyData(bins);
    let best = 0;
    for (let k = 1; k < bins.length; k++) if (bins[k] > bins[best]) best = k;
    peaks.push({hz: best * probe.ctx.sampleRate / probe.an.fftSize, db: bins[best]});
  }
  return peaks;
}"""


def peak(page: Page, which: str) -> tuple[float, float]:
    """(median dominant frequency in Hz, loudest peak in dBFS) over ~1 s of what the page plays."""
    peaks = page.evaluate(PEAK_FREQUENCY, which)
    hz = sorted(p["hz"] for p in peaks)[len(peaks) // 2]
    return float(hz), float(max(p["db"] for p in peaks))
