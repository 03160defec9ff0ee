"""Uploads over real HTTP (the ingest receiver): ffmpeg's log cues the PUT of each rendition's local init and
of each segment's wave (the ladder's renditions in one request), in order; 5xx and an unreachable origin are
retried, a wave refused for its bytes is sent rendition by rendition, a 4xx is final, a session-level refusal is
reported, and `close` bounds the wait."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.transcoder.receiver import Receiver
from transcoder.command import local_init_path, local_segment_path
from transcoder.errors import IngestRejectedError, OriginUnavailableError
from transcoder.ffmpeg_log import Event, PushTracker, parse_line
from transcoder.ingest import IngestClient
from transcoder.ladder import parse_ladder
from transcoder.uploads import Rejection, Uploads, Waves, _Item

SESSION = "20261208t003000z-1a2b3c4d"
LADDER = ["a48", "a64"]
INIT = b"\x00\x00\x00\x18ftypiso6" + bytes(range(200))


def _segment(rendition: str, index: int) -> bytes:
    return b"\x00\x00\x00\x18stypmsdh" + f"{rendition}:{index}".encode() * 40


class Ffmpeg:
    """Writes files into the local directory as ffmpeg does and hands on the events its log lines make."""

    def __init__(self, local: Path, uploads: Uploads) -> None:
        self.local = local
        self.uploads = uploads
        self.tracker = PushTracker(segment_seconds=1.0)

    def _line(self, line: str) -> None:
        event: Event | None = self.tracker.feed(parse_line(line))
        if event is not None:
            self.uploads.feed(event)

    def segment(self, rendition: str, index: int) -> None:
        path = Path(local_segment_path(str(self.local), rendition, f"{index:06d}.m4s"))
        path.parent.mkdir(exist_ok=True)
        body = _segment(rendition, index)
        self._line(f"[hls @ 0x1] [info] Opening '{path}' for writing")
        path.write_bytes(body)
        self._line(f"[AVIOContext @ 0x2] [verbose] Statistics: {len(body)} bytes written, 0 seeks, 1 writeouts")
        self._line(f"[hls @ 0x1] [info] Opening '{self.local}/index_{rendition}.m3u8.tmp' for writing")
        self._line("[AVIOContext @ 0x3] [verbose] Statistics: 190 bytes written, 0 seeks, 1 writeouts")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(token="tok") as r:
        yield r


@pytest.fixture
def local(tmp_path: Path) -> Path:
    for rendition in ("a48", "a64"):
        Path(local_init_path(str(tmp_path), rendition)).write_bytes(INIT + rendition.encode())
    return tmp_path


def _client(url: str, token: str = "tok") -> IngestClient:
    return IngestClient(origin_url=url, room="r1", token=token, timeout_seconds=2)


def _puts(receiver: Receiver) -> list[tuple[str, str, int]]:
    with receiver.lock:
        return [(p.rendition, p.name, p.status) for p in receiver.puts]


def test_each_rendition_sends_its_init_then_its_segments_in_order(receiver: Receiver, local: Path) -> None:
    with _client(receiver.url) as ingest:
        ingest.start(SESSION, parse_ladder("a48:48k:1,a64:64k:2"), 1.0)
        with Uploads(ingest, session=SESSION, local_dir=local, renditions=LADDER) as uploads:
            ffmpeg = Ffmpeg(local, uploads)
            for index in range(3):
                ffmpeg.segment("a48", index)
                ffmpeg.segment("a64", index)
            uploads.close(5.0)
    for rendition in ("a48", "a64"):
        assert [(n, s) for r, n, s in _puts(receiver) if r == rendition] == [
            ("init.mp4", 201), ("000000.m4s", 201), ("000001.m4s", 201), ("000002.m4s", 201)
        ]  # fmt: skip
        assert receiver.init(SESSION, rendition).body == INIT + rendition.encode()  # type: ignore[union-attr]
        assert {i: p.body for i, p in receiver.segments(SESSION, rendition).items()} == {
            i: _segment(rendition, i) for i in range(3)
        }
        assert not (local / rendition).exists() or not any((local / rendition).iterdir())  # sent → removed
    assert uploads.sent == {r: ["init.mp4", "000000.m4s", "000001.m4s", "000002.m4s"] for r in ("a48", "a64")}
    assert uploads.rejected == [] and uploads.unsent == [] and uploads.refusal is None and uploads.backlog == 0
    with receiver.lock:  # each segment's ladder in one request, the renditions in ladder order
        segments = [(p.seq, p.rendition, p.wave) for p in receiver.puts if p.index is not None]
    assert [(r, w) for _, r, w in segments] == [("a48", 2), ("a64", 2)] * 3
    assert len({seq for seq, _, _ in segments}) == 3 and uploads.waves_sent == 3


def test_a_wave_refused_for_its_bytes_is_sent_rendition_by_rendition(receiver: Receiver, local: Path) -> None:
    with _client(receiver.url) as ingest:
        ingest.start(SESSION, parse_ladder("a48:48k:1,a64:64k:2"), 1.0)
        receiver.put_statuses.extend([201, 201, 400, 201, 400])  # two inits, the wave, then one by one
        with Uploads(ingest, session=SESSION, local_dir=local, renditions=LADDER) as uploads:
            ffmpeg = Ffmpeg(local, uploads)
            ffmpeg.segment("a48", 0)
            ffmpeg.segment("a64", 0)
            uploads.close(5.0)
    assert [(r, n, s) for r, n, s in _puts(receiver) if n != "init.mp4"] == [
        ("a48", "000000.m4s", 400), ("a64", "000000.m4s", 400),  # the wave
        ("a48", "000000.m4s", 201), ("a64", "000000.m4s", 400),  # one by one: each its own answer
    ]  # fmt: skip
    assert uploads.rejected == [Rejection(rendition="a64", name="000000.m4s", status=400)]
    assert uploads.sent["a48"] == ["init.mp4", "000000.m4s"] and uploads.refusal is None


def test_a_stalled_rendition_holds_the_others_back_one_segment_at_most(receiver: Receiver, local: Path) -> None:
    with _client(receiver.url) as ingest:
        ingest.start(SESSION, parse_ladder("a48:48k:1,a64:64k:2"), 1.0)
        with Uploads(ingest, session=SESSION, local_dir=local, renditions=LADDER) as uploads:
            ffmpeg = Ffmpeg(local, uploads)
            ffmpeg.segment("a48", 0)
            ffmpeg.segment("a48", 1)  # a64 never closes 0: segment 0 goes without it
            receiver.wait_for(lambda: len(receiver.segments(SESSION, "a48")) == 1, 5, "a48's segment 0")
            assert receiver.segments(SESSION, "a48")[0].wave == 0 and uploads.backlog == 0
            ffmpeg.segment("a64", 1)  # segment 1 is whole
            receiver.wait_for(lambda: len(receiver.segments(SESSION, "a64")) == 1, 5, "segment 1's wave")
            uploads.close(5.0)
    assert [p.wave for p in receiver.segments(SESSION, "a48").values()] == [0, 2]


def test_waves_gather_by_index_and_let_a_late_rendition_go() -> None:
    waves = Waves(["a48", "a64", "a128"])

    def item(rendition: str, index: int) -> _Item:
        return _Item(rendition=rendition, name=f"{index:06d}.m4s", path=Path("x"), segment=True)

    assert waves.closed(0, item("a64", 0)) == []
    assert waves.closed(0, item("a48", 0)) == []
    assert waves.closed(0, item("a128", 0)) == [[item("a48", 0), item("a64", 0), item("a128", 0)]]  # ladder order
    assert waves.closed(1, item("a48", 1)) == []
    assert waves.closed(2, item("a48", 2)) == [[item("a48", 1)]]  # segment 1 waited a whole segment: it goes
    assert waves.closed(2, item("a64", 2)) == []
    assert waves.rest() == [[item("a48", 2), item("a64", 2)]] and waves.rest() == []


def test_a_5xx_is_retried_and_a_segment_refusal_is_final(receiver: Receiver, local: Path) -> None:
    with _client(receiver.url) as ingest:
        ingest.start(SESSION, parse_ladder("a48:48k:1"), 1.0)
        receiver.put_statuses.extend([503, 502, 201, 201, 413])
        with Uploads(ingest, session=SESSION, local_dir=local, renditions=["a48"]) as uploads:
            ffmpeg = Ffmpeg(local, uploads)
            for index in range(3):
                ffmpeg.segment("a48", index)
            uploads.close(5.0)
    assert _puts(receiver) == [("a48", "init.mp4", 503), ("a48", "init.mp4", 502), ("a48", "init.mp4", 201),
                               ("a48", "000000.m4s", 201), ("a48", "000001.m4s", 413),
                               ("a48", "000002.m4s", 201)]  # fmt: skip
    assert uploads.rejected == [Rejection(rendition="a48", name="000001.m4s", status=413)]
    assert uploads.refusal is None  # one bad segment: the session goes on


def test_a_refused_session_is_reported_once(receiver: Receiver, local: Path) -> None:
    with _client(receiver.url) as ingest:
        ingest.start(SESSION, parse_ladder("a48:48k:1"), 1.0)
        receiver.put_statuses.extend([201, 201, 409, 409])
        with Uploads(ingest, session=SESSION, local_dir=local, renditions=["a48"]) as uploads:
            ffmpeg = Ffmpeg(local, uploads)
            for index in range(3):
                ffmpeg.segment("a48", index)
            uploads.close(5.0)
    assert uploads.refusal == 409
    assert [r.name for r in uploads.rejected] == ["000001.m4s", "000002.m4s"]


def test_an_unreachable_origin_is_retried_until_close_gives_up(local: Path) -> None:
    with _client(f"http://127.0.0.1:{free_port()}") as ingest:
        uploads = Uploads(ingest, session=SESSION, local_dir=local, renditions=["a48"])
        ffmpeg = Ffmpeg(local, uploads)
        ffmpeg.segment("a48", 0)
        time.sleep(0.5)  # a few refused connections, backing off
        assert uploads.backlog == 2
        started = time.monotonic()
        uploads.close(0.2)
    assert time.monotonic() - started < 2.5
    assert uploads.sent == {} and uploads.rejected == [] and uploads.unsent == ["a48/init.mp4", "a48/000000.m4s"]
    assert uploads.backlog == 0


def test_an_origin_outage_is_bridged(local: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Segments written while nothing answers reach the origin once it is back, in order; the outage is one
    WARNING and its end one INFO line, however many attempts it took."""
    caplog.set_level(logging.INFO, logger="transcoder.uploads")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with Receiver(token="tok", port=port) as before, _client(url) as starter:
        starter.start(SESSION, parse_ladder("a48:48k:1"), 1.0)
    with _client(url) as ingest, Uploads(ingest, session=SESSION, local_dir=local, renditions=["a48"]) as uploads:
        ffmpeg = Ffmpeg(local, uploads)
        for index in range(3):
            ffmpeg.segment("a48", index)
        time.sleep(0.4)  # refused connections, backing off
        assert uploads.sent == {} and uploads.backlog == 4
        with Receiver(token="tok", port=port, calls=before.calls) as receiver:  # back, knowing the session
            receiver.wait_for(lambda: uploads.backlog == 0, 10, "the backlog sent")
            uploads.close(5.0)
    assert uploads.sent == {"a48": ["init.mp4", "000000.m4s", "000001.m4s", "000002.m4s"]}
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "transcoder.uploads"]
    assert [level for level, _ in lines] == ["WARNING", "INFO"], lines
    assert "a48/init.mp4: sent after" in lines[1][1]
    assert [(n, s) for _, n, s in _puts(receiver)] == [
        ("init.mp4", 201), ("000000.m4s", 201), ("000001.m4s", 201), ("000002.m4s", 201)
    ]  # fmt: skip


def test_a_sender_reconnects_once_when_the_origin_closed_its_idle_connection() -> None:
    with Receiver(token="tok", idle_timeout=0.2) as receiver, _client(receiver.url) as ingest:
        ingest.start(SESSION, parse_ladder("a48:48k:1"), 1.0)
        sender = ingest.object_sender()
        sender.put(SESSION, "a48", "init.mp4", INIT)
        time.sleep(0.6)  # the receiver closed the kept-alive connection meanwhile
        sender.put(SESSION, "a48", "000000.m4s", _segment("a48", 0))
        receiver.put_statuses.append(409)
        with pytest.raises(IngestRejectedError) as refused:
            sender.put(SESSION, "a48", "000001.m4s", _segment("a48", 1))
        receiver.put_statuses.append(503)
        with pytest.raises(OriginUnavailableError) as failed:
            sender.put(SESSION, "a48", "000001.m4s", _segment("a48", 1))
        sender.close()
    assert _puts(receiver) == [("a48", "init.mp4", 201), ("a48", "000000.m4s", 201), ("a48", "000001.m4s", 409),
                               ("a48", "000001.m4s", 503)]  # fmt: skip
    assert refused.value.status_code == 409 and "ended" in refused.value.message
    assert failed.value.status_code == 503
