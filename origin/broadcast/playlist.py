"""Pure playlist model: published segments in, RFC 8216 playlist text out (built on the m3u8 library).

No storage, no clock: the caller passes the segments it has made durable and the values to stamp.
"""

from __future__ import annotations

import enum
import itertools
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import m3u8

# EXT-X-MAP in a playlist without EXT-X-I-FRAMES-ONLY needs compatibility version 6 (RFC 8216 §7).
PLAYLIST_VERSION = 6
AAC_LC_CODEC = "mp4a.40.2"
# RFC 8216 §6.2.2: a live playlist must cover at least three target durations.
MIN_WINDOW_TARGET_DURATIONS = 3


class MediaPlaylistKind(enum.Enum):
    LIVE = "live"  # sliding window
    EVENT = "event"  # DVR while live: EXT-X-PLAYLIST-TYPE:EVENT, only appended
    VOD = "vod"  # the replay once the broadcast ended


@dataclass(frozen=True, kw_only=True)
class PublishedSegment:
    media_sequence: int
    uri: str  # relative to the media playlist
    init_uri: str  # EXT-X-MAP, relative to the media playlist
    duration_s: float
    program_date_time: datetime
    discontinuity: bool  # EXT-X-DISCONTINUITY before this segment (new session, or a skipped index)
    parts: tuple[tuple[str, float], ...] = ()  # low-latency HLS: (uri, duration) of each part, in order


@dataclass(frozen=True, kw_only=True)
class RenditionEntry:
    uri: str  # media playlist, relative to the master
    bandwidth_bps: int  # peak segment bit rate (RFC 8216 §4.3.4.2)
    average_bandwidth_bps: int
    codec: str = AAC_LC_CODEC
    channels: int = 2


class _Segment(m3u8.Segment):  # type: ignore[misc]
    """Emit EXT-X-DISCONTINUITY before EXT-X-MAP, the order Apple's tools write and players expect."""

    discontinuity: bool

    def dumps(self, last_segment: Any, timespec: str = "milliseconds", infspec: str = "auto") -> str:
        if not self.discontinuity:
            return str(super().dumps(last_segment, timespec, infspec))
        self.discontinuity = False
        try:
            text = str(super().dumps(last_segment, timespec, infspec))
        finally:
            self.discontinuity = True
        return "#EXT-X-DISCONTINUITY\n" + text


def target_duration_s(max_segment_duration_s: float, nominal_segment_s: float) -> int:
    """RFC 8216 §4.3.3.1: EXTINF rounded to the nearest integer must not exceed the target duration.

    The nominal length keeps the value constant for the playlist's life even before long segments arrive.
    """
    return max(1, round(max_segment_duration_s), math.ceil(nominal_segment_s))


def live_window(
    tail: Sequence[PublishedSegment], *, min_segments: int, target_duration: int, min_seconds: float = 0.0
) -> Sequence[PublishedSegment]:
    """The newest segments covering ≥ `min_segments`, ≥ `min_seconds` and ≥ three target durations (RFC 8216
    §6.2.2)."""
    needed_s = max(MIN_WINDOW_TARGET_DURATIONS * target_duration, min_seconds)
    count = 0
    covered = 0.0
    for seg in reversed(tail):
        if count >= min_segments and covered >= needed_s:
            break
        count += 1
        covered += seg.duration_s
    return tail[len(tail) - count :]


