"""What to change in the SFU so it matches admission (pure): desired state vs observed state → a plan.

Desired, for one room: the allowed list holds the speaker token and the join token of every live lease, and
only the speaker slots and the live leases' participant ids may be in the room. Observed: what Janus reports.
Nothing here talks to Janus or reads a clock; `SeatGate` (gate.py) observes, plans and applies.

Read order matters and is the caller's job: observe Janus first, then read the live leases. A participant
or token that appears in between (a seat granted meanwhile) is then absent from the observation and left
alone, never kicked or removed by mistake. The opposite race (a lease released between the lease read and
applying the plan) can re-add one token for one interval; the next pass removes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from origin.admission.sfu.naming import RoomKeys, SeatKeys


@dataclass(frozen=True, kw_only=True)
class Desired:
    tokens: frozenset[str]
    participants: frozenset[int]


@dataclass(frozen=True, kw_only=True)
class Observed:
    exists: bool
    tokens: frozenset[str] = field(default_factory=frozenset)
    participants: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True, kw_only=True)
class Plan:
    create: bool = False  # the room is missing: create it with the desired allowed list
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    kick: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.create or self.add or self.remove or self.kick)


def desired_state(room: str, leases: Iterable[str], *, room_keys: RoomKeys, seat_keys: SeatKeys) -> Desired:
    leases = tuple(leases)
    return Desired(
        tokens=frozenset([room_keys.speaker_token(room), *(seat_keys.join_token(room, lease) for lease in leases)]),
        participants=frozenset(
            [*room_keys.speaker_ids(room), room_keys.observer_id(room),
             *(seat_keys.participant_id(room, lease) for lease in leases)]
        ),
    )


def plan(desired: Desired, observed: Observed) -> Plan:
    if not observed.exists:
        return Plan(create=True)
    return Plan(
        add=tuple(sorted(desired.tokens - observed.tokens)),
        remove=tuple(sorted(observed.tokens - desired.tokens)),
        kick=tuple(sorted(observed.participants - desired.participants)),
    )
