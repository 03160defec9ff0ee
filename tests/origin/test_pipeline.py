"""End to end: real gunicorn origin, real ffmpeg pushing, each storage backend, ffmpeg as the listener."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import httpx
import m3u8
import pytest

from tests.support.hls_check import LiveListener, PlaylistWatcher, decoded_duration_s, wait_for
from tests.support.moto_server import FAKE_AWS_ENV, MotoServer, moto_server
from tests.support.origin_server import OriginServer, origin_server
from tests.support.pusher import Push

ROOM = "town-hall"
TOKEN = "ingest-token-for-tests-0123456789"
RENDITIONS = ("a48", "a64")


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with moto_server(buckets=["spillway-test"]) as server:
        yield server


def _playlist_urls(base: str) -> list[str]:
    room = f"{base}/rooms/{ROOM}"
    return [f"{room}/master.m3u8", f"{room}/replay.m3u8"] + [
        f"{room}/{kind}/{r}.m3u8" for kind in ("live", "replay") for r in RENDITIONS
    ]


def _ended(base: str) -> bool:
    r = httpx.get(f"{base}/rooms/{ROOM}/replay/a64.m3u8", timeout=5)
    return r.status_code == 200 and "#EXT-X-ENDLIST" in r.text


def _broadcast_and_check(origin: OriginServer, read_base: str, *, seconds: float) -> m3u8.M3U8:
    origin.create_room(ROOM, ingest_token=TOKEN)
    master = f"{read_base}/rooms/{ROOM}/master.m3u8"
    with PlaylistWatcher(urls=lambda: _playlist_urls(read_base)) as watcher:
        push = Push(origin=origin.base_url, room=ROOM, token=TOKEN, seconds=seconds)
        proc = push.spawn()
        wait_for(lambda: httpx.get(master).status_code == 200, timeout_s=20, what="the master playlist")
        listener = LiveListener(master)  # a live listener joins mid-broadcast
        _, err = proc.communicate(timeout=seconds * 3 + 30)
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
        assert push.end().status_code == 200
        assert origin.end_broadcast(ROOM).status_code == 200
        wait_for(lambda: _ended(read_base), timeout_s=20, what="the replay to become final")
        assert listener.finish() == ""  # ENDLIST reached, no decode error
        time.sleep(0.3)
    # The live listener joined ~3 target durations behind live and heard to the end.
    assert listener.decoded_s >= 3.0
    assert watcher.violations == []
    assert watcher.sequence_regressions == []
    assert watcher.versions >= seconds  # one version per segment per playlist at least
    replay = m3u8.loads(httpx.get(f"{read_base}/rooms/{ROOM}/replay/a64.m3u8").text)
    assert replay.playlist_type == "vod" and replay.is_endlist
    # The replay decodes to the broadcast's full length (input + one AAC priming frame).
    replay_s = decoded_duration_s(f"{read_base}/rooms/{ROOM}/replay.m3u8")
    assert replay_s == pytest.approx(seconds + 1024 / 48_000, abs=0.03)
    live = httpx.get(f"{read_base}/rooms/{ROOM}/live/a48.m3u8")
    assert live.text.rstrip().endswith("#EXT-X-ENDLIST")
    return replay


def test_filesystem_backend_two_workers(tmp_path: object) -> None:
    with origin_server(workers=2) as origin:
        replay = _broadcast_and_check(origin, origin.base_url, seconds=7.0)
        # Two workers handled the room: sequence numbers have no gaps or duplicates.
        assert replay.media_sequence in (0, None)
        uris = [s.uri for s in replay.segments]
        assert uris == [f"../media/{uris[0].split('/')[2]}/a64/{i:06d}.m4s" for i in range(len(uris))]
        headers = httpx.head(f"{origin.base_url}/rooms/{ROOM}/live/a48.m3u8").headers
        assert headers["cache-control"] == "public, max-age=1"
        assert headers["content-type"] == "application/vnd.apple.mpegurl"
        seg_headers = httpx.head(f"{origin.base_url}/rooms/{ROOM}/replay/{uris[0]}".replace("/replay/../", "/")).headers
        assert seg_headers["cache-control"] == "public, max-age=31536000, immutable"
        assert seg_headers["content-type"] == "audio/mp4"
        metrics = httpx.get(f"{origin.base_url}/metrics").text
        assert "spillway_segments_published_total" in metrics
        assert "spillway_publish_latency_seconds_bucket" in metrics


def test_s3_backend_through_moto(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    env = {
        "SPILLWAY_STORAGE": "s3",
        "SPILLWAY_S3_BUCKET": "spillway-test",
        "SPILLWAY_S3_PREFIX": "t1",
        "SPILLWAY_S3_ENDPOINT_URL": moto.endpoint_url,
        "SPILLWAY_S3_ACL": "public-read",
    }
    with origin_server(workers=2, env=env) as origin:
        read_base = f"{moto.endpoint_url}/spillway-test/t1"
        _broadcast_and_check(origin, read_base, seconds=5.0)
        head = moto.client().head_object(Bucket="spillway-test", Key=f"t1/rooms/{ROOM}/master.m3u8")
        assert head["ContentType"] == "application/vnd.apple.mpegurl"
        assert head["CacheControl"] == "public, max-age=5"


def test_transcoder_restart_continues_the_sequence_with_a_discontinuity() -> None:
    with origin_server(workers=2) as origin:
        origin.create_room(ROOM, ingest_token=TOKEN)
        first = Push(origin=origin.base_url, room=ROOM, token=TOKEN, seconds=30.0)
        proc = first.spawn()
        wait_for(
            lambda: httpx.get(f"{origin.base_url}/rooms/{ROOM}/live/a64.m3u8").text.count("#EXTINF") >= 3,
            timeout_s=20,
            what="the first session's segments",
        )
        proc.send_signal(signal.SIGKILL)  # a crash: no end call, possibly a half-sent segment
        proc.wait()
        second = Push(origin=origin.base_url, room=ROOM, token=TOKEN, seconds=4.0)
        second.run()
        assert origin.end_broadcast(ROOM).status_code == 200
        wait_for(lambda: _ended(origin.base_url), timeout_s=20, what="the replay")
        replay = m3u8.loads(httpx.get(f"{origin.base_url}/rooms/{ROOM}/replay/a64.m3u8").text)
        sessions = [s.uri.split("/")[2] for s in replay.segments]
        assert sessions[0] == first.session and sessions[-1] == second.session
        assert [s.discontinuity for s in replay.segments].count(True) == 1
        switch = sessions.index(second.session)
        assert replay.segments[switch].discontinuity
        assert len({s.uri for s in replay.segments}) == len(replay.segments)  # no reused names
        assert decoded_duration_s(f"{origin.base_url}/rooms/{ROOM}/replay.m3u8") > 6.0