class SegmentTexts:
    """Each segment's playlist lines, rendered once by the m3u8 library and reused by every later version.

    A live window only changes at its ends, so a new playlist version renders one new segment; only the
    window's first segment is rendered again (it carries EXT-X-MAP and PROGRAM-DATE-TIME there).
    """

    def __init__(self, limit: int = 512) -> None:
        self.limit = limit
        self._follow: dict[int, str] = {}
        self._first: dict[int, str] = {}

    def text(self, seg: PublishedSegment, previous: PublishedSegment | None) -> str:
        cache = self._first if previous is None else self._follow
        text = cache.get(seg.media_sequence)
        if text is None:
            text = cache[seg.media_sequence] = _segment_text(seg, previous)
            if len(cache) > self.limit:
                for msn in sorted(cache)[: self.limit // 2]:
                    del cache[msn]
        return text


def _m3u8_segment(seg: PublishedSegment, *, stamp: bool) -> _Segment:
    return _Segment(
        uri=seg.uri,
        duration=round(seg.duration_s, 6),
        discontinuity=seg.discontinuity,
        program_date_time=seg.program_date_time if stamp else None,
        init_section={"uri": seg.init_uri},
    )


def _segment_text(seg: PublishedSegment, previous: PublishedSegment | None) -> str:
    # PROGRAM-DATE-TIME on the first segment and after every discontinuity (§4.3.2.6).
    current = _m3u8_segment(seg, stamp=previous is None or seg.discontinuity)
    prior = None if previous is None else _m3u8_segment(previous, stamp=False)
    return str(current.dumps(prior))


_HEADERS = threading.local()


def _header() -> m3u8.M3U8:
    """An empty M3U8 whose header fields each render sets: made once per thread (constructing one cost more than
    the rest of a live playlist version; passes of different rooms run in different threads)."""
    header: m3u8.M3U8 | None = getattr(_HEADERS, "m3u8", None)
    if header is None:
        header = _HEADERS.m3u8 = m3u8.M3U8()
    return header


def render_media_playlist(
    segments: Sequence[PublishedSegment],
    *,
    kind: MediaPlaylistKind,
    target_duration: int,
    discontinuity_sequence: int,
    ended: bool,
    texts: SegmentTexts | None = None,
    tags: Mapping[int, str] | None = None,
) -> str:
    """A media playlist (RFC 8216 §4.3.3).

    `discontinuity_sequence` counts EXT-X-DISCONTINUITY tags of segments before the first one listed
    (§4.3.3.3), so it stays right as tagged segments scroll out of a live window. `texts` carries the
    rendered segments from one version to the next (a fresh cache renders the same text). `tags`: lines put
    before a segment's block, by media sequence (EXT-X-DATERANGE), never cached with it.
    """
    if not segments:
        raise ValueError("a media playlist needs at least one segment")
    if any(s.duration_s <= 0 for s in segments):
        raise ValueError("segment durations must be positive")
    for prev, cur in itertools.pairwise(segments):
        if cur.media_sequence != prev.media_sequence + 1:
            raise ValueError(f"media sequence gap: {prev.media_sequence} -> {cur.media_sequence}")
    longest = max(s.duration_s for s in segments)
    if round(longest) > target_duration:
        raise ValueError(f"segment of {longest:.3f}s exceeds target duration {target_duration}s")
    header = _header()
    header.version = PLAYLIST_VERSION
    header.target_duration = target_duration
    header.media_sequence = segments[0].media_sequence
    header.discontinuity_sequence = discontinuity_sequence or None
    header.is_independent_segments = True  # every AAC frame is a sync sample
    header.playlist_type = {MediaPlaylistKind.EVENT: "event", MediaPlaylistKind.VOD: "vod"}.get(kind)
    texts = texts or SegmentTexts()
    body = [texts.text(seg, prev) for prev, seg in zip((None, *segments), segments, strict=False)]
    if tags:
        body = [tags.get(seg.media_sequence, "") + text for seg, text in zip(segments, body, strict=True)]
    tail = "#EXT-X-ENDLIST\n" if ended or kind is MediaPlaylistKind.VOD else ""
    # An M3U8 without segments dumps exactly the header lines (ending in a newline); the segment blocks and
    # the end tag follow as m3u8's own dumps() would join them.
    return str(header.dumps()) + "\n".join(body) + "\n" + tail


def render_master_playlist(renditions: Sequence[RenditionEntry], session_data: Mapping[str, str] | None = None) -> str:
    """Master playlist (RFC 8216 §4.3.4.2): one EXT-X-STREAM-INF per rendition, lowest bandwidth first.

    `session_data`: DATA-ID → URI of a JSON document (EXT-X-SESSION-DATA, §4.3.4.4), e.g. the chapters."""
    if not renditions:
        raise ValueError("a master playlist needs at least one rendition")
    master = m3u8.M3U8()
    master.version = PLAYLIST_VERSION
    master.is_independent_segments = True
    for data_id, uri in (session_data or {}).items():
        master.session_data.append(m3u8.model.SessionData(data_id, uri=uri))
    for r in sorted(renditions, key=lambda r: r.bandwidth_bps):
        master.add_playlist(
            m3u8.Playlist(
                uri=r.uri,
                stream_info={
                    "bandwidth": r.bandwidth_bps,
                    "average_bandwidth": r.average_bandwidth_bps,
                    "codecs": r.codec,
                },
                media=[],
                base_uri=None,
            )
        )
    return str(master.dumps())
