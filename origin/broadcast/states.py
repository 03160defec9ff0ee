"""Each process's folded view of the rooms it touches: journal records in, `RoomState` out.

`hold(room)` reads what was appended since the last call (usually a line or two), folds it, and keeps the
room's state to the caller until the block ends: another thread's fold never changes it under a reader.
Hold it briefly (no storage I/O inside). A caller that will decide and append on the state holds
`Journal.locked(room)` around it.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator

from origin.broadcast import lifecycle
from origin.broadcast.journal.base import Journal, RoomLocks
from origin.broadcast.model import RoomState
from origin.broadcast.records import Record

MAX_ROOMS = 10_000  # folded rooms kept per process; the least recently used is dropped (and re-folded on use)


class RoomStates:
    def __init__(self, journal: Journal, *, max_rooms: int = MAX_ROOMS) -> None:
        self.journal = journal
        self.max_rooms = max_rooms
        self._states: OrderedDict[str, tuple[RoomState, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._room_lock = RoomLocks()

    @contextlib.contextmanager
    def hold(self, room: str) -> Iterator[RoomState]:
        """The room's state with every record appended so far folded in, unchanging inside the block."""
        with self._room_lock(room):
            yield self._refresh(room)

    def _refresh(self, room: str) -> RoomState:
        with self._lock:
            held = self._states.get(room)
        state, offset = held if held is not None else (RoomState(room=room), 0)
        self._fold(room, state, offset)
        return state

    def _fold(self, room: str, state: RoomState, offset: int) -> list[Record]:
        """Fold what the journal holds from `offset` into `state`, keep it; the records read."""
        records, offset = self.journal.read(room, offset)
        for record in records:
            lifecycle.apply(state, record)
        with self._lock:
            self._states[room] = (state, offset)
            self._states.move_to_end(room)
            while len(self._states) > self.max_rooms:
                self._states.popitem(last=False)
        return records

    def folded(self, room: str) -> bool:
        """Whether this process holds the room's state: a `hold` then folds only what was appended since (a
        room never folded here reads its whole journal, which grows with the broadcast: keep that off the loop)."""
        with self._lock:
            return room in self._states

    def refold(self, room: str) -> list[Record]:
        """Fold the room's whole journal afresh and return its records: a new owner rebuilds its DVR from the
        same read instead of decoding the journal twice."""
        with self._room_lock(room):
            return self._fold(room, RoomState(room=room), 0)

    def forget(self, room: str) -> None:
        with self._lock:
            self._states.pop(room, None)
