"""ffmpeg, as a listener, plays a live broadcast through the nginx edge in front of the real origin."""

from __future__ import annotations

import httpx

from origin.edge.nginx_process import EdgeOptions, run_edge
from tests.support.hls_check import LiveListener, decoded_duration_s, wait_for
from tests.support.origin_server import origin_server
from tests.support.pusher import Push

ROOM = "edge-live"
TOKEN = "edge-live-ingest-token-0123456789"


def test_ffmpeg_plays_the_live_stream_and_the_replay_through_the_edge() -> None:
    with origin_server(workers=2) as origin, run_edge(EdgeOptions(origin_url=origin.base_url)) as edge:
        origin.create_room(ROOM, ingest_token=TOKEN)
        master = f"{edge.base_url}/rooms/{ROOM}/master.m3u8"
        push = Push(origin=origin.base_url, room=ROOM, token=TOKEN, seconds=8.0)
        proc = push.spawn()
        wait_for(lambda: httpx.get(master).status_code == 200, timeout_s=20, what="the master through the edge")
        listener = LiveListener(master)
        proc.wait(timeout=60)
        assert push.end().status_code == 200
        assert origin.end_broadcast(ROOM).status_code == 200
        assert listener.finish() == ""  # reached EXT-X-ENDLIST through the edge's 1 s playlist cache, no error
        assert listener.decoded_s >= 3.0
        replay_s = decoded_duration_s(f"{edge.base_url}/rooms/{ROOM}/replay.m3u8")
        upstream = edge.upstream_log()
    assert abs(replay_s - (8.0 + 1024 / 48_000)) < 0.05
    # The listener really went through the edge to the origin (offload itself is test_collapse's and bench/edge's job).
    assert any(e.went_upstream for e in upstream)
