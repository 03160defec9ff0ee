"""Low-latency HLS on the owner's side: parts attached to publications, the open segment, and the board.

The board is where the owner leaves each rendition's current LL playlist (full and delta-update texts) for
every worker of the host to serve blocking reloads from (origin/web/live.py): small files on tmpfs
(coordination.board_dir), rewritten by exchanging two inodes (no allocation per version), and a doorbell ring
after each change. The standard live playlist in storage is unchanged: it is written per segment, without parts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from origin.broadcast.daterange import window_fields
from origin.broadcast.model import Publication, RoomState, StoredPart
from origin.broadcast.playlist import PublishedSegment, live_window, target_duration_s
from origin.broadcast.playlist_ll import (
    LL_WINDOW_TARGET_DURATIONS,
    OpenSegment,
    RenditionReport,
    part_target_s,
    render_ll_playlist,
)
from origin.broadcast.publish.playlists import published_segment
from origin.contract import ids, layout
from origin.storage.atomic_files import rewrite_small

PART_SUM_TOLERANCE_S = 0.003  # a segment's parts must add up to it (ms rounding of durations aside)


def attach_parts(state: RoomState, publications: Sequence[Publication]) -> list[Publication]:
    """Publications with their parts' durations, when every part of the segment was recorded in order."""
    out = []
    for p in publications:
        parts = state.rendition(p.rendition).parts.get((p.session, p.idx)) if not p.filler else None
        if parts and abs(sum(t.duration_s for t in parts) - p.duration_s) <= PART_SUM_TOLERANCE_S:
            p = dataclasses.replace(p, parts=tuple(t.duration_s for t in parts))
        out.append(p)
    return out


def open_parts(state: RoomState, rendition: str) -> tuple[list[StoredPart], bool] | None:
    """The parts of the segment the sequencer will publish next, and whether it starts a new session.

    Only a segment that is certain to take the next media sequence number is shown: the cursor's session's
    next index, or the first segment of the session after it once that one can deliver nothing more.
    """
    rs = state.rendition(rendition)
    last = rs.last
    sessions = state.session_list()
    if last is None:
        first = next((s for s in sessions if rendition not in s.sealed), None)
        key = (first.id, min((i for s, i in rs.parts if s == first.id), default=0)) if first else None
        return (rs.parts[key], False) if key and rs.parts.get(key) else None
    nxt = rs.parts.get((last.session, rs.last_real_idx.get(last.session, -1) + 1))
    if nxt:
        return nxt, last.filler
    current = state.sessions.get(last.session)
    if current is None or rendition not in current.sealed:
        return None
    later = [s for s in sessions if s.ordinal > current.ordinal]
    if not later:
        return None
    upcoming = rs.parts.get((later[0].id, min((i for s, i in rs.parts if s == later[0].id), default=0)))
    return (upcoming, True) if upcoming else None


def _segment_parts(seg: PublishedSegment, p: Publication) -> PublishedSegment:
    if not p.parts:
        return seg
    uri = layout.filler_part_uri if p.filler else layout.part_uri
    number = p.msn if p.filler else p.idx
    return dataclasses.replace(seg, parts=tuple((uri(p.session, p.rendition, number, k), d)
                                                for k, d in enumerate(p.parts)))  # fmt: skip


class PlaylistBoard(Protocol):
    """Where the owner leaves the LL playlists for the workers that answer reloads (a host's files, or Redis)."""

    def write(self, room: str, rendition: str, text: str, skip_text: str) -> None: ...

    def read(self, room: str, rendition: str, *, skip: bool = False) -> str | None: ...

    async def aread(self, room: str, rendition: str, *, skip: bool = False) -> str | None:
        """`read` for the event loop: never blocks it on a remote store."""
        ...

    def forget(self, room: str) -> None:
        """The room's playlists moved (a ring): nothing read before may be answered again."""
        ...

    def clear(self, room: str) -> None: ...


