"""Never dead air, nothing lost: host changes, transcoder crashes, a killed worker, an origin restart.

Real transcoder (supervisor + ffmpeg), real gunicorn origin, ffmpeg as a live listener.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import httpx
import m3u8

from tests.support.hls_check import LiveListener, PlaylistWatcher, decoded_duration_s, wait_for
from tests.support.origin_server import OriginServer, origin_server
from tests.support.transcoder_proc import transcoder

TOKEN = "reliability-ingest-token-0123456789"


def _urls(base: str, room: str) -> list[str]:
    r = f"{base}/rooms/{room}"
    return [f"{r}/master.m3u8"] + [f"{r}/{k}/{n}.m3u8" for k in ("live", "replay") for n in ("a48", "a64", "a128")]


def _live_segments(origin: OriginServer, room: str) -> list[str]:
    text = httpx.get(f"{origin.base_url}/rooms/{room}/live/a64.m3u8").text
    return [line for line in text.splitlines() if line.endswith(".m4s")]


def _replay_uris(url: str) -> list[str]:
    return [s.uri for s in m3u8.loads(httpx.get(url).text).segments]


def _finish(origin: OriginServer, room: str) -> m3u8.M3U8:
    assert origin.end_broadcast(room).status_code == 200
    url = f"{origin.base_url}/rooms/{room}/replay/a64.m3u8"
    wait_for(lambda: "#EXT-X-ENDLIST" in httpx.get(url).text, timeout_s=30, what="the replay")
    return m3u8.loads(httpx.get(url).text)


def _assert_clean(replay: m3u8.M3U8, watcher: PlaylistWatcher) -> None:
    assert watcher.violations == [], watcher.violations[:5]
    assert watcher.sequence_regressions == []
    uris = [s.uri for s in replay.segments]
    assert len(set(uris)) == len(uris), "a segment name was reused"


def test_host_change_continues_the_same_url_with_one_discontinuity() -> None:
    room = "host-change"
    with origin_server(workers=2) as origin:
        origin.create_room(room, ingest_token=TOKEN)
        master = f"{origin.base_url}/rooms/{room}/master.m3u8"
        with PlaylistWatcher(urls=lambda: _urls(origin.base_url, room)) as watcher:
            with transcoder(origin=origin.base_url, room=room, token=TOKEN, source="sine=f=440:r=48000") as first:
                wait_for(lambda: len(_live_segments(origin, room)) >= 3, timeout_s=30, what="the first host")
                listener = LiveListener(master)
                time.sleep(3)
                # The room moves to a new host: a second transcoder starts, the first one is stopped.
                with transcoder(origin=origin.base_url, room=room, token=TOKEN, source="sine=f=660:r=48000") as second:
                    time.sleep(1)
                    assert first.stop() == 0, first.log()
                    wait_for(lambda: any("/fill-" not in s for s in _live_segments(origin, room)[-2:]),
                             timeout_s=20, what="the new host's audio")  # fmt: skip
                    time.sleep(5)
                    assert second.stop() == 0, second.log()
            replay = _finish(origin, room)
            assert listener.finish() == ""  # the player kept playing to the end, no reload
    _assert_clean(replay, watcher)
    sessions = list(dict.fromkeys(s.uri.split("/")[2] for s in replay.segments if "/fill-" not in s.uri))
    assert len(sessions) == 2
    assert sum(s.discontinuity for s in replay.segments) == 1
    assert listener.decoded_s >= 8


def test_three_transcoder_crashes_give_three_discontinuities_and_no_regressions() -> None:
    room = "crashy"
    with origin_server(workers=2) as origin:
        origin.create_room(room, ingest_token=TOKEN)
        with PlaylistWatcher(urls=lambda: _urls(origin.base_url, room)) as watcher:
            with transcoder(origin=origin.base_url, room=room, token=TOKEN) as proc:
                wait_for(lambda: len(_live_segments(origin, room)) >= 2, timeout_s=30, what="segments")
                replay_url = f"{origin.base_url}/rooms/{room}/replay/a64.m3u8"
                for _ in range(3):
                    sessions_before = len({u.split("/")[2] for u in _replay_uris(replay_url)})
                    killed = proc.ffmpeg_pid()
                    os.kill(killed, signal.SIGKILL)
                    # The supervisor restarts ffmpeg as a new session whose segments reach the replay.
                    wait_for(lambda n=sessions_before: len({u.split("/")[2] for u in _replay_uris(replay_url)}) > n,  # type: ignore[misc]
                             timeout_s=20, what="the restarted session's segments")  # fmt: skip
                    time.sleep(2.5)
                assert proc.stop() == 0, proc.log()
            replay = _finish(origin, room)
            replay_s = decoded_duration_s(f"{origin.base_url}/rooms/{room}/replay.m3u8")
    _assert_clean(replay, watcher)
    sessions = list(dict.fromkeys(s.uri.split("/")[2] for s in replay.segments))
    assert len(sessions) == 4
    assert sum(s.discontinuity for s in replay.segments) == 3
    assert replay_s > 10


def test_sigkill_of_a_gunicorn_worker_mid_broadcast_keeps_the_stream_going() -> None:
    room = "worker-kill"
    with origin_server(workers=2) as origin:
        origin.create_room(room, ingest_token=TOKEN)
        with PlaylistWatcher(urls=lambda: _urls(origin.base_url, room)) as watcher:
            with transcoder(origin=origin.base_url, room=room, token=TOKEN) as proc:
                wait_for(lambda: len(_live_segments(origin, room)) >= 3, timeout_s=30, what="segments")
                listener = LiveListener(f"{origin.base_url}/rooms/{room}/master.m3u8")
                os.kill(origin.worker_pids()[0], signal.SIGKILL)
                last = _live_segments(origin, room)[-1]
                wait_for(lambda: _live_segments(origin, room)[-1] != last, timeout_s=10, what="the stream to go on")
                time.sleep(4)
                assert proc.stop() == 0, proc.log()
            replay = _finish(origin, room)
            assert listener.finish() == ""
    _assert_clean(replay, watcher)
    assert sum(s.discontinuity for s in replay.segments) <= 1  # at most a transcoder restart
    assert listener.decoded_s >= 5


def test_origin_restart_mid_broadcast_continues_the_sequence() -> None:
    room = "origin-restart"
    with tempfile.TemporaryDirectory() as tmp:
        state, storage = Path(tmp) / "state", Path(tmp) / "storage"
        with origin_server(workers=2, state_dir=state, storage_root=storage) as origin:
            origin.create_room(room, ingest_token=TOKEN)
            base = origin.base_url
            port = base.rsplit(":", 1)[1]
            with transcoder(origin=base, room=room, token=TOKEN) as proc:
                wait_for(lambda: len(_live_segments(origin, room)) >= 3, timeout_s=30, what="segments")
                before = m3u8.loads(httpx.get(f"{base}/rooms/{room}/replay/a64.m3u8").text)
                origin.process.send_signal(signal.SIGTERM)  # the whole origin goes away…
                origin.process.wait(timeout=30)
                time.sleep(2)
                # …and comes back on the same port with the same state and storage.
                with origin_server(workers=2, state_dir=state, storage_root=storage, port=int(port)) as again:
                    wait_for(lambda: len(m3u8.loads(httpx.get(f"{base}/rooms/{room}/replay/a64.m3u8").text).segments)
                             > len(before.segments) + 3, timeout_s=40, what="the stream after the restart")  # fmt: skip
                    assert proc.stop() == 0, proc.log()
                    replay = _finish(again, room)
    msns = [replay.media_sequence + i for i in range(len(replay.segments))]
    assert msns == list(range(len(replay.segments)))
    assert [s.uri for s in replay.segments][: len(before.segments)] == [s.uri for s in before.segments]
    assert len({s.uri for s in replay.segments}) == len(replay.segments)
