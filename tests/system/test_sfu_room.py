"""The real room in front: Janus (Debian) enforces the seats, the embed player takes them or plays HLS.

Real parts on 127.0.0.1 only: Janus from a generated config directory, the origin under gunicorn (2 workers,
SPILLWAY_SFU=janus), `spillway transcode --janus` (Spillway writes the SDP of the room's forwarder), a speaker
in Chromium with a fake microphone playing a tone made at test time, three Chromium listeners on the embed page.

Cap 2: two listeners hear the room over WebRTC, the third plays HLS and hears the same tone; when a seated one
leaves, the third is promoted within 10 s. Forged and expired tokens are refused by Janus itself. The
transcoder rides through 14 s of speaker silence (past its idle timeouts) and the speaker leaving and rejoining.
Janus killed: joins go to HLS at once (sfu_unavailable); Janus back: room, allowed list and forwarder re-created.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Page

from origin.admission.sfu.janus import AudioBridge
from origin.admission.sfu.janus_api import JanusClient
from origin.admission.sfu.naming import RoomKeys, janus_room_id
from tests.origin.player.browser import Console, js, wait_js
from tests.support.hls_check import wait_for
from tests.support.janus import ADMIN_KEY, ROOM_SECRET, JanusProcess, janus_server, plain_join
from tests.support.origin_server import OriginServer, origin_server
from tests.support.transcoder_proc import TranscoderProcess, transcoder
from tests.support.webrtc import INBOUND_AUDIO, SpeakerSite, peak, speaker_site, tone_wav, webrtc_browsers

pytestmark = pytest.mark.slow

ROOM = "janus-room"
TOKEN = "ingest-token-for-sfu-tests-0123456789"
TONE_HZ = 660.0
HZ_TOLERANCE = 15.0  # FFT bins are 5.9 Hz at 48 kHz / 8192
SILENT_LEVEL = 0.001  # inbound-rtp audioLevel (linear, 1 = full scale): the tone arrives at ~0.05
LEASE_S = 6.0
# Past every timeout a silent room could trip: ffmpeg's RTP idle timeout (5 s, transcoder/source.py JanusSource)
# and the origin's session timeout (10 s); a forwarder that stopped sending would end ffmpeg's session.
SILENCE_S = 14.0
ROOM_KEYS = RoomKeys(key=ROOM_SECRET.encode())
STALE_POLL = re.compile(r"404 http://[^/]+/janus/\d+\?rid=\d+&maxev=\d+")  # a destroyed session's last long poll
JANUS_ENV = {"SPILLWAY_JANUS_ROOM_SECRET": ROOM_SECRET, "SPILLWAY_JANUS_ADMIN_KEY": ADMIN_KEY}


@dataclass(kw_only=True)
class Room:
    janus: JanusProcess
    origin: OriginServer
    transcoder: TranscoderProcess
    speakers: Browser
    listeners: Browser
    site: SpeakerSite
    speaker: Page
    listener_kept: Page | None = None

    def bridge(self) -> AudioBridge:
        return AudioBridge(JanusClient(url=self.janus.url), room_keys=ROOM_KEYS, admin_key=ADMIN_KEY)

    def open_speaker(self) -> Page:
        url = self.site.add(
            "/speaker", url=self.janus.url, room=janus_room_id(ROOM), token=ROOM_KEYS.speaker_token(ROOM),
            ids=ROOM_KEYS.speaker_ids(ROOM),
        )  # fmt: skip
        page = self.speakers.new_page()
        page.goto(url)
        wait_js(page, "window.speaker.state === 'up' || window.speaker.error", timeout_s=20)
        assert js(page, "window.speaker.error") is None, js(page, "window.speaker.error")
        return page

    def listener(self, console: Console) -> Page:
        page = console.attach(self.listeners.new_page())
        page.goto(f"{self.origin.base_url}/embed/{ROOM}")
        wait_js(page, "window.spillway.mode === 'live'", timeout_s=30)
        page.click("#play")
        return page

    def join(self, room: str = ROOM) -> dict[str, object]:
        doc: dict[str, object] = httpx.post(f"{self.origin.base_url}/v1/rooms/{room}/listeners", timeout=10).json()
        return doc


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    wav = tone_wav(tmp_path_factory.mktemp("speaker") / "tone.wav", frequency_hz=TONE_HZ)
    with janus_server() as janus:
        env = {**JANUS_ENV, "SPILLWAY_SFU": "janus", "SPILLWAY_JANUS_URL": janus.url,
               "SPILLWAY_SEAT_LEASE_SECONDS": str(LEASE_S)}  # fmt: skip
        with origin_server(workers=2, env=env) as origin:
            origin.create_room(ROOM, ingest_token=TOKEN, realtime_cap=2, title="Janus room")
            origin.create_room("expiry-room", ingest_token=TOKEN, realtime_cap=1)
            with (
                transcoder(origin=origin.base_url, room=ROOM, token=TOKEN, env=JANUS_ENV,
                           source_args=("--janus", janus.url)) as tx,
                speaker_site() as site,
                webrtc_browsers(fake_audio=wav) as (speakers, listeners),
            ):  # fmt: skip
                r = Room(janus=janus, origin=origin, transcoder=tx, speakers=speakers, listeners=listeners, site=site,
                         speaker=speakers.new_page())  # fmt: skip
                r.speaker.close()
                r.speaker = r.open_speaker()
                wait_for(lambda: httpx.get(f"{origin.base_url}/rooms/{ROOM}/master.m3u8").status_code == 200,
                         timeout_s=30, what="the room's HLS from the Janus forwarder")  # fmt: skip
                yield r


def _inbound(page: Page) -> dict[str, float]:
    """The WebRTC listener's inbound-rtp audio stats ({} before the first packets)."""
    stats = page.evaluate(INBOUND_AUDIO)
    return dict(stats) if stats else {}


