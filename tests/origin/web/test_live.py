"""Low-latency HLS end to end on a real origin: the real transcoder (--low-latency) streams parts; the origin's
LL playlists follow the spec, name only stored objects, answer blocking reloads across workers, refuse bad
ones, and standard clients still play the same URLs."""

from __future__ import annotations

import asyncio
import posixpath
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import m3u8
import pytest

from origin.broadcast.playlist_ll import edge_of
from origin.storage.filesystem import FilesystemStorage
from tests.support.hls_check import LiveListener, wait_for
from tests.support.origin_server import OriginServer, origin_server
from tests.support.transcoder_proc import TranscoderProcess, transcoder

ROOM = "ll-room"
TOKEN = "ll-room-ingest-token-0123456789abcdef"


@dataclass(kw_only=True)
class Live:
    origin: OriginServer
    transcoder: TranscoderProcess

    def url(self, rendition: str = "a64") -> str:
        return f"{self.origin.base_url}/rooms/{ROOM}/live/{rendition}.m3u8"


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with origin_server(workers=2) as origin:
        origin.create_room(ROOM, ingest_token=TOKEN)
        with transcoder(origin=origin.base_url, room=ROOM, token=TOKEN, extra=("--low-latency",)) as proc:
            ll = Live(origin=origin, transcoder=proc)
            wait_for(lambda: httpx.get(ll.url()).text.count("#EXTINF") >= 3, timeout_s=30, what="LL segments")
            yield ll


def _named(text: str, playlist_key: str) -> list[str]:
    pl = m3u8.loads(text)
    uris = [s.uri for s in pl.segments if s.uri] + [p.uri for s in pl.segments for p in s.parts]
    uris += [s.init_section.uri for s in pl.segments if s.init_section]
    base = posixpath.dirname(playlist_key)
    return [posixpath.normpath(posixpath.join(base, u)) for u in uris]


def test_ll_playlists_follow_the_rules_and_name_only_stored_objects(live: Live) -> None:
    storage = FilesystemStorage(live.origin.storage_root)
    for _ in range(15):
        text = httpx.get(live.url()).text
        for key in _named(text, f"rooms/{ROOM}/live/a64.m3u8"):
            assert storage.exists(key), f"{key} named before it was stored"
        pl = m3u8.loads(text)
        target = pl.part_inf.part_target
        assert pl.server_control.can_block_reload == "YES" and pl.server_control.part_hold_back >= 3 * target
        parts = [p for s in pl.segments for p in s.parts]
        assert parts and all(p.duration <= target and p.independent == "YES" for p in parts)
        # Every segment with parts: its parts add up to it (ms rounding aside).
        for s in pl.segments:
            if s.uri and s.parts:
                assert abs(sum(p.duration for p in s.parts) - s.duration) < 0.003
        assert pl.preload_hint is not None and {r.uri for r in pl.rendition_reports} == {"a48.m3u8", "a128.m3u8"}
        time.sleep(0.1)


def test_blocking_reload_wakes_when_the_part_is_published_in_any_worker(live: Live) -> None:
    edge = edge_of(httpx.get(live.url()).text)
    ahead = edge.next_parts + 2  # two parts past the last one listed (5 parts of 213 ms per 1.07 s segment)
    want_msn, want_part = edge.last_msn + 1 + ahead // 5, ahead % 5

    async def held() -> list[tuple[float, str]]:
        async with httpx.AsyncClient(timeout=10) as client:
            async def one() -> tuple[float, str]:
                t = time.monotonic()
                r = await client.get(live.url(), params={"_HLS_msn": want_msn, "_HLS_part": want_part})
                assert r.status_code == 200, r.text
                return time.monotonic() - t, r.text

            return await asyncio.gather(*(one() for _ in range(40)))  # spread over both workers

    results = asyncio.run(held())
    for waited, text in results:
        got = edge_of(text)
        assert got.last_msn >= want_msn or (got.last_msn == want_msn - 1 and got.next_parts > want_part)
        assert waited < 2.0  # two parts are ~0.43 s away; a held request wakes on the ring, not a poll
    assert max(w for w, _ in results) > 0.1  # they did wait


