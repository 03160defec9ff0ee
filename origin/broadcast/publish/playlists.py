"""The owner's playlist texts for one room: live windows, the DVR/replay playlists and the two masters.

Publications become `PublishedSegment`s once; each segment's lines are rendered once (playlist.SegmentTexts)
and appended to the rendition's DVR body on local disk, so a live version costs one new segment block, and
the EVENT/VOD playlist (O(broadcast length)) is a header plus that file. A new owner rebuilds it from the
journal. Pure apart from the DVR files.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import m3u8

from origin.broadcast.daterange import DvrTags, window_tags
from origin.broadcast.model import TAIL_SEGMENTS, Publication, RoomState
from origin.broadcast.playlist import (
    PLAYLIST_VERSION,
    MediaPlaylistKind,
    PublishedSegment,
    RenditionEntry,
    SegmentTexts,
    live_window,
    render_master_playlist,
    render_media_playlist,
    target_duration_s,
)
from origin.broadcast.timed import Cue, Timeline
from origin.contract import ids, layout
from origin.contract.cache_policy import ObjectKind
from origin.replay import chapters

# The latest valid PROGRAM-DATE-TIME (datetime's range); ingest bounds decode times far below it.
_MAX_PDT = datetime(9999, 1, 1, tzinfo=UTC).timestamp()


@dataclass(frozen=True, kw_only=True)
class Write:
    key: str
    text: str
    kind: ObjectKind


def published_segment(p: Publication) -> PublishedSegment:
    uri = (layout.filler_uri if p.filler else layout.segment_uri)(p.session, p.rendition, p.msn if p.filler else p.idx)
    return PublishedSegment(
        media_sequence=p.msn,
        uri=uri,
        init_uri=layout.init_uri(p.session, p.rendition),
        duration_s=p.duration_s,
        program_date_time=datetime.fromtimestamp(min(max(p.pdt, 0.0), _MAX_PDT), tz=UTC),
        discontinuity=p.discontinuity,
    )


def _start(seg: PublishedSegment) -> float:
    return seg.program_date_time.timestamp()


def _end(seg: PublishedSegment) -> float:
    return seg.program_date_time.timestamp() + seg.duration_s


@dataclass(kw_only=True)
class _Rendition:
    name: str
    dvr_path: Path
    texts: SegmentTexts = field(default_factory=SegmentTexts)
    window: deque[PublishedSegment] = field(default_factory=lambda: deque(maxlen=TAIL_SEGMENTS))
    dvr_first_msn: int | None = None
    event_written_at: float = 0.0
    dvr: TextIO | None = None  # kept open: one write per publication
    tags: DvrTags = field(default_factory=DvrTags)  # EXT-X-DATERANGE lines appended with the segments
    cues_fed: int = 0
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (PDT, duration) of every segment

    def add(self, seg: PublishedSegment) -> None:
        previous = self.window[-1] if self.window else None
        if previous is not None and seg.media_sequence != previous.media_sequence + 1:
            raise ValueError(f"{self.name}: media sequence {previous.media_sequence} -> {seg.media_sequence}")
        self.window.append(seg)
        self.timeline.append((_start(seg), seg.duration_s))
        self.write(self.tags.before(_end(seg)) + self.texts.text(seg, previous) + "\n")
        if self.dvr_first_msn is None:
            self.dvr_first_msn = seg.media_sequence

    def write(self, text: str) -> None:
        if self.dvr is None:
            self.dvr = open(self.dvr_path, "a")  # noqa: SIM115 - closed by RoomPlaylists.close/rebuild
        self.dvr.write(text)
        self.dvr.flush()


class RoomPlaylists:
    def __init__(self, room: str, dvr_dir: Path, *, live_window_segments: int, event_interval_s: float) -> None:
        self.room = room
        self.dvr_dir = Path(dvr_dir)
        self.live_window_segments = live_window_segments
        self.event_interval_s = event_interval_s
        self._renditions: dict[str, _Rendition] = {}
        self._cues: list[Cue] = []  # the broadcast's timed-event cues, mirrored from the room state
        self.masters_written = True  # False: write both masters at the next chance, whatever the journal says

    def _rendition(self, name: str) -> _Rendition:
        r = self._renditions.get(name)
        if r is None:
            self.dvr_dir.mkdir(parents=True, exist_ok=True)
            path = self.dvr_dir / f"{ids.rendition_name(name)}.m3u8-body"
            r = self._renditions[name] = _Rendition(name=name, dvr_path=path)
        return r

    def rebuild(self, publications: Iterable[Publication], timed: Timeline | None = None) -> None:
        """Start over from every publication of the broadcast (a new owner, or after a restart)."""
        self.close()
        self._cues = []
        if self.dvr_dir.exists():
            for stale in self.dvr_dir.glob("*.m3u8-body"):
                stale.unlink()
        if timed is not None:
            self.sync_cues(timed)
        self.add(publications)

    def sync_cues(self, timed: Timeline) -> None:
        """Take the cues recorded since the last call (call with the room state held)."""
        self._cues.extend(timed.cues[len(self._cues) :])

    def add(self, publications: Iterable[Publication]) -> None:
        for p in publications:
            r = self._rendition(p.rendition)
            if r.cues_fed < len(self._cues):
                r.tags.feed(self._cues[r.cues_fed :])
                r.cues_fed = len(self._cues)
            r.add(published_segment(p))

    def media_writes(self, state: RoomState, renditions: Iterable[str], *, now: float, final: bool) -> list[Write]:
        """Live playlists of `renditions`, and their DVR playlists when due (always when final)."""
        writes: list[Write] = []
        self.sync_cues(state.timed)
        for name in sorted(renditions):
            r = self._renditions.get(name)
            if r is None or not r.window:
                continue
            target = target_duration_s(state.rendition(name).longest_s, state.nominal_segment_s)
            window = live_window(list(r.window), min_segments=self.live_window_segments, target_duration=target)
            in_window = sum(s.discontinuity for s in window)
            live = render_media_playlist(
                window,
                kind=MediaPlaylistKind.LIVE,
                target_duration=target,
                discontinuity_sequence=state.rendition(name).discontinuities - in_window,
                ended=final,
                texts=r.texts,
                tags=window_tags(state.timed, [(s.media_sequence, _start(s), _end(s)) for s in window]),
            )
            writes.append(Write(key=layout.live_playlist(self.room, name), text=live, kind=ObjectKind.LIVE_PLAYLIST))
            if final or now - r.event_written_at >= self.event_interval_s:
                kind = ObjectKind.REPLAY_PLAYLIST if final else ObjectKind.EVENT_PLAYLIST
                writes.append(Write(key=layout.replay_playlist(self.room, name), text=self._dvr(r, target, final),
                                    kind=kind))  # fmt: skip
        if final:
            writes.extend(self._chapters(state.timed))
        return writes

    def _chapters(self, timed: Timeline) -> list[Write]:
        """The replay's chapters (before the replay master that links them), on the longest rendition's clock."""
        longest = max(self._renditions.values(), key=lambda r: len(r.timeline), default=None)
        if longest is None or not longest.timeline:
            return []
        clock = chapters.MediaClock(longest.timeline)
        found = chapters.build(timed.events.values(), clock)
        doc = json.dumps(chapters.to_json(found, duration_s=clock.duration_s), ensure_ascii=False, indent=1)
        return [Write(key=layout.chapters_vtt(self.room), text=chapters.to_webvtt(found), kind=ObjectKind.CHAPTERS_VTT),
                Write(key=layout.chapters_json(self.room), text=doc + "\n", kind=ObjectKind.CHAPTERS_JSON)]  # fmt: skip

    def written(self, writes: Iterable[Write], now: float) -> None:
        """The writes are in storage: the DVR playlists among them are not due again for an interval."""
        for w in writes:
            if w.kind in (ObjectKind.EVENT_PLAYLIST, ObjectKind.REPLAY_PLAYLIST) and "/replay/" in w.key:
                name = w.key.rsplit("/", 1)[1].removesuffix(".m3u8")
                if name in self._renditions:
                    self._renditions[name].event_written_at = now

    def _dvr(self, r: _Rendition, target: int, final: bool) -> str:
        header = m3u8.M3U8()
        header.version = PLAYLIST_VERSION
        header.target_duration = target
        header.media_sequence = r.dvr_first_msn or None
        header.is_independent_segments = True
        header.playlist_type = "vod" if final else "event"
        if final:  # the events recorded since the last segment, and the turns that ended meanwhile
            r.tags.feed(self._cues[r.cues_fed :])
            r.cues_fed = len(self._cues)
            r.write(r.tags.before(_end(r.window[-1])))
        body = r.dvr_path.read_text()
        return str(header.dumps()) + body + ("#EXT-X-ENDLIST\n" if final else "")

    def master_writes(self, state: RoomState, *, final: bool) -> list[Write]:
        """Both masters when the rendition set changed (or at the end); empty when nothing changed."""
        names = tuple(sorted(n for n, r in self._renditions.items() if r.window))
        if not names or (names == tuple(state.master) and not final and self.masters_written):
            return []
        live: list[RenditionEntry] = []
        replay: list[RenditionEntry] = []
        for name in names:
            spec = state.spec(name)
            rs = state.rendition(name)
            bandwidth = int(max(rs.peak_bps, spec.bitrate if spec else 0))
            average = int(max(rs.bytes_total * 8 / rs.seconds_total if rs.seconds_total else 0, 1))
            channels = spec.channels if spec else 2
            for entries, uri in ((live, layout.live_uri(name)), (replay, layout.replay_uri(name))):
                entries.append(RenditionEntry(uri=uri, bandwidth_bps=bandwidth, average_bandwidth_bps=average,
                                              channels=channels))  # fmt: skip
        replay_kind = ObjectKind.REPLAY_PLAYLIST if final else ObjectKind.MASTER_PLAYLIST
        return [
            Write(key=layout.master_playlist(self.room), text=render_master_playlist(live),
                  kind=ObjectKind.MASTER_PLAYLIST),
            Write(key=layout.replay_master(self.room), kind=replay_kind, text=render_master_playlist(
                replay, {chapters.SESSION_DATA_ID: layout.CHAPTERS_JSON_URI} if final else None)),
        ]  # fmt: skip

    def renditions(self) -> Sequence[str]:
        return sorted(n for n, r in self._renditions.items() if r.window)

    def close(self) -> None:
        for r in self._renditions.values():
            if r.dvr is not None:
                r.dvr.close()
        self._renditions.clear()
