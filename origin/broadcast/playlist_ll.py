"""Pure Low-Latency HLS media playlist (draft-pantos-hls-rfc8216bis), built on the m3u8 library.

    EXT-X-SERVER-CONTROL  CAN-BLOCK-RELOAD=YES, PART-HOLD-BACK ≥ 3 × PART-TARGET, HOLD-BACK = 3 × TARGETDURATION,
                          CAN-SKIP-UNTIL = 6 × TARGETDURATION (delta updates on _HLS_skip=YES)
    EXT-X-PART-INF        PART-TARGET = the longest part, rounded up to the millisecond
    EXT-X-PART            for the segments of the last 3 target durations, and the open segment so far;
                          INDEPENDENT=YES: every AAC frame is a sync sample
    EXT-X-PRELOAD-HINT    the next part's URI (always present: hls.js loops without one)
    EXT-X-RENDITION-REPORT  the other renditions' last media sequence number and part
Standard clients ignore the LL tags and read the same segments as from the standard playlist.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import m3u8
from m3u8 import model

from origin.broadcast.playlist import MIN_WINDOW_TARGET_DURATIONS, PublishedSegment

LL_PLAYLIST_VERSION = 9  # EXT-X-SKIP needs 9; EXT-X-PART and PRELOAD-HINT are fine with it
PART_HOLD_BACK_PARTS = 3.0
SKIP_TARGET_DURATIONS = 6  # CAN-SKIP-UNTIL, the spec's minimum


@dataclass(frozen=True, kw_only=True)
class OpenSegment:
    """The segment being received: its parts so far, and where its next part will be."""

    parts: tuple[tuple[str, float], ...]
    next_part_uri: str
    init_uri: str
    discontinuity: bool


@dataclass(frozen=True, kw_only=True)
class RenditionReport:
    uri: str  # relative to this playlist
    last_msn: int
    last_part: int | None


@dataclass(frozen=True, kw_only=True)
class Edge:
    """Where a low-latency playlist ends: the last complete segment and the parts of the next one."""

    last_msn: int  # -1: none complete yet
    next_parts: int  # parts of segment last_msn + 1 listed


def part_target_s(longest_part_s: float) -> float:
    return math.ceil(longest_part_s * 1000 - 1e-6) / 1000


def render_ll_playlist(
    window: Sequence[PublishedSegment],
    open_segment: OpenSegment | None,
    *,
    target_duration: int,
    part_target: float,
    discontinuity_sequence: int,
    reports: Sequence[RenditionReport] = (),
    skip: bool = False,
) -> str:
    if not window and open_segment is None:
        raise ValueError("a low-latency playlist needs a segment or a part")
    playlist = m3u8.M3U8()
    playlist.version = LL_PLAYLIST_VERSION
    playlist.target_duration = target_duration
    playlist.media_sequence = window[0].media_sequence if window else 0
    playlist.discontinuity_sequence = discontinuity_sequence or None
    playlist.is_independent_segments = True
    playlist.server_control = model.ServerControl(
        can_block_reload="YES",
        part_hold_back=math.ceil(PART_HOLD_BACK_PARTS * part_target * 1000) / 1000,
        hold_back=float(MIN_WINDOW_TARGET_DURATIONS * target_duration),
        can_skip_until=float(SKIP_TARGET_DURATIONS * target_duration),
    )
    playlist.part_inf = model.PartInformation(part_target=part_target)
    skipped = _skippable(window, SKIP_TARGET_DURATIONS * target_duration) if skip else 0
    if skipped:
        playlist.skip = model.Skip(skipped_segments=skipped)
    # Parts for the segments that end within 3 target durations of the playlist's end.
    parts_from = _parts_from(window, MIN_WINDOW_TARGET_DURATIONS * target_duration)
    previous: PublishedSegment | None = None
    for i, seg in enumerate(window[skipped:], start=skipped):
        stamp = previous is None or seg.discontinuity
        parts = _parts(seg.parts) if i >= parts_from else []
        playlist.segments.append(m3u8.Segment(
            uri=seg.uri, duration=round(seg.duration_s, 6), discontinuity=seg.discontinuity,
            program_date_time=seg.program_date_time if stamp else None, init_section={"uri": seg.init_uri},
            parts=parts or None,
        ))  # fmt: skip
        previous = seg
    if open_segment is not None:
        if open_segment.parts:
            playlist.segments.append(m3u8.Segment(
                discontinuity=open_segment.discontinuity, init_section={"uri": open_segment.init_uri},
                parts=_parts(open_segment.parts),
            ))  # fmt: skip
        playlist.preload_hint = model.PreloadHint("PART", None, open_segment.next_part_uri)
    for r in reports:
        playlist.add_rendition_report(model.RenditionReport(None, r.uri, r.last_msn, r.last_part))
    text = str(playlist.dumps())
    # m3u8 ends an open segment (parts, no URI) with a blank line; blank lines are legal but noisy.
    return text.replace("\n\n", "\n")


def _parts(parts: Sequence[tuple[str, float]]) -> list[dict[str, object]]:
    return [{"uri": uri, "duration": round(d, 6), "independent": "YES"} for uri, d in parts]


def _parts_from(window: Sequence[PublishedSegment], seconds: float) -> int:
    covered = 0.0
    for i in range(len(window) - 1, -1, -1):
        covered += window[i].duration_s
        if covered > seconds:
            return i + 1
    return 0


def _skippable(window: Sequence[PublishedSegment], seconds: float) -> int:
    """Segments more than `seconds` from the end (the spec's delta update), never a discontinuity's first."""
    remaining = 0.0
    for seg in window:
        remaining += seg.duration_s
    count = 0
    for seg in window:
        if remaining - seg.duration_s < seconds:
            break
        remaining -= seg.duration_s
        count += 1
    return count


def edge_of(text: str) -> Edge:
    """The edge a low-latency playlist text shows (for blocking reloads): cheap line scan, no full parse."""
    msn = 0
    segments = 0
    open_parts = 0
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-SKIP:"):
            segments += int(line.split("=", 1)[1].split(",", 1)[0])
        elif line.startswith("#EXTINF:"):
            segments += 1
            open_parts = -1  # the URI line that follows closes the segment
        elif line.startswith("#EXT-X-PART:"):
            open_parts = max(open_parts, 0) + 1
        elif line and not line.startswith("#") and open_parts == -1:
            open_parts = 0
    return Edge(last_msn=msn + segments - 1, next_parts=max(open_parts, 0))
