"""Issue 15: who is speaking, in the stream. One broadcast on a real origin (gunicorn, 2 workers), a plain-ffmpeg
pusher (1 s segments), speaker turns and a chapter posted to the admin API while hls.js plays it in Chromium.

- hls.js receives every event twice, as EXT-X-DATERANGE cues and as in-band ID3 (emsg) cues, at the media time
  of the event's PDT within ±0.5 s (measured from the fragments hls.js buffered: start and PROGRAM-DATE-TIME);
- the page shows "Now speaking: …" for each turn, in order;
- every live playlist version and the replay parse strictly (m3u8 + the spec's DATERANGE rules); ffmpeg (and
  streamlink, when installed) read the live and replay playlists;
- the replay lists chapters; a click seeks to the turn, and the chapter starts where the turn does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import m3u8
import pytest
from playwright.sync_api import Page

from tests.origin.player.browser import Console, chromium, js, wait_js
from tests.support.daterange_check import check_dateranges, media_time
from tests.support.origin_server import ADMIN_TOKEN, OriginServer, origin_server
from tests.support.pusher import Push

ROOM = "panel"
TOKEN = "ingest-token-for-metadata-tests-01"
BROADCAST_S = 34.0  # at most: the push ends once the player's view is captured (start-up takes its share)
TURN_S = 7.0  # longer than chapters.MIN_CHAPTER_S: each turn is a chapter
TOLERANCE_S = 0.5

CAPTURE = """() => {
  const p = window.spillway;
  window.__frags = []; window.__meta = [];
  p.hls.on(Hls.Events.FRAG_BUFFERED, (_e, d) => window.__frags.push(
    {sn: d.frag.sn, start: d.frag.start, duration: d.frag.duration, pdt: d.frag.programDateTime}));
  p.hls.on(Hls.Events.FRAG_PARSING_METADATA, (_e, d) => d.samples.forEach(s => window.__meta.push(
    {pts: s.pts, type: s.type, sn: d.frag.sn})));
  window.__ranges = {};
  p.hls.on(Hls.Events.LEVEL_UPDATED, (_e, d) => {
    for (const [id, r] of Object.entries(d.details.dateRanges)) window.__ranges[id] = {id: id, start: r.startTime,
      end: r.duration === null ? null : r.startTime + r.duration, cls: r.class, speaker: r.attr["X-SPEAKER"] || null};
  });
  // hls.js removes a DATERANGE's cues when the range leaves the live playlist: keep what each cue was.
  window.__cues = {};
  window.setInterval(() => {
    for (const t of p.audio.textTracks) {
      if (t.kind !== "metadata") continue;
      for (const c of t.cues || []) {
        const v = c.value || {};
        const data = typeof v.data === "string" ? v.data : null;
        window.__cues[[c.type, c.id, v.key, v.info, data, c.startTime.toFixed(3)].join("|")] =
          {id: c.id, type: c.type, start: c.startTime, end: c.endTime, key: v.key, info: v.info, data: data};
      }
    }
  }, 100);
}"""

CUES = "() => Object.values(window.__cues)"


@dataclass(kw_only=True)
class Broadcast:
    origin: OriginServer
    events: list[dict[str, object]] = field(default_factory=list)  # the admin API's answers, in order
    live_versions: list[str] = field(default_factory=list)
    cues: list[dict[str, object]] = field(default_factory=list)
    frags: list[dict[str, float]] = field(default_factory=list)
    meta: list[dict[str, object]] = field(default_factory=list)
    speaker_log: list[list[str]] = field(default_factory=list)
    ranges: dict[str, dict[str, object]] = field(default_factory=dict)  # hls.js's parsed DATERANGEs, by ID


def _post(origin: OriginServer, **body: object) -> dict[str, object]:
    r = httpx.post(f"{origin.base_url}/v1/rooms/{ROOM}/events", json=body, timeout=10,
                   headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})  # fmt: skip
    assert r.status_code == 201, r.text
    doc: dict[str, object] = r.json()
    return doc


def _watch_live(origin: OriginServer, out: list[str], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        r = httpx.get(f"{origin.base_url}/rooms/{ROOM}/live/a64.m3u8", timeout=5)
        if r.status_code == 200 and (not out or out[-1] != r.text):
            out.append(r.text)


@pytest.fixture(scope="module")
def broadcast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broadcast, Page, Console]]:
    with origin_server(workers=2) as origin, chromium() as browser:
        origin.create_room(ROOM, ingest_token=TOKEN, title="Panel")
        b = Broadcast(origin=origin)
        console = Console()
        page = console.attach(browser.new_page())
        page.goto(f"{origin.base_url}/embed/{ROOM}")
        push = Push(origin=origin.base_url, room=ROOM, token=TOKEN, seconds=BROADCAST_S, segment_seconds=1.0)
        proc = push.spawn(stoppable=True)
        stop = threading.Event()
        watcher = threading.Thread(target=_watch_live, args=(origin, b.live_versions, stop), daemon=True)
        try:
            wait_js(page, "window.spillway.mode === 'live'", timeout_s=25)
            page.click("#play")
            wait_js(page, "window.spillway.audio.currentTime > 0.5", timeout_s=20)
            page.evaluate(CAPTURE)
            watcher.start()
            b.events.append(_post(origin, kind="chapter", title="Opening"))
            b.events.append(_post(origin, kind="speaker", speaker="Alice", state="on"))
            time.sleep(TURN_S)
            b.events.append(_post(origin, kind="speaker", speaker="Alice", state="off"))
            b.events.append(_post(origin, kind="speaker", speaker="Bob", state="on"))
            time.sleep(TURN_S)
            b.events.append(_post(origin, kind="speaker", speaker="Bob", state="off"))
            b.events.append(_post(origin, kind="chapter", title="Q&A \"live\""))
            b.events.append(_post(origin, kind="text", text="Send your questions"))
            time.sleep(TURN_S)  # the player is ~3 s behind: let it play past the last event
            b.cues = list(page.evaluate(CUES))
            b.frags = list(page.evaluate("() => window.__frags"))
            b.meta = list(page.evaluate("() => window.__meta"))
            b.ranges = dict(page.evaluate("() => window.__ranges"))
            b.speaker_log = [list(e["names"]) for e in page.evaluate("() => window.spillway.speakerLog")]
        finally:
            stop.set()
            push.stop_early(proc)  # what follows the capture is never looked at
            _, err = proc.communicate(timeout=BROADCAST_S * 3 + 30)
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
        assert push.end().status_code == 200
        assert origin.end_broadcast(ROOM).status_code == 200
        yield b, page, console


def _frag_pdts(b: Broadcast) -> list[tuple[float, float, float]]:
    return sorted({(f["start"], f["duration"], f["pdt"] / 1000) for f in b.frags if f["pdt"]})


def _speaker_turns(b: Broadcast) -> dict[str, dict[str, object]]:
    final: dict[str, dict[str, object]] = {}
    for e in b.events:
        final[str(e["id"])] = e
    return final


def test_hlsjs_gets_every_event_as_daterange_and_inband_cue_on_time(broadcast: tuple[Broadcast, Page, Console]) -> None:
    b, _page, console = broadcast
    frags = _frag_pdts(b)
    errors: dict[str, list[float]] = {"daterange": [], "inband": []}
    for ident, event in _speaker_turns(b).items():
        expected = media_time(frags, float(str(event["start"])))
        assert expected is not None, (ident, frags)
        # DATERANGE as hls.js parsed and timed it (its text-track cues for a range can be lost in Chromium when
        # they are added before its metadata <track> has loaded: hls.js 1.7.4; counted when present).
        parsed = b.ranges.get(ident)
        assert parsed is not None, (ident, b.ranges)
        errors["daterange"].append(abs(float(str(parsed["start"])) - expected))
        ranges = [c for c in b.cues if c["id"] == ident and c["type"] == "com.apple.quicktime.HLS"]
        errors["daterange"].extend(abs(float(str(c["start"])) - expected) for c in ranges)
        starts = [c for c in b.cues if c["info"] == "org.spillway.event"
                  and (json.loads(str(c["data"]))["id"], json.loads(str(c["data"]))["edge"]) == (ident, "start")]
        assert starts, (ident, [c for c in b.cues if c["info"]])
        errors["inband"].append(abs(float(str(starts[0]["start"])) - expected))
        if event["kind"] == "speaker":
            assert parsed["speaker"] == event["speaker"], parsed
            end = media_time(frags, float(str(event["end"])))
            assert end is not None and abs(float(str(parsed["end"])) - end) <= TOLERANCE_S, (parsed, end)
    print(f"cue timing error (s): DATERANGE max {max(errors['daterange']):.3f}, in-band max "
          f"{max(errors['inband']):.3f} over {len(errors['inband'])} events")
    assert max(errors["daterange"]) <= TOLERANCE_S and max(errors["inband"]) <= TOLERANCE_S, errors
    assert {m["type"] for m in b.meta} == {"https://aomedia.org/emsg/ID3"}  # FRAG_PARSING_METADATA: emsg ID3
    # The page said who was speaking, turn by turn.
    assert [names for names in b.speaker_log if names] == [["Alice"], ["Bob"]], b.speaker_log
    assert console.errors == [], console.errors


def test_playlists_parse_strictly_and_ffmpeg_plays_them(broadcast: tuple[Broadcast, Page, Console]) -> None:
    b, page, _console = broadcast
    assert len(b.live_versions) >= 10
    seen: set[str] = set()
    for text in b.live_versions:
        seen |= {d.id for d in check_dateranges(text)}
    assert seen == set(_speaker_turns(b)), seen  # every event appeared in the live window
    last_live = b.live_versions[-1]
    wait_js(page, "window.spillway.mode === 'replay'", timeout_s=45)
    base = b.origin.base_url
    replay = httpx.get(f"{base}/rooms/{ROOM}/replay/a64.m3u8", timeout=5).text
    ranges = check_dateranges(replay)
    assert {d.id for d in ranges} == set(_speaker_turns(b))
    closed = {d.id for d in ranges if d.end_date}
    assert {"speaker-2", "speaker-3"} <= closed  # the turns' second tags added END-DATE and DURATION
    master = m3u8.loads(httpx.get(f"{base}/rooms/{ROOM}/replay.m3u8", timeout=5).text)
    assert [(s.data_id, s.uri) for s in master.session_data] == [("org.spillway.chapters", "chapters.json")]
    for url in (f"{base}/rooms/{ROOM}/replay.m3u8", f"{base}/rooms/{ROOM}/replay/a48.m3u8"):
        run = subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-i", url, "-f", "null", "-"],
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert run.returncode == 0 and run.stderr == "", run.stderr
    assert "#EXT-X-DATERANGE" in last_live
    streamlink = shutil.which("streamlink", path=str(Path(sys.executable).parent))
    if streamlink is not None:
        run = subprocess.run([streamlink, "--stdout", f"hls://{base}/rooms/{ROOM}/replay.m3u8", "best"],
                             capture_output=True, timeout=60, check=False)  # fmt: skip
        assert run.returncode == 0 and len(run.stdout) > 100_000, run.stderr[-2000:]


def test_replay_chapters_seek_to_the_turn(broadcast: tuple[Broadcast, Page, Console]) -> None:
    b, page, console = broadcast
    wait_js(page, "window.spillway.mode === 'replay'", timeout_s=45)
    wait_js(page, "!document.getElementById('chapters').hidden", timeout_s=15)
    doc = httpx.get(f"{b.origin.base_url}/rooms/{ROOM}/chapters.json", timeout=5).json()
    titles = [c["title"] for c in doc["chapters"]]
    assert titles == ["Opening", "Bob", 'Q&A "live"'], doc  # Alice opened the topic; Bob's turn; the new topic
    replay = m3u8.loads(httpx.get(f"{b.origin.base_url}/rooms/{ROOM}/replay/a64.m3u8", timeout=5).text)
    bob = next(e for e in b.events if e.get("speaker") == "Bob")
    expected = media_time(_vod_frags(replay), float(str(bob["start"])))
    assert expected is not None and abs(doc["chapters"][1]["start"] - expected) <= 0.01, (doc, expected)
    page.click("#chapters summary")
    page.click("#chapter-list li:nth-child(2) button")
    wait_js(page, "!window.spillway.audio.paused", timeout_s=10)
    position = float(js(page, "window.spillway.audio.currentTime"))  # type: ignore[arg-type]
    assert abs(position - expected) <= TOLERANCE_S + 0.3, (position, expected)
    wait_js(page, "window.spillway.speakers.join() === 'Bob'", timeout_s=10)  # the replay's cues too
    assert js(page, "document.getElementById('speaking').textContent") == "Now speaking: Bob"
    assert js(page, "document.querySelector('#chapter-list li:nth-child(2) button').getAttribute('aria-current')")\
        == "true"
    assert console.errors == [], console.errors


def _vod_frags(playlist: m3u8.M3U8) -> list[tuple[float, float, float]]:
    out, t = [], 0.0
    for seg in playlist.segments:
        out.append((t, seg.duration, seg.current_program_date_time.timestamp()))
        t += seg.duration
    return out
