"""Recording timed events: any source (the admin API, the Janus talk watcher) → one journal record.

Checked and appended under the room's journal lock, like ingest (`timed.plan_event` decides on the folded
state), then the owner is rung so its next pass puts the event in the playlists (EXT-X-DATERANGE) and ingest
puts it in the next segments (emsg/ID3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from origin.broadcast import timed
from origin.broadcast.journal.base import Journal
from origin.broadcast.model import BroadcastState
from origin.broadcast.records import TimedEventRecorded
from origin.broadcast.states import RoomStates
from origin.broadcast.timed import EventRequest, TimedEvent
from origin.errors import NotFoundError, StateError

log = logging.getLogger(__name__)


class EventService:
    """Blocking (journal): the HTTP route runs it in a thread."""

    def __init__(self, *, journal: Journal, states: RoomStates, clock: Callable[[], float],
                 ring: Callable[[str], None] = lambda room: None) -> None:  # fmt: skip
        self.journal = journal
        self.states = states
        self.clock = clock
        self.ring = ring

    def record(self, room: str, request: EventRequest) -> tuple[TimedEvent, bool]:
        """(the event as recorded, created): created is False for an "on" of a turn already under way."""
        now = self.clock()
        if not self.journal.exists(room):
            raise NotFoundError(f"room {room!r} has never broadcast", room=room)
        with self.journal.locked(room), self.states.hold(room) as state:
            if state.state is not BroadcastState.LIVE:
                raise StateError(f"room {room!r} is not on air ({state.state.value})", room=room)
            event = timed.plan_event(state.timed, request, now=now, room=room)
            if event is None:
                return state.timed.events[state.timed.open_turns[request.speaker]], False
            self.journal.append(room, [TimedEventRecorded(event=event)])
        self.ring(room)
        log.info("room=%s timed event %s (%s%s)", room, event.id, event.kind.value,
                 ", ended" if event.end is not None else "")  # fmt: skip
        return event, True


def event_json(event: TimedEvent) -> dict[str, object]:
    doc: dict[str, object] = {"id": event.id, "kind": event.kind.value, "start": event.start, "end": event.end}
    for key, value in (("speaker", event.speaker), ("title", event.title), ("text", event.text)):
        if value:
            doc[key] = value
    return doc
