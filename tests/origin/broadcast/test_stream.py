"""The low-latency stream splitter and segment cutter, on real ffmpeg fragmented-MP4 output."""

from __future__ import annotations

import subprocess

import pytest

from origin.broadcast import fmp4
from origin.broadcast.stream import FragmentStream, SegmentCutter
from origin.errors import ValidationError


@pytest.fixture(scope="module")
def stream_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("stream") / "s.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=f=440:r=48000:d=3",
                    "-c:a", "aac", "-b:a", "64k", "-ar", "48000", "-f", "mp4", "-movflags",
                    "empty_moov+default_base_moof", "-frag_duration", "200000", str(out)], check=True)  # fmt: skip
    return out.read_bytes()


@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 20])
def test_any_chunking_gives_the_init_then_every_part(stream_bytes: bytes, chunk: int) -> None:
    splitter = FragmentStream(max_piece_bytes=1 << 20)
    pieces = [p for i in range(0, len(stream_bytes), chunk) for p in splitter.feed(stream_bytes[i : i + chunk])]
    splitter.finish()
    assert pieces[0].kind == "init" and all(p.kind == "part" for p in pieces[1:])
    init = fmp4.inspect_init(pieces[0].data)
    durations = [fmp4.inspect_segment(p.data, init=init).duration_ticks for p in pieces[1:]]
    assert durations[:-1] == [10 * 1024] * (len(durations) - 1)  # 10 AAC frames: the first ≥ 200 ms
    assert stream_bytes.startswith(b"".join(p.data for p in pieces))  # all but ffmpeg's closing mfra index


def test_hostile_streams_are_refused(stream_bytes: bytes) -> None:
    with pytest.raises(ValidationError, match="before moov"):
        FragmentStream(max_piece_bytes=1 << 20).feed(b"\x00\x00\x00\x10moofxxxxxxxx")
    with pytest.raises(ValidationError, match="bad size"):
        FragmentStream(max_piece_bytes=1 << 20).feed(b"\x00\x00\x00\x04ftyp")
    with pytest.raises(ValidationError, match="over 100 bytes"):
        FragmentStream(max_piece_bytes=100).feed(stream_bytes)
    truncated = FragmentStream(max_piece_bytes=1 << 20)
    truncated.feed(stream_bytes[:-5])
    with pytest.raises(ValidationError, match="inside a box"):
        truncated.finish()


def test_the_cutter_closes_segments_of_about_the_segment_length() -> None:
    cutter = SegmentCutter(segment_s=1.0)
    part = 10 * 1024 / 48_000
    marks = [cutter.add(part) for _ in range(11)]
    assert marks[:6] == [(0, 0, False), (0, 1, False), (0, 2, False), (0, 3, False), (0, 4, True), (1, 0, False)]
    assert marks[9] == (1, 4, True) and marks[10] == (2, 0, False)
