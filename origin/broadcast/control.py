"""The operator's handle on a room's broadcast: its summary, the end, and deletion of everything it left."""

from __future__ import annotations

import logging

from origin.broadcast.ingest import IngestService
from origin.broadcast.model import BroadcastState
from origin.broadcast.spool import SpoolStore
from origin.broadcast.states import RoomStates
from origin.broadcast.view import BroadcastSummary, summarize
from origin.contract import layout
from origin.errors import StateError
from origin.storage.base import Storage

log = logging.getLogger(__name__)


class BroadcastControl:
    """Blocking calls (journal, storage): the admin routes run them in a thread."""

    def __init__(self, *, states: RoomStates, ingest: IngestService, spool: SpoolStore, storage: Storage) -> None:
        self.states = states
        self.ingest = ingest
        self.spool = spool
        self.storage = storage

    def exists(self, room: str) -> bool:
        return self.states.journal.exists(room)

    def summary(self, room: str) -> BroadcastSummary | None:
        if not self.exists(room):
            return None
        with self.states.hold(room) as state:
            return summarize(state)

    def end(self, room: str) -> bool:
        return self.ingest.request_end(room)

    def delete(self, room: str) -> int:
        """Remove everything the room's broadcast left; the number of storage objects removed.

        Refused (409) while the broadcast is live or ending: end it first, so no publisher is writing.
        """
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
        self.states.forget(room)
        log.info("room=%s deleted: state and %d stored objects", room, len(keys))
        return len(keys)
