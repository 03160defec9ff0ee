"""`BroadcastView` over the ingest side's durable room state (origin/state.py), read-only."""

from __future__ import annotations

import sqlite3

from origin import keys
from origin.admission.status import BroadcastInfo, BroadcastState
from origin.errors import StorageError
from origin.state import StateStore


class StateBroadcastView:
    """Idle until a room's first ingest session; live while on air or ending; ended once final."""

    def __init__(self, store: StateStore, *, public_base_url: str) -> None:
        self.store = store
        self.public_base_url = public_base_url

    def broadcast(self, room: str) -> BroadcastInfo:
        if not self.store.db_path(room).exists():  # never broadcast: do not create its state file
            return BroadcastInfo()
        try:
            with self.store.open(room) as db:
                raw_state, _, _ = db.broadcast()
                sessions = db.sessions()
        except sqlite3.Error as exc:
            raise StorageError(f"broadcast state unreadable: {exc}", key=room, backend="state") from exc
        state: BroadcastState = "ended" if raw_state == "ended" else "idle" if raw_state == "idle" else "live"
        segment_s = sessions[-1].segment_seconds if sessions else None
        replay_url = None if state == "idle" else f"{self.public_base_url}/{keys.replay_master(room)}"
        return BroadcastInfo(state=state, replay_url=replay_url, segment_s=segment_s)
