"""Issue 15: a Janus room with two Chromium speakers taking turns → the right turn sequence in the replay.

Janus (Debian) with the AudioBridge room created by `spillway transcode --janus` (audiolevel events on), the
origin under gunicorn (2 workers, SPILLWAY_SFU=janus) whose publishing worker joins the room as a silent
observer, two speaker pages ("Alice", "Bob") with a fake microphone that they silence between turns.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from playwright.sync_api import Page

from origin.admission.sfu.naming import RoomKeys, janus_room_id
from tests.origin.player.browser import js, wait_js
from tests.support.hls_check import wait_for
from tests.support.janus import ADMIN_KEY, ROOM_SECRET, janus_server
from tests.support.origin_server import origin_server
from tests.support.transcoder_proc import transcoder
from tests.support.webrtc import speaker_site, tone_wav, webrtc_browsers

pytestmark = pytest.mark.slow

ROOM = "talk-room"
TOKEN = "ingest-token-for-talk-tests-0123456789"
ROOM_KEYS = RoomKeys(key=ROOM_SECRET.encode())
JANUS_ENV = {"SPILLWAY_JANUS_ROOM_SECRET": ROOM_SECRET, "SPILLWAY_JANUS_ADMIN_KEY": ADMIN_KEY}
TURN_S = 7.0
PAUSE_S = 2.5


def test_two_speakers_taking_turns_become_the_replay_chapters(tmp_path_factory: pytest.TempPathFactory) -> None:
    wav = tone_wav(tmp_path_factory.mktemp("talk") / "tone.wav", frequency_hz=440.0)
    with janus_server(rtp_port_range="41000-41999") as janus:
        env = {**JANUS_ENV, "SPILLWAY_SFU": "janus", "SPILLWAY_JANUS_URL": janus.url}
        with origin_server(workers=2, env=env) as origin:
            origin.create_room(ROOM, ingest_token=TOKEN, title="Talk room")
            with (
                transcoder(origin=origin.base_url, room=ROOM, token=TOKEN, env=JANUS_ENV,
                           source_args=("--janus", janus.url)),
                speaker_site() as site,
                webrtc_browsers(fake_audio=wav) as (speakers, _listeners),
            ):  # fmt: skip
                wait_for(lambda: httpx.get(f"{origin.base_url}/rooms/{ROOM}/master.m3u8").status_code == 200,
                         timeout_s=30, what="the room's HLS from the Janus forwarder")  # fmt: skip
                pages: dict[str, Page] = {}
                for name in ("Alice", "Bob"):
                    url = site.add(f"/{name}", url=janus.url, room=janus_room_id(ROOM),
                                   token=ROOM_KEYS.speaker_token(ROOM), ids=ROOM_KEYS.speaker_ids(ROOM), display=name)
                    page = speakers.new_page()
                    page.goto(url)
                    wait_js(page, "window.speaker.state === 'up' || window.speaker.error", timeout_s=20)
                    assert js(page, "window.speaker.error") is None
                    page.evaluate("() => window.setTalking(false)")
                    pages[name] = page
                time.sleep(PAUSE_S + 1)
                turns = ["Alice", "Bob", "Alice"]
                for name in turns:
                    pages[name].evaluate("() => window.setTalking(true)")
                    time.sleep(TURN_S)
                    pages[name].evaluate("() => window.setTalking(false)")
                    time.sleep(PAUSE_S)
                assert origin.end_broadcast(ROOM).status_code == 200
                wait_for(lambda: httpx.get(f"{origin.base_url}/rooms/{ROOM}/chapters.json").status_code == 200,
                         timeout_s=40, what="the replay's chapters")  # fmt: skip
                doc = httpx.get(f"{origin.base_url}/rooms/{ROOM}/chapters.json", timeout=5).json()
                journal = (origin.state_dir / "rooms" / ROOM / "journal.jsonl").read_text().splitlines()
    recorded = [json.loads(line) for line in journal if line.startswith('["t",')]
    # ["t", kind, id, start, end, speaker, ...]: each turn opened, then closed, in the order they spoke.
    assert [r[5] for r in recorded if r[4] is None] == turns, recorded
    assert [r[5] for r in recorded if r[4] is not None] == turns, recorded
    lengths = [r[4] - r[3] for r in recorded if r[4] is not None]
    assert all(abs(s - TURN_S) < 1.5 for s in lengths), lengths  # Janus decides every 0.5 s
    assert [c["title"] for c in doc["chapters"]] == turns, doc
    assert [c["speakers"] for c in doc["chapters"]] == [[t] for t in turns], doc
    print(f"turn lengths (s) as recorded from Janus: {[round(s, 2) for s in lengths]} (spoken {TURN_S})")
