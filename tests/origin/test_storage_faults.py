"""Storage faults: with a share of writes to S3 failing or hanging, playlists are delayed, never wrong,
and the replay still holds every segment received."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import m3u8
import pytest

from tests.support.fault_proxy import Delay, Drop, FaultProxy, Hang, Reply
from tests.support.hls_check import PlaylistWatcher, decoded_duration_s, wait_for
from tests.support.moto_server import FAKE_AWS_ENV, MotoServer, moto_server
from tests.support.origin_server import origin_server
from tests.support.pusher import Push

ROOM = "flaky-storage"
TOKEN = "flaky-storage-ingest-token-0123456789"
BUCKET = "spillway-faults"
SECONDS = 10.0


@pytest.fixture()
def moto() -> Iterator[MotoServer]:
    with moto_server(buckets=[BUCKET]) as server:
        yield server


def test_twenty_percent_of_writes_failing_or_hanging(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    with FaultProxy(moto.endpoint_url, seed=20261126) as proxy:
        env = {
            "SPILLWAY_STORAGE": "s3",
            "SPILLWAY_S3_BUCKET": BUCKET,
            "SPILLWAY_S3_ENDPOINT_URL": proxy.url,
            "SPILLWAY_S3_ACL": "public-read",
        }
        with origin_server(workers=2, env=env) as origin:
            origin.create_room(ROOM, ingest_token=TOKEN)
            proxy.set_random_faults(
                0.2, [Reply(status=503), Reply(status=500, forward_first=True), Hang(seconds=6.0), Delay(seconds=2.0),
                      Drop()],
            )  # fmt: skip
            read_base = f"{moto.endpoint_url}/{BUCKET}/rooms/{ROOM}"  # listeners read storage directly
            urls = [f"{read_base}/master.m3u8"] + [
                f"{read_base}/{kind}/{r}.m3u8" for kind in ("live", "replay") for r in ("a48", "a64")
            ]
            push = Push(origin=origin.base_url, room=ROOM, token=TOKEN, seconds=SECONDS)
            with PlaylistWatcher(urls=lambda: urls) as watcher:
                push.run()
                assert origin.end_broadcast(ROOM).status_code == 200
                wait_for(
                    lambda: "#EXT-X-ENDLIST" in httpx.get(f"{read_base}/replay/a64.m3u8").text
                    and "#EXT-X-ENDLIST" in httpx.get(f"{read_base}/replay/a48.m3u8").text,
                    timeout_s=90,
                    what="the replay despite storage faults",
                )
            faulted = proxy.faulted().get("PUT", 0)
            metrics = httpx.get(f"{origin.base_url}/metrics").text

    assert faulted >= 5, "the fault plan did not bite; the test would prove nothing"
    assert watcher.violations == [], watcher.violations[:5]
    assert watcher.sequence_regressions == []
    assert "spillway_storage_errors_total" in metrics
    expected = int(SECONDS // push.segment_seconds) + 1  # ffmpeg's last segment carries the priming remainder
    for rendition in ("a48", "a64"):
        replay = m3u8.loads(httpx.get(f"{read_base}/replay/{rendition}.m3u8").text)
        names = [s.uri.rsplit("/", 1)[1] for s in replay.segments]
        real = [n for n in names if not n.startswith("fill-")]
        assert real == [f"{i:06d}.m4s" for i in range(expected)], names  # every segment, in order
        # A segment whose storage write hung past its slot's deadline (0.4 s late on 1 s segments) was covered
        # by filler at the live edge, which the replay keeps (an EVENT playlist only appends). The fault plan
        # hangs or delays ~8 % of writes: a filler or two, never a run of them.
        assert len(names) - len(real) <= 3, names
        filler_s = sum(s.duration for s in replay.segments if s.uri.rsplit("/", 1)[1].startswith("fill-"))
        decoded = decoded_duration_s(f"{read_base}/replay/{rendition}.m3u8")
        assert decoded == pytest.approx(SECONDS + 1024 / 48_000 + filler_s, abs=0.03), (rendition, names)
