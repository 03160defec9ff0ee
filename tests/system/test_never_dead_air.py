"""Never dead air: one room fed over RTP rides through every fault while a listener plays (issue 17).

Real parts: an ffmpeg Opus RTP sender, `spillway transcode --sdp` with default flags, the origin under gunicorn
(2 workers, default settings) writing to S3 (moto) through the fault proxy, ffmpeg as a listener, a playlist
watcher and an edge tracker reading storage as the CDN would. Faults, in order: the RTP source gone for 20 s
(past the transcoder's idle timeout) and back, a host change to a second transcoder on another source, SIGKILL
of its ffmpeg, SIGKILL of the worker that owns the room, 20 % of storage writes failing, dropped or hung.
Asserted: the invariants (the source is heard again after every fault, filler covered the silence, no
dangling reference, no sequence regression, nothing lost, the replay covers the broadcast, the listener played
to the end). The timings are bench/chaos.py's (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import random
import time
from pathlib import Path

import httpx
import m3u8
import pytest

from tests.support.chaos import FAULTS, Durations, Stack, inject
from tests.support.fault_proxy import FaultProxy
from tests.support.hls_check import LiveListener, PlaylistWatcher, wait_for
from tests.support.live_edge import EdgeTracker
from tests.support.moto_server import apply_fake_aws_env, moto_server
from tests.support.origin_server import origin_server
from tests.support.transcoder_proc import transcoder
from tests.transcoder.rtp import RtpSender, free_rtp_port, sdp_for

ROOM = "never-dead-air"
TOKEN = "never-dead-air-ingest-token-0123456789"
BUCKET = "never-dead-air"
RENDITIONS = ("a48", "a64", "a128")
DURATIONS = Durations(drop_s=20.0, storage_faults_s=10.0)


def test_a_room_over_rtp_rides_through_every_fault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    apply_fake_aws_env(monkeypatch)
    with contextlib.ExitStack() as stack:
        moto = stack.enter_context(moto_server(buckets=[BUCKET]))
        proxy = stack.enter_context(FaultProxy(moto.endpoint_url, seed=17))
        env = {"SPILLWAY_STORAGE": "s3", "SPILLWAY_S3_BUCKET": BUCKET, "SPILLWAY_S3_ENDPOINT_URL": proxy.url,
               "SPILLWAY_S3_ACL": "public-read"}  # fmt: skip
        origin = stack.enter_context(origin_server(workers=2, env=env))
        origin.create_room(ROOM, ingest_token=TOKEN)
        port = free_rtp_port()
        sdp = tmp_path / "room.sdp"
        sdp.write_text(sdp_for(port))
        sender = stack.enter_context(RtpSender(port))
        tx = contextlib.ExitStack()
        first = tx.enter_context(transcoder(origin=origin.base_url, room=ROOM, token=TOKEN,
                                            source_args=("--sdp", str(sdp))))  # default flags  # fmt: skip
        s = Stack(room=ROOM, token=TOKEN, origin=origin, proxy=proxy, sender=sender, sdp=sdp, tx=tx, current=first)
        stack.callback(lambda: s.tx.close())  # the room's transcoder of the moment (a host change replaces it)
        read = f"{moto.endpoint_url}/{BUCKET}/rooms/{ROOM}"
        live = [f"{read}/live/{r}.m3u8" for r in RENDITIONS]
        urls = [f"{read}/master.m3u8", *live, *(f"{read}/replay/{r}.m3u8" for r in RENDITIONS)]
        wait_for(lambda: httpx.get(f"{read}/master.m3u8").status_code == 200, timeout_s=60, what="the stream")
        watcher = stack.enter_context(PlaylistWatcher(urls=lambda: urls))
        edge = stack.enter_context(EdgeTracker(urls=live))
        listener = LiveListener(f"{read}/master.m3u8", keep_pcm=False)
        started = time.monotonic()
        time.sleep(4)
        rng = random.Random(17)
        for kind in FAULTS:
            t = time.monotonic()
            back, _ = inject(kind, s, rng, DURATIONS)
            if kind == "source_drop":  # the silence was filled: the edge kept moving with filler
                assert all(any(x.filler and x.at > t for x in edge.seen[u]) for u in live), "no filler in the drop"
            wait_for(lambda: all(edge.real_since(u, back) for u in live), timeout_s=30,  # noqa: B023
                     what=f"the source heard again after {kind}:\n{s.current.log()}\n{origin.log_tail()}")  # fmt: skip
            time.sleep(3)
        live_s = time.monotonic() - started
        edge.stop()
        assert s.current.stop() == 0, s.current.log()
        assert origin.end_broadcast(ROOM).status_code == 200
        wait_for(lambda: all("#EXT-X-ENDLIST" in httpx.get(f"{read}/replay/{r}.m3u8").text for r in RENDITIONS),
                 timeout_s=90, what="the replay")  # fmt: skip
        listener.finish(timeout_s=90)  # the player kept going to EXT-X-ENDLIST, no reload, exit 0
        metrics = httpx.get(f"{origin.base_url}/metrics").text
        replays = {r: m3u8.loads(httpx.get(f"{read}/replay/{r}.m3u8").text) for r in RENDITIONS}
        faulted = proxy.faulted().get("PUT", 0)

    assert faulted >= 5, "the storage faults did not bite; the test would prove nothing"
    assert watcher.violations == [], watcher.violations[:5]
    assert watcher.sequence_regressions == [], watcher.sequence_regressions[:5]
    received = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith(f'spillway_segments_received_total{{room="{ROOM}"}}'))  # fmt: skip
    in_replay = sum(1 for p in replays.values() for seg in p.segments if "/fill-" not in seg.uri)
    assert in_replay == received > 0, "a received segment is missing from the replay"
    for rendition, replay in replays.items():
        uris = [seg.uri for seg in replay.segments]
        assert len(set(uris)) == len(uris), f"{rendition}: a segment name was reused"
        assert sum(seg.duration for seg in replay.segments) >= live_s - 3, f"{rendition}: the replay has holes"
    assert listener.decoded_s >= live_s - 6  # the listener heard (source or filler) all along
