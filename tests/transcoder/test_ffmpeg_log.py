"""Parsing ffmpeg's stderr (lines captured from ffmpeg 5.1 with -loglevel repeat+level+verbose)."""

from __future__ import annotations

from transcoder.ffmpeg_log import (
    Closed,
    Opened,
    Progress,
    PushTracker,
    StderrTail,
    Written,
    event_of,
    is_config_error,
    parse_line,
)

URL = "/tmp/spillway-r1-k2j4/20261126t090301z-3f9a1c0d"  # ffmpeg writes locally (command.py)
LOG = f"""\
[hls @ 0x55917f638a00] [info] Opening '{URL}/init_a48.mp4' for writing
[hls @ 0x55917f638a00] [info] Opening '{URL}/init_a64.mp4' for writing
[info] size=N/A time=00:00:00.96 bitrate=N/A speed=0.959x    \r\
[AVIOContext @ 0x55917f6e8e00] [verbose] Statistics: 765 bytes written, 0 seeks, 1 writeouts
[hls @ 0x55917f638a00] [info] Opening '{URL}/a48/000000.m4s' for writing
[AVIOContext @ 0x55917f643500] [verbose] Statistics: 6000 bytes written, 0 seeks, 1 writeouts
[hls @ 0x55917f638a00] [info] Opening '{URL}/index_a48.m3u8.tmp' for writing
[verbose] EXT-X-MEDIA-SEQUENCE:0
[AVIOContext @ 0x55917f700fc0] [verbose] Statistics: 130 bytes written, 0 seeks, 1 writeouts
[AVIOContext @ 0x55917f6f6680] [verbose] Statistics: 765 bytes written, 0 seeks, 1 writeouts
[hls @ 0x55917f638a00] [info] Opening '{URL}/a64/000000.m4s' for writing
[AVIOContext @ 0x55917f64a900] [verbose] Statistics: 8000 bytes written, 0 seeks, 1 writeouts
[hls @ 0x55917f638a00] [info] Opening '{URL}/a48/000001.m4s' for writing
[AVIOContext @ 0x55917f64a900] [verbose] Statistics: 7000 bytes written, 0 seeks, 1 writeouts
[info] size=N/A time=00:01:02.50 bitrate=N/A speed=1.01x
[aac @ 0x55917f63bb40] [info] Qavg: 163.201
"""


def test_parse_line_splits_context_level_and_message() -> None:
    line = parse_line("[hls @ 0x55] [info] Opening 'x' for writing\n")
    assert (line.context, line.level, line.message) == ("hls", "info", "Opening 'x' for writing")
    assert not line.important
    bare = parse_line("[error] in.wav: No such file or directory")
    assert (bare.context, bare.level, bare.important) == (None, "error", True)
    unprefixed = parse_line("fake ffmpeg: out of cheese")
    assert unprefixed.level is None and unprefixed.important


def test_events() -> None:
    assert event_of(parse_line(f"[hls @ 0x1] [info] Opening '{URL}/a128/000123.m4s' for writing")) == Opened(
        rendition="a128", name="000123.m4s", kind="segment", index=123
    )
    assert event_of(parse_line("[hls @ 0x1] [info] Opening 'http://o/ingest/r/s/a48/init.mp4' for writing")) == Opened(
        rendition="a48", name="init.mp4", kind="init"
    )
    assert event_of(parse_line("[AVIOContext @ 0x2] [verbose] Statistics: 42 bytes written, 0 seeks")) == Written(
        nbytes=42
    )
    assert event_of(parse_line("[AVIOContext @ 0x2] [verbose] Statistics: 42 bytes read, 0 seeks")) is None
    assert event_of(parse_line("[info] size=N/A time=00:01:02.50 bitrate=N/A speed=1.01x")) == Progress(
        media_seconds=62.5, speed=1.01
    )
    assert event_of(parse_line("[info] size=N/A time=00:00:00.00 bitrate=N/A speed=N/A")) == Progress(
        media_seconds=0.0, speed=None
    )


def test_tracker_counts_closed_segments_and_their_bytes() -> None:
    tracker = PushTracker(segment_seconds=2.0)
    events = [tracker.feed(parse_line(raw)) for raw in LOG.replace("\r", "\n").splitlines()]
    # each segment is complete at the first "bytes written" after its "Opening" (what uploads.py waits for)
    assert [e for e in events if isinstance(e, Closed)] == [
        Closed(rendition="a48", name="000000.m4s", index=0, nbytes=6000),
        Closed(rendition="a64", name="000000.m4s", index=0, nbytes=8000),
        Closed(rendition="a48", name="000001.m4s", index=1, nbytes=7000),
    ]
    assert tracker.segments == {"a48": 2, "a64": 1}
    assert tracker.last_index == {"a48": 1, "a64": 0}
    assert tracker.segments_pushed == 3
    # a48: (6000 + 7000) bytes over 2 segments of 2 s; a64: 8000 bytes over 1 segment; init and playlist ignored
    assert tracker.bitrate_bps("a48") == (13000 * 8) / 4.0
    assert tracker.bitrate_bps() == (13000 * 8) / 4.0 + 8000 * 8 / 2.0
    assert tracker.media_seconds == 62.5 and tracker.speed == 1.01


def test_tracker_ignores_the_empty_segment_of_an_input_that_delivered_nothing() -> None:
    # what ffmpeg 5.1 logs when an SDP input times out before its first packet (the body is a bare styp box)
    tracker = PushTracker(segment_seconds=1.0)
    events = [tracker.feed(parse_line(raw)) for raw in [
        f"[hls @ 0x1] [info] Opening '{URL}/a48/000000.m4s' for writing",
        "[AVIOContext @ 0x2] [verbose] Statistics: 24 bytes written, 0 seeks, 1 writeouts",
        f"[hls @ 0x1] [info] Opening '{URL}/index_a48.m3u8.tmp' for writing",
        "[AVIOContext @ 0x3] [verbose] Statistics: 145 bytes written, 0 seeks, 1 writeouts",
    ]]  # fmt: skip
    assert tracker.segments_pushed == 0 and tracker.bitrate_bps() == 0.0
    assert not any(isinstance(e, Closed) for e in events)  # nothing to upload


def test_stderr_tail_prefers_errors() -> None:
    tail = StderrTail(max_lines=3)
    for raw in ["[info] a", "[error] broken pipe", "[verbose] b", "[info] c", "[fatal] gone", "[info] d"]:
        tail.add(raw, parse_line(raw))
    assert tail.text() == "[error] broken pipe\n[fatal] gone"
    quiet = StderrTail(max_lines=2)
    for raw in ["[info] a", "[info] b", "[info] c"]:
        quiet.add(raw, parse_line(raw))
    assert quiet.text() == "[info] b\n[info] c"


def test_config_errors_are_recognised() -> None:
    assert is_config_error("[error] missing.wav: No such file or directory")
    assert is_config_error("[error] Unrecognized option 'bogus'.")
    assert not is_config_error("[error] Connection to tcp://127.0.0.1:1 failed: Connection refused")
