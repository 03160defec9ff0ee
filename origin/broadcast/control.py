"""The operator's handle on a room's broadcast: its summary, the end, and deletion of everything it left."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager

from origin.broadcast.ingest import IngestService
from origin.broadcast.model import BroadcastState
from origin.broadcast.spool import SpoolStore
from origin.broadcast.states import RoomStates
from origin.broadcast.view import BroadcastSummary, summarize
from origin.clock import wall_clock
from origin.contract import layout
from origin.errors import StateError
from origin.ops.room_stats import StatsStore
from origin.storage.base import Storage

log = logging.getLogger(__name__)


class BroadcastControl:
    """Blocking calls (journal, storage): the admin routes run them in a thread."""

    def __init__(
        self, *, states: RoomStates, ingest: IngestService, spool: SpoolStore, storage: Storage,
        stats: StatsStore | None = None, clock: Callable[[], float] = wall_clock,
        exclusive: Callable[[str], AbstractContextManager[object]] = lambda _room: contextlib.nullcontext(),
    ) -> None:  # fmt: skip
        self.states = states
        self.stats = stats
        self.clock = clock
        self.exclusive = exclusive  # held while deleting: keeps the replay download builder out
        self.ingest = ingest
        self.spool = spool
        self.storage = storage

    def exists(self, room: str) -> bool:
        return self.states.journal.exists(room)

    def summary(self, room: str) -> BroadcastSummary | None:
        if not self.exists(room):
            return None
        figures = self.stats.read(room) if self.stats is not None else None
        with self.states.hold(room) as state:
            return summarize(state, stats=figures, now=self.clock())

    def end(self, room: str) -> bool:
        return self.ingest.request_end(room)

    def delete(self, room: str) -> int:
        """Remove everything the room's broadcast left; the number of storage objects removed.

        Refused (409) while the broadcast is live or ending: end it first, so no publisher is writing.
        """
        with self.exclusive(room):
            return self._delete(room)

    def _delete(self, room: str) -> int:
        journal = self.states.journal
        if journal.exists(room):
            with self.states.hold(room) as state:
                current = state.state
            if current in (BroadcastState.LIVE, BroadcastState.ENDING):
                raise StateError(f"room {room!r} is {current.value}: end the broadcast before deleting it", room=room)
        keys = self.storage.list(layout.room_prefix(room) + "/")
        for key in keys:
            self.storage.delete(key)
        journal.delete(room)
        self.spool.delete_room(room)
        if self.stats is not None:
            self.stats.delete(room)
        self.states.forget(room)
        log.info("room=%s deleted: state and %d stored objects", room, len(keys))
        return len(keys)
