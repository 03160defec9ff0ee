"""MemorySfu: an in-memory AudioBridge twin (allowed lists, participants, outages) for unit tests of the glue.

Same naming and reconcile plan as JanusSfu; `join` plays a client (refused without an allowed token, or
with a participant id already in the room), `down` makes every call fail as an unreachable SFU would, and
`restart` forgets every room as a restarted Janus does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from origin.admission.sfu.base import SeatAccess, SfuKind, SfuUnavailableError
from origin.admission.sfu.naming import RoomKeys, SeatKeys, janus_room_id
from origin.admission.sfu.reconcile import Observed, Plan, desired_state, plan


@dataclass(kw_only=True)
class MemoryRoom:
    tokens: set[str] = field(default_factory=set)
    participants: set[int] = field(default_factory=set)


class JoinRefusedError(Exception):
    """What Janus answers a client it does not let in (489 not allowed, 490 id exists)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"join refused ({code})")
        self.code = code


class MemorySfu:
    kind: SfuKind = "janus"

    def __init__(self, *, room_keys: RoomKeys, seat_keys: SeatKeys, url: str = "http://sfu.invalid/janus") -> None:
        self.room_keys = room_keys
        self.seat_keys = seat_keys
        self.url = url
        self.rooms_by_id: dict[str, MemoryRoom] = {}
        self.down = False
        self.calls = 0
        self.kicked: list[tuple[str, int]] = []

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise SfuUnavailableError("connection refused", sfu="memory")

    def _create(self, room: str, tokens: set[str]) -> MemoryRoom:
        return self.rooms_by_id.setdefault(room, MemoryRoom(tokens={self.room_keys.speaker_token(room), *tokens}))

    # -- Sfu ------------------------------------------------------------------------------------------------

    def access(self, room: str, lease: str, *, now: float, expires_at: float) -> SeatAccess:
        return SeatAccess(
            kind="janus", url=self.url, room=janus_room_id(room), token=self.seat_keys.join_token(room, lease),
            participant_id=self.seat_keys.participant_id(room, lease),
        )  # fmt: skip

    def grant(self, room: str, lease: str) -> None:
        self._call()
        self._create(room, set()).tokens.add(self.seat_keys.join_token(room, lease))

    def revoke(self, room: str, lease: str) -> None:
        self._call()
        state = self.rooms_by_id.get(room)
        if state is None:
            return
        state.tokens.discard(self.seat_keys.join_token(room, lease))
        self._kick(room, state, self.seat_keys.participant_id(room, lease))

    def sync(self, room: str, live_leases: Callable[[], list[str]]) -> Plan:
        self._call()
        state = self.rooms_by_id.get(room)
        observed = Observed(exists=False) if state is None else Observed(
            exists=True, tokens=frozenset(state.tokens), participants=frozenset(state.participants)
        )  # fmt: skip
        desired = desired_state(room, live_leases(), room_keys=self.room_keys, seat_keys=self.seat_keys)
        todo = plan(desired, observed)
        if todo.create:
            self._create(room, set(desired.tokens))
            return todo
        assert state is not None
        state.tokens |= set(todo.add)
        state.tokens -= set(todo.remove)
        for participant in todo.kick:
            self._kick(room, state, participant)
        return todo

    def rooms(self) -> list[str]:
        self._call()
        return sorted(self.rooms_by_id)

    def close(self) -> None:
        return None

    # -- the client's and the operator's side ---------------------------------------------------------------

    def _kick(self, room: str, state: MemoryRoom, participant: int) -> None:
        if participant in state.participants:
            state.participants.discard(participant)
            self.kicked.append((room, participant))

    def join(self, room: str, *, token: str, participant: int) -> None:
        state = self.rooms_by_id.get(room)
        if state is None:
            raise JoinRefusedError(485)
        if token not in state.tokens:
            raise JoinRefusedError(489)
        if participant in state.participants:
            raise JoinRefusedError(490)
        state.participants.add(participant)

    def restart(self) -> None:
        self.rooms_by_id.clear()
