"""Where broadcasts live, for the services that read and write them (ingest, the publish pass)."""

from __future__ import annotations

from dataclasses import dataclass

from origin.broadcast.journal.base import Journal
from origin.broadcast.spool import SpoolStore
from origin.broadcast.states import RoomStates
from origin.storage.base import Storage


@dataclass(frozen=True, kw_only=True)
class RoomStores:
    journal: Journal  # the truth: every fact about a broadcast, one record a line
    states: RoomStates  # this process's folded view of the journal
    storage: Storage  # what listeners read (a room's owner writes through its fenced view in a fleet)
    spool: SpoolStore  # objects storage refused, waiting for it to come back
