"""Never dead air: while a room's source is gone the origin publishes silence, and audio resumes on return."""

from __future__ import annotations

import array
import time

import httpx

from tests.support.hls_check import LiveListener, wait_for
from tests.support.origin_server import origin_server
from tests.support.pusher import Push

ROOM = "drop-test"
TOKEN = "drop-test-ingest-token-0123456789"
GAP_S = 20.0


def test_source_drop_is_filled_with_silence_and_audio_resumes_within_a_segment() -> None:
    with origin_server(workers=2) as origin:
        origin.create_room(ROOM, ingest_token=TOKEN)
        live = f"{origin.base_url}/rooms/{ROOM}/live/a64.m3u8"
        first = Push(origin=origin.base_url, room=ROOM, token=TOKEN, seconds=6.0, source="sine=f=440:r=48000")
        proc = first.spawn()
        wait_for(lambda: httpx.get(f"{origin.base_url}/rooms/{ROOM}/master.m3u8").status_code == 200,
                 timeout_s=20, what="the master playlist")  # fmt: skip
        listener = LiveListener(f"{origin.base_url}/rooms/{ROOM}/master.m3u8")
        listen_start = time.monotonic()
        proc.wait(timeout=30)
        assert first.end().status_code == 200
        gone_at = time.monotonic()
        # The source is gone: filler appears in the live playlist instead of a stalled edge.
        wait_for(lambda: "/fill-" in httpx.get(live).text, timeout_s=6, what="filler segments")
        time.sleep(max(0.0, GAP_S - (time.monotonic() - gone_at)))
        second = Push(origin=origin.base_url, room=ROOM, token=TOKEN, seconds=6.0, source="sine=f=440:r=48000")
        proc = second.spawn()
        back_at = time.monotonic()
        wait_for(lambda: second.session in httpx.get(live).text, timeout_s=10, what="the returning source")
        resume_s = time.monotonic() - back_at
        proc.wait(timeout=30)
        assert second.end().status_code == 200
        assert origin.end_broadcast(ROOM).status_code == 200
        assert listener.finish() == ""
        wall_s = time.monotonic() - listen_start

    # Audio resumed within one segment (1 s) of the source's return, plus ffmpeg's start-up and one publish.
    assert resume_s <= 1.0 + 2.0, resume_s
    # Decoded audio is continuous: the listener heard (about) as much as wall time, not wall time minus the gap.
    assert listener.decoded_s >= wall_s - 8.0, (listener.decoded_s, wall_s)
    # ... and what it heard during the gap was silence, around a tone on both sides.
    pcm = array.array("h", listener.pcm)
    windows = [max(abs(x) for x in pcm[i : i + 4800]) for i in range(0, len(pcm) - 4800, 4800)]
    silent = sum(1 for peak in windows if peak < 50) / 10
    loud = sum(1 for peak in windows if peak > 3000) / 10
    assert GAP_S - 6 <= silent <= GAP_S + 6, (silent, loud)
    assert loud >= 6, (silent, loud)