class Board:
    """Each rendition's current LL playlist, shared by the host's workers (files on local disk)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, room: str, rendition: str, *, skip: bool = False) -> Path:
        name = f"{ids.rendition_name(rendition)}{'.skip' if skip else ''}.m3u8"
        return self.root / ids.room_id(room) / name

    def write(self, room: str, rendition: str, text: str, skip_text: str) -> None:
        self.path(room, rendition).parent.mkdir(parents=True, exist_ok=True)
        rewrite_small(self.path(room, rendition, skip=True), skip_text.encode())
        rewrite_small(self.path(room, rendition), text.encode())

    def read(self, room: str, rendition: str, *, skip: bool = False) -> str | None:
        try:
            return self.path(room, rendition, skip=skip).read_text()
        except FileNotFoundError:
            return None

    async def aread(self, room: str, rendition: str, *, skip: bool = False) -> str | None:
        return self.read(room, rendition, skip=skip)  # a small file on tmpfs: ~20 µs, cheaper than a thread hop

    def forget(self, room: str) -> None:
        """Every read goes to the file: nothing is kept."""

    def clear(self, room: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.root / ids.room_id(room))


class LowLatency:
    """The owner's LL renderer for one room: one version per rendition whenever its edge or parts moved."""

    def __init__(self, room: str, board: PlaylistBoard, *, live_window_segments: int) -> None:
        self.room = room
        self.board = board
        self.live_window_segments = live_window_segments
        self._edges: dict[str, tuple[int, int]] = {}  # rendition -> (last msn, open parts) last written
        self._segments: dict[int, tuple[Publication, PublishedSegment]] = {}  # id(publication) -> its entry

    def update(self, state: RoomState, windows: Mapping[str, Sequence[Publication]]) -> bool:
        """Write the LL playlists whose edge moved; True when anything was written (ring the workers)."""
        ll = [n for n in windows if self._is_ll(state, n) and (windows[n] or open_parts(state, n))]
        edges = {n: self._edge(state, n) for n in ll}
        # Only the renditions whose own edge moved: a reload held on a rendition waits for that rendition, and
        # the renditions' parts arrive together, so the others' reports lag by at most the part in flight
        # (rewriting every rendition for every arrival tripled the writes: the board was 30 % of a worker).
        moved = [n for n in ll if self._edges.get(n) != edges[n]]
        for name in moved:
            reports = [self._report(state, other, edges[other]) for other in ll if other != name]
            full, skip = self._render(state, name, windows[name], reports)
            self.board.write(self.room, name, full, skip)
        self._edges = edges
        if len(self._segments) > 4 * sum(len(w) for w in windows.values()) + 64:  # keep what the windows hold
            held = {id(p) for w in windows.values() for p in w}
            self._segments = {k: v for k, v in self._segments.items() if k in held}
        return bool(moved)

    @staticmethod
    def _report(state: RoomState, rendition: str, edge: tuple[int, int]) -> RenditionReport:
        """LAST-MSN/LAST-PART: the segment the rendition's last part belongs to, and that part's index."""
        last_msn, open_count = edge
        if open_count:
            return RenditionReport(uri=f"{rendition}.m3u8", last_msn=last_msn + 1, last_part=open_count - 1)
        last = state.rendition(rendition).last
        parts = len(last.parts) if last is not None else 0
        return RenditionReport(uri=f"{rendition}.m3u8", last_msn=last_msn, last_part=parts - 1 if parts else None)

    @staticmethod
    def _is_ll(state: RoomState, rendition: str) -> bool:
        return any(s.part_seconds is not None and s.rendition(rendition) for s in state.sessions.values())

    @staticmethod
    def _edge(state: RoomState, rendition: str) -> tuple[int, int]:
        last = state.rendition(rendition).last
        opened = open_parts(state, rendition)
        return (last.msn if last else -1, len(opened[0]) if opened else 0)

    def _segment(self, p: Publication) -> PublishedSegment:
        """A publication as a playlist entry with its parts, converted once (publications never change)."""
        hit = self._segments.get(id(p))
        if hit is not None and hit[0] is p:
            return hit[1]
        seg = _segment_parts(published_segment(p), p)
        self._segments[id(p)] = (p, seg)
        return seg

    def _render(self, state: RoomState, name: str, tail: Sequence[Publication],
                reports: Sequence[RenditionReport]) -> tuple[str, str]:  # fmt: skip
        """The full playlist and its delta update, from one window."""
        rs = state.rendition(name)
        target = target_duration_s(rs.longest_s, state.nominal_segment_s)
        segments = [self._segment(p) for p in tail]
        # Twice CAN-SKIP-UNTIL: a delta update (what LL clients reload ~5 times a second) then skips half the
        # window; a window as short as the standard one would have nothing older than the skip boundary.
        window = live_window(segments, min_segments=self.live_window_segments, target_duration=target,
                             min_seconds=LL_WINDOW_TARGET_DURATIONS * target)  # fmt: skip
        opened = open_parts(state, name)
        open_segment = None
        if opened is not None or window:
            parts, new_session = opened if opened is not None else ([], False)
            session, idx = self._next(state, name, parts)
            open_segment = OpenSegment(
                parts=tuple((layout.part_uri(session, name, idx, t.part), t.duration_s) for t in parts),
                next_part_uri=layout.part_uri(session, name, idx, len(parts)),
                init_uri=layout.init_uri(session, name), discontinuity=new_session,
            )  # fmt: skip
        longest_part = max(rs.longest_part_s, max((d for s in window for _, d in s.parts), default=0.0))
        ranges = window_fields(state.timed, [(s.media_sequence, s.program_date_time.timestamp(),
                                              s.program_date_time.timestamp() + s.duration_s) for s in window])
        full, skip = (render_ll_playlist(
            window, open_segment, target_duration=target, part_target=part_target_s(longest_part or 0.2),
            discontinuity_sequence=rs.discontinuities - sum(s.discontinuity for s in window), reports=reports,
            skip=delta, dateranges=ranges,
        ) for delta in (False, True))  # fmt: skip
        return full, skip

    @staticmethod
    def _next(state: RoomState, rendition: str, parts: list[StoredPart]) -> tuple[str, int]:
        """Which segment the next part belongs to (for the preload hint)."""
        if parts:
            return parts[0].session, parts[0].idx
        rs = state.rendition(rendition)
        last = rs.last
        if last is None:
            first = state.session_list()[0]
            return first.id, 0
        return last.session, rs.last_real_idx.get(last.session, -1) + 1

    def clear(self) -> None:
        self.board.clear(self.room)
        self._edges = {}
