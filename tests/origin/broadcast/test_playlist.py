"""Golden-file tests of the pure playlist model (set SPILLWAY_REGOLD=1 to rewrite the golden files)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import m3u8
import pytest

from origin.broadcast.playlist import (
    MediaPlaylistKind,
    PublishedSegment,
    RenditionEntry,
    SegmentTexts,
    live_window,
    render_master_playlist,
    render_media_playlist,
    target_duration_s,
)

GOLDEN = Path(__file__).parents[1] / "golden"
T0 = datetime(2026, 11, 26, 9, 0, 0, tzinfo=UTC)
DUR = 2.005333


def broadcast() -> list[PublishedSegment]:
    """Session s1 (4 segments), s2 after a transcoder restart (3), s3 after a host change (5)."""
    out: list[PublishedSegment] = []
    pdt = T0
    for session, count in (("s1", 4), ("s2", 3), ("s3", 5)):
        for idx in range(count):
            out.append(
                PublishedSegment(
                    media_sequence=len(out),
                    uri=f"../media/{session}/a64/{idx:06d}.m4s",
                    init_uri=f"../media/{session}/a64/init.mp4",
                    duration_s=DUR,
                    program_date_time=pdt,
                    discontinuity=idx == 0 and session != "s1",
                )
            )
            pdt += timedelta(seconds=DUR)
        pdt += timedelta(seconds=3)  # the restart gap
    return out


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SPILLWAY_REGOLD"):
        path.write_text(text)
    assert text == path.read_text()
    parsed = m3u8.loads(text)  # and the library reads back what it wrote
    assert parsed.is_endlist == ("#EXT-X-ENDLIST" in text)


def test_live_window_after_a_discontinuity_scrolled_out() -> None:
    segs = broadcast()
    window = live_window(segs, min_segments=6, target_duration=2)
    assert [s.media_sequence for s in window] == [6, 7, 8, 9, 10, 11]
    text = render_media_playlist(
        window,
        kind=MediaPlaylistKind.LIVE,
        target_duration=2,
        discontinuity_sequence=sum(s.discontinuity for s in segs[:6]),
        ended=False,
    )
    check_golden("live_window.m3u8", text)
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1" in text
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1  # s3's start; s2's scrolled out


def test_event_playlist_keeps_every_segment_and_marks_each_session() -> None:
    text = render_media_playlist(
        broadcast(), kind=MediaPlaylistKind.EVENT, target_duration=2, discontinuity_sequence=0, ended=False
    )
    check_golden("event.m3u8", text)
    parsed = m3u8.loads(text)
    assert parsed.playlist_type == "event" and len(parsed.segments) == 12
    assert [s.discontinuity for s in parsed.segments].count(True) == 2


def test_replay_is_vod_with_endlist() -> None:
    text = render_media_playlist(
        broadcast(), kind=MediaPlaylistKind.VOD, target_duration=2, discontinuity_sequence=0, ended=True
    )
    check_golden("replay.m3u8", text)
    assert m3u8.loads(text).playlist_type == "vod"


def test_ended_live_playlist_gets_endlist() -> None:
    segs = broadcast()
    text = render_media_playlist(
        live_window(segs, min_segments=6, target_duration=2),
        kind=MediaPlaylistKind.LIVE,
        target_duration=2,
        discontinuity_sequence=1,
        ended=True,
    )
    assert text.rstrip().endswith("#EXT-X-ENDLIST")


def test_master_lists_every_rendition_with_codecs_and_bandwidths() -> None:
    text = render_master_playlist(
        [
            RenditionEntry(uri="live/a128.m3u8", bandwidth_bps=134_000, average_bandwidth_bps=131_000),
            RenditionEntry(uri="live/a48.m3u8", bandwidth_bps=51_000, average_bandwidth_bps=50_000, channels=1),
            RenditionEntry(uri="live/a64.m3u8", bandwidth_bps=67_000, average_bandwidth_bps=66_000),
        ]
    )
    check_golden("master.m3u8", text)
    parsed = m3u8.loads(text)
    assert [p.stream_info.bandwidth for p in parsed.playlists] == [51_000, 67_000, 134_000]
    assert all(p.stream_info.codecs == "mp4a.40.2" for p in parsed.playlists)


def test_window_covers_three_target_durations_even_with_short_segments() -> None:
    segs = [
        PublishedSegment(
            media_sequence=i, uri=f"{i}.m4s", init_uri="init.mp4", duration_s=0.5,
            program_date_time=T0, discontinuity=False,
        )
        for i in range(40)
    ]  # fmt: skip
    window = live_window(segs, min_segments=6, target_duration=4)
    assert sum(s.duration_s for s in window) >= 12 and len(window) == 24


def test_target_duration_is_the_rounded_longest_segment_and_never_below_nominal() -> None:
    assert target_duration_s(2.005333, 2.0) == 2
    assert target_duration_s(2.6, 2.0) == 3
    assert target_duration_s(1.0, 2.0) == 2


@pytest.mark.parametrize("problem", ["empty", "gap", "too_long"])
def test_invalid_inputs_are_refused(problem: str) -> None:
    segs = broadcast()
    if problem == "empty":
        segs = []
    elif problem == "gap":
        segs = segs[:2] + segs[3:]
    with pytest.raises(ValueError):
        render_media_playlist(
            segs,
            kind=MediaPlaylistKind.LIVE,
            target_duration=1 if problem == "too_long" else 2,
            discontinuity_sequence=0,
            ended=False,
        )


def test_reused_segment_texts_render_every_window_exactly_as_a_fresh_render() -> None:
    """A live playlist renders one new segment per version; the result equals a render from scratch."""
    segs = broadcast()
    texts = SegmentTexts(limit=8)
    for end in range(1, len(segs) + 1):
        window = live_window(segs[:end], min_segments=6, target_duration=2)
        before = sum(s.discontinuity for s in segs[: end - len(window)])
        args = {"kind": MediaPlaylistKind.LIVE, "target_duration": 2, "discontinuity_sequence": before, "ended": False}
        assert render_media_playlist(window, texts=texts, **args) == render_media_playlist(window, **args)