def test_bad_blocking_reloads_are_400(live: Live) -> None:
    edge = edge_of(httpx.get(live.url()).text)
    assert httpx.get(live.url(), params={"_HLS_part": 1}).status_code == 400
    # Far past the edge: the edge may move on by a segment or two between these requests (a slow machine).
    assert httpx.get(live.url(), params={"_HLS_msn": edge.last_msn + 10}).status_code == 400
    assert httpx.get(live.url(), params={"_HLS_msn": "x"}).status_code == 400
    assert httpx.get(live.url(), params={"_HLS_msn": edge.last_msn, "_HLS_skip": "maybe"}).status_code == 400
    delta = httpx.get(live.url(), params={"_HLS_msn": edge.last_msn, "_HLS_skip": "YES"})
    assert delta.status_code == 200


def test_standard_clients_play_the_same_urls(live: Live) -> None:
    master = f"{live.origin.base_url}/rooms/{ROOM}/master.m3u8"
    assert httpx.get(master).status_code == 200
    listener = LiveListener(master)  # ffmpeg's HLS demuxer: it ignores the LL tags
    wait_for(lambda: listener.decoded_s >= 4.0, timeout_s=30, what="ffmpeg playing the LL room")
    listener.proc.terminate()
    listener.proc.wait(timeout=10)
    assert listener.proc.stderr is not None
    errors = listener.proc.stderr.read().decode(errors="replace")
    assert "rror" not in errors, errors[-1000:]


def test_streamlink_plays_the_same_urls(live: Live, tmp_path: Path) -> None:
    streamlink = shutil.which("streamlink", path=str(Path(sys.executable).parent))
    assert streamlink is not None, "streamlink is a test dependency (pyproject.toml)"
    out = tmp_path / "streamlink.mp4"
    master = f"{live.origin.base_url}/rooms/{ROOM}/master.m3u8"
    run = subprocess.run([streamlink, "--stream-segmented-duration", "4", "-o", str(out), f"hls://{master}", "best"],
                         capture_output=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-1000:]
    probe = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"], capture_output=True,
                           timeout=60)  # fmt: skip
    assert probe.returncode == 0 and not probe.stderr, probe.stderr.decode(errors="replace")[-1000:]
    duration = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                               str(out)], capture_output=True, text=True, timeout=30).stdout  # fmt: skip
    assert float(duration) >= 3.0, duration


def test_gstreamer_plays_the_same_urls(live: Live, tmp_path: Path) -> None:
    """GStreamer 1.22 (Debian): uridecodebin3 picks hlsdemux2, which reads fMP4 and ignores the LL tags."""
    out = tmp_path / "gst.pcm"
    master = f"{live.origin.base_url}/rooms/{ROOM}/master.m3u8"
    rate_bytes = 48_000 * 2 * 2  # S16LE stereo at 48 kHz
    proc = subprocess.Popen(["gst-launch-1.0", "uridecodebin3", f"uri={master}", "!", "audioconvert", "!",
                             "audioresample", "!", "audio/x-raw,format=S16LE,rate=48000,channels=2", "!",
                             "filesink", f"location={out}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(lambda: out.exists() and out.stat().st_size > 3 * rate_bytes, timeout_s=30,
                 what="GStreamer decoding the LL room")  # fmt: skip
    finally:
        proc.kill()  # a live stream has no end; what was decoded is on disk
        log = proc.communicate(timeout=10)[0].decode(errors="replace")
    assert "ERROR" not in log, log[-1500:]
    pcm = out.read_bytes()
    assert len(pcm) > 3 * rate_bytes
    assert any(pcm[k] for k in range(0, len(pcm), 997)), "GStreamer decoded only silence"  # the 440 Hz tone


def test_a_hold_that_cannot_be_met_ends_in_503() -> None:
    with origin_server(workers=1, env={"SPILLWAY_FILL_GAPS": "false"}) as origin:  # filler would meet it
        origin.create_room(ROOM, ingest_token=TOKEN)
        url = f"{origin.base_url}/rooms/{ROOM}/live/a64.m3u8"
        with transcoder(origin=origin.base_url, room=ROOM, token=TOKEN, extra=("--low-latency",)) as proc:
            wait_for(lambda: httpx.get(url).text.count("#EXTINF") >= 1, timeout_s=30, what="an LL segment")
            proc.stop()
        time.sleep(1.0)  # the stream's last (short) segment lands
        edge = edge_of(httpx.get(url).text)
        t = time.monotonic()
        r = httpx.get(url, params={"_HLS_msn": edge.last_msn + 2}, timeout=10)
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
        assert 2.5 <= time.monotonic() - t <= 5.0  # 3 target durations of 1 s