def _level(page: Page) -> float:
    return float(_inbound(page).get("audioLevel", 0.0))


def _hears_tone(page: Page, which: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        hz, db = peak(page, which)
        if abs(hz - TONE_HZ) <= HZ_TOLERANCE and db > -70:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{which}: dominant {hz:.0f} Hz at {db:.0f} dB, expected {TONE_HZ:.0f} Hz")
        time.sleep(0.3)


def test_cap_two_webrtc_then_hls_promotion_and_janus_refusals(room: Room) -> None:
    # An expired lease's token (another room, started first so its expiry overlaps the rest).
    expiring = room.join("expiry-room")
    joined_at = time.monotonic()
    assert expiring["mode"] == "realtime"
    access = expiring["sfu"]
    assert isinstance(access, dict)

    consoles = [Console() for _ in range(3)]
    pages = [room.listener(c) for c in consoles[:2]]
    third: Page | None = None
    try:
        for page in pages:  # both seats taken before the third listener arrives
            wait_js(page, "window.spillway.transport === 'webrtc'", timeout_s=20)
        third = room.listener(consoles[2])
        _seats_then_promotion(room, pages, third, access, joined_at)
        for console in consoles[1:]:
            assert not _errors(console), (console.errors, console.failed_responses)
    finally:  # seats held by pages left open would keep the next test's listener on HLS
        for page in (*pages, third):
            if page is not None and not page.is_closed():
                page.close()


def _errors(console: Console) -> list[str]:
    """Console errors, but for the 404 that Chromium logs when a Janus session the player destroyed (a join
    attempt that failed, retried later) still had its long poll in flight: janus.js polls again before the
    destroy's answer arrives."""
    stale_polls = [r for r in console.failed_responses if STALE_POLL.fullmatch(r)]
    benign = "Failed to load resource: the server responded with a status of 404 (Not Found)"
    if stale_polls and len(stale_polls) == len(console.failed_responses):
        return [e for e in console.errors if e != benign]
    return console.errors


def _seats_then_promotion(room: Room, pages: list[Page], third: Page, access: dict[str, object],
                          joined_at: float) -> None:  # fmt: skip
    wait_js(third, "window.spillway.audio.currentTime > 1", timeout_s=20)
    # status.json said "full", so the player did not even ask (or asked on a stale copy and heard "full").
    assert js(third, "window.spillway.seatResults") in ([], ["hls:full"])
    assert js(third, "window.spillway.transport") == "hls"
    for page in pages:
        wait_for(lambda p=page: _level(p) > 0, timeout_s=10, what="inbound audio level > 0")
        assert _inbound(page)["ice"] in ("connected", "completed")
        _hears_tone(page, "rtc")
        assert page.text_content("#delay") == "Live"
    _hears_tone(third, "hls")
    assert "behind live" in (third.text_content("#delay") or "")

    # Janus itself refuses a forged token and an expired lease's token.
    forged = plain_join(room.janus.url, room=janus_room_id(ROOM), token="l.forged-token", participant=2**52 + 99)
    assert forged["error_code"] == 489
    # The lease has expired and a sync pass (every 2 s) has run: counted from the join, not from here.
    time.sleep(max(0.0, LEASE_S + 3.0 - (time.monotonic() - joined_at)))
    expired = plain_join(room.janus.url, room=int(str(access["room"])), token=str(access["token"]),
                         participant=int(str(access["participant_id"])))  # fmt: skip
    assert expired["error_code"] == 489, expired

    # A seated listener leaves: the HLS listener is promoted within 10 s and hears the room over WebRTC.
    left_at = time.monotonic()
    pages[0].close()
    wait_js(third, "window.spillway.transport === 'webrtc'", timeout_s=10)
    promoted_s = time.monotonic() - left_at
    assert promoted_s <= 10.0
    wait_for(lambda: _level(third) > 0, timeout_s=10, what="promoted listener hears WebRTC")
    _hears_tone(third, "rtc")


def _live_segments(room: Room) -> list[str]:
    text = httpx.get(f"{room.origin.base_url}/rooms/{ROOM}/live/a64.m3u8", timeout=5).text
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def _last_index(uris: list[str]) -> int:
    return max(int(uri.rsplit("/", 1)[-1].split(".")[0]) for uri in uris if uri.endswith(".m4s"))


def _session_of(uri: str) -> str:
    return uri.split("/")[-3] if "/media/" in f"/{uri}" else uri


def test_transcoder_rides_through_silence_and_the_speaker_leaving(room: Room) -> None:
    pid = room.transcoder.ffmpeg_pid()
    console = Console()
    listener = room.listener(console)
    wait_js(listener, "window.spillway.transport === 'webrtc'", timeout_s=20)
    _hears_tone(listener, "rtc")

    room.speaker.evaluate("() => window.setMuted(true)")  # silence from the only speaker
    before = _live_segments(room)
    time.sleep(3)
    assert _level(listener) < SILENT_LEVEL, _inbound(listener)  # the room is silent ...
    time.sleep(SILENCE_S - 3)
    during = _live_segments(room)
    assert room.transcoder.ffmpeg_pid() == pid  # ... and the transcoder kept its ffmpeg and its session
    # 1 s segments: all but 5 of them arrived
    assert _last_index(during) - _last_index(before) >= SILENCE_S - 5, (before, during)
    assert not any("filler" in uri for uri in during), during
    room.speaker.evaluate("() => window.setMuted(false)")
    _hears_tone(listener, "rtc")

    room.speaker.close()  # the speaker leaves ...
    time.sleep(4)
    room.speaker = room.open_speaker()  # ... and comes back
    _hears_tone(listener, "rtc")
    after = _live_segments(room)
    assert room.transcoder.ffmpeg_pid() == pid
    assert {_session_of(u) for u in after} == {_session_of(u) for u in before}, (before, after)
    assert not _errors(console), (console.errors, console.failed_responses)  # a retried join may leave a stale poll
    room.listener_kept = listener  # the next test watches it fall back to HLS when Janus dies


def test_janus_down_then_back(room: Room) -> None:
    seated = room.listener_kept
    assert seated is not None, "runs after test_transcoder_rides_through_silence_and_the_speaker_leaving"
    assert js(seated, "window.spillway.transport") == "webrtc"
    room.janus.kill()
    killed_at = time.monotonic()
    first = room.join()
    assert first["mode"] == "hls" and first["reason"] == "sfu_unavailable", first
    started = time.monotonic()
    again = room.join()  # known down: answered without waiting on Janus
    assert again["reason"] == "sfu_unavailable" and time.monotonic() - started < 0.5
    assert httpx.get(f"{room.origin.base_url}/rooms/{ROOM}/master.m3u8", timeout=5).status_code == 200
    wait_js(seated, "window.spillway.transport === 'hls'", timeout_s=20)  # the seated listener: HLS at once
    fell_back_s = time.monotonic() - killed_at
    assert fell_back_s < 20
    wait_js(seated, "!window.spillway.audio.paused", timeout_s=10)
    metrics = httpx.get(f"{room.origin.base_url}/metrics", timeout=5).text
    assert 'spillway_sfu_fallbacks_total{sfu="janus"}' in metrics

    room.janus.start()  # a fresh Janus: no rooms, no allowed lists, no forwarders
    deadline = time.monotonic() + 20
    while (doc := room.join())["mode"] != "realtime":
        assert time.monotonic() < deadline, doc
        time.sleep(0.5)
    bridge = room.bridge()
    assert ROOM in bridge.rooms()
    access = doc["sfu"]
    assert isinstance(access, dict)
    assert str(access["token"]) in bridge.allowed(ROOM, "enable")
    wait_for(lambda: bool(bridge.forwarders(ROOM)), timeout_s=15, what="the transcoder's forwarder re-created")
    sessions_before = {_session_of(u) for u in _live_segments(room)}
    wait_for(
        lambda: any(_session_of(u) not in sessions_before and "filler" not in u for u in _live_segments(room)),
        timeout_s=30, what="HLS segments from the re-created forwarder",
    )  # fmt: skip
    # Each worker logs its own view (the down, the back, the re-creation) from its joins and its 2 s sync loop.
    said = ("unavailable", "is back", "re-created")
    deadline = time.monotonic() + 10
    while not all(w in (log := room.origin.log_tail(200_000)) for w in said) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(w in log for w in said), [line for line in log.splitlines() if "SFU" in line or "re-created" in line]
    for secret in (ROOM_SECRET, ADMIN_KEY, ROOM_KEYS.room_secret(ROOM), ROOM_KEYS.speaker_token(ROOM)):
        assert secret not in log and secret not in room.transcoder.log()  # secrets never reach the logs
