"""Which rooms this worker may try to take, and the attempts: at once for a local lock (an flock costs
microseconds), off the event loop for a remote lease (a Redis round trip — or a timeout while Redis is down).

A room found owned elsewhere is not tried again for `backoff_s`; an ended room never again (until its
state is deleted). `lost` marks a room this worker stopped publishing (its lease was taken or lapsed).
With leases whose remaining time the journal can tell (`LeaseHints`), a room found owned elsewhere is
tried again the moment its owner's lease would run out (`on_due`): a dead owner's room moves then, not at
the next ring or sweep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import KW_ONLY, dataclass
from typing import Protocol

from origin.broadcast.journal.base import Journal, Ownership
from origin.broadcast.model import BroadcastState
from origin.broadcast.states import RoomStates
from origin.errors import OriginError

log = logging.getLogger(__name__)

CLAIM_BACKOFF_S = 1.0  # after finding a room owned elsewhere, do not try to take it again this soon
DUE_MARGIN_S = 0.02


class LeaseHints(Protocol):
    def lease_remaining(self, room: str) -> float | None:
        """Seconds until the lease of the room's current owner (found by a failed claim) runs out."""
        ...


@dataclass(eq=False)
class Claims:
    journal: Journal
    clock: Callable[[], float]
    _: KW_ONLY
    in_thread: bool = False
    backoff_s: float = CLAIM_BACKOFF_S
    hints: LeaseHints | None = None

    def __post_init__(self) -> None:
        self.on_due: Callable[[str], None] | None = None  # asked to claim a room whose owner's lease ran out
        self._due: dict[str, asyncio.TimerHandle] = {}
        self.finished: set[str] = set()  # ended rooms: never claimed again by this worker
        self._elsewhere: dict[str, float] = {}  # room -> when we last found it owned by another worker
        self._pending: set[str] = set()  # attempts running off the loop

    def allowed(self, room: str) -> bool:
        if room in self.finished or room in self._pending:
            return False
        return self.clock() - self._elsewhere.get(room, float("-inf")) >= self.backoff_s

    def attempt(self, room: str) -> Ownership | None:
        """Try to take the room now (on the calling thread)."""
        return self._noted(room, self.journal.try_own(room))

    def attempt_off_loop(self, room: str) -> Coroutine[object, object, Ownership | None]:
        """An attempt in a worker thread; the room counts as being tried from this call on."""
        self._pending.add(room)
        return self._attempt_in_thread(room)

    async def _attempt_in_thread(self, room: str) -> Ownership | None:
        ownership: Ownership | None = None
        try:
            ownership = await asyncio.to_thread(self.journal.try_own, room)
        except OriginError as exc:  # the coordination store is unreachable: try again after the backoff
            log.warning("room=%s claim failed: %s", room, exc)
        finally:
            self._pending.discard(room)
        remaining = self.hints.lease_remaining(room) if self.hints is not None and ownership is None else None
        if remaining is not None and self.on_due is not None and room not in self._due:
            self._due[room] = asyncio.get_running_loop().call_later(remaining + DUE_MARGIN_S, self._fire, room)
        return self._noted(room, ownership)

    def _fire(self, room: str) -> None:
        self._due.pop(room, None)
        if self.on_due is not None:
            self.on_due(room)

    def _noted(self, room: str, ownership: Ownership | None) -> Ownership | None:
        if ownership is None:
            self._elsewhere[room] = self.clock()
        else:
            self._elsewhere.pop(room, None)
        return ownership

    def sweep(self, states: RoomStates, owned: set[str]) -> list[str]:
        """Rooms on air or ending that this worker does not publish (candidates to take over); ended rooms
        found on the way are never tried again. Blocking (reads every room's journal)."""
        orphans = []
        for room in self.journal.rooms():
            if room in owned or room in self.finished:
                continue
            with states.hold(room) as state:
                current = state.state
            if current in (BroadcastState.LIVE, BroadcastState.ENDING):
                orphans.append(room)
            elif current is BroadcastState.ENDED:
                self.finished.add(room)
        return orphans

    def lost(self, room: str) -> None:
        self._elsewhere[room] = self.clock()

    def forget(self, room: str) -> None:
        self.finished.discard(room)
        self._elsewhere.pop(room, None)
        timer = self._due.pop(room, None)
        if timer is not None:
            timer.cancel()

    def close(self) -> None:
        self.on_due = None
        for timer in self._due.values():
            timer.cancel()
        self._due.clear()
