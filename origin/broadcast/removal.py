"""Deleting a room's broadcast: its state (journal, spool, DVR bodies) and every object it published."""

from __future__ import annotations

import logging
import shutil

from origin.broadcast.model import BroadcastState
from origin.broadcast.spool import Spool
from origin.broadcast.states import RoomStates
from origin.contract import layout
from origin.errors import StateError
from origin.storage.base import Storage

log = logging.getLogger(__name__)


def delete_broadcast(room: str, *, states: RoomStates, spool: Spool, storage: Storage) -> int:
    """Remove everything the room's broadcast left; the number of storage objects removed.

    Refused (409) while the broadcast is live or ending: end it first, so no publisher is writing.
    """
    journal = states.journal
    if journal.exists(room):
        with states.hold(room) as state:
            current = state.state
        if current in (BroadcastState.LIVE, BroadcastState.ENDING):
            raise StateError(f"room {room!r} is {current.value}: end the broadcast before deleting it", room=room)
    keys = storage.list(layout.room_prefix(room) + "/")
    for key in keys:
        storage.delete(key)
    journal.delete(room)
    shutil.rmtree(spool.path(layout.room_prefix(room)), ignore_errors=True)
    states.forget(room)
    log.info("room=%s deleted: state and %d stored objects", room, len(keys))
    return len(keys)
