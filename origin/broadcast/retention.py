"""Retention: an ended room's state shrinks to what status.json and the admin view still need.

`SPILLWAY_STATE_RETENTION_SECONDS` after a broadcast ended, its journal (every segment's records) is replaced
by a handful of records that fold to the same listener view — ended, playable (the replay's master exists),
the download if built, the segment length — and its DVR bodies are removed. The replay itself lives in
storage and is untouched; `DELETE /v1/rooms/{room}` removes that too.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from origin.broadcast.journal.base import Journal
from origin.broadcast.model import BroadcastState, RoomState
from origin.broadcast.records import DownloadBuilt, MasterWritten, Record, SessionStarted, StateChanged
from origin.broadcast.states import RoomStates

log = logging.getLogger(__name__)


def compacted(state: RoomState) -> list[Record]:
    """The records an ended room keeps (pure): they fold to the same status as the whole journal."""
    out: list[Record] = []
    last = state.session_list()[-1] if state.sessions else None
    if last is not None:
        out.append(SessionStarted(session=last.id, at=state.started_at or last.started_at,
                                  segment_seconds=last.segment_seconds, ladder=last.ladder))  # fmt: skip
    if state.master:
        out.append(MasterWritten(renditions=state.master))
    if state.download_bytes is not None:
        out.append(DownloadBuilt(size=state.download_bytes))
    out.append(StateChanged(state=BroadcastState.ENDED, at=state.ended_at or 0.0))
    return out


class Retention:
    def __init__(
        self,
        *,
        states: RoomStates,
        retention_s: float,
        clock: Callable[[], float],
        room_dir: Callable[[str], Path] | None = None,
    ) -> None:
        self.states = states
        self.journal: Journal = states.journal
        self.retention_s = retention_s
        self.clock = clock
        self.room_dir = room_dir

    def sweep(self) -> list[str]:
        """Compact every ended room past retention that is not compacted yet; the rooms compacted."""
        done = []
        now = self.clock()
        for room in self.journal.rooms():
            with self.states.hold(room) as state:
                due = (state.state is BroadcastState.ENDED and state.ended_at is not None
                       and now - state.ended_at >= self.retention_s)  # fmt: skip
                keep = compacted(state) if due else []
                already = state.records <= len(keep)
            if not due or already:
                continue
            owner = self.journal.try_own(room)
            if owner is None:
                continue  # another worker is at it
            try:
                self.journal.replace(room, keep, fence=owner)
                if self.room_dir is not None:
                    shutil.rmtree(self.room_dir(room) / "dvr", ignore_errors=True)
                self.states.forget(room)
            finally:
                owner.release()
            log.info("room=%s state compacted %.0f s after the end (retention)", room, now - (state.ended_at or now))
            done.append(room)
        return done
