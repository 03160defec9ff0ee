"""The reconcile plan (pure): what Janus must change to match the live leases."""

from __future__ import annotations

from origin.admission.sfu.naming import RoomKeys, SeatKeys
from origin.admission.sfu.reconcile import Observed, Plan, desired_state, plan

ROOM_KEYS = RoomKeys(key=b"room-secret-key-0123456789")
SEAT_KEYS = SeatKeys(key=b"seat-secret-key-0123456789abcdef")
LEASES = ["lease-000000000001", "lease-000000000002"]


def _desired(leases: list[str]) -> frozenset[str]:
    return desired_state("r", leases, room_keys=ROOM_KEYS, seat_keys=SEAT_KEYS).tokens


def test_desired_state_is_the_speaker_plus_every_live_lease() -> None:
    d = desired_state("r", LEASES, room_keys=ROOM_KEYS, seat_keys=SEAT_KEYS)
    assert d.tokens == {ROOM_KEYS.speaker_token("r"), *(SEAT_KEYS.join_token("r", lease) for lease in LEASES)}
    assert d.participants == {*ROOM_KEYS.speaker_ids("r"), ROOM_KEYS.observer_id("r"),
                              *(SEAT_KEYS.participant_id("r", lease) for lease in LEASES)}  # fmt: skip


def test_a_missing_room_is_created() -> None:
    d = desired_state("r", LEASES, room_keys=ROOM_KEYS, seat_keys=SEAT_KEYS)
    assert plan(d, Observed(exists=False)) == Plan(create=True)


def test_in_sync_is_an_empty_plan() -> None:
    d = desired_state("r", LEASES, room_keys=ROOM_KEYS, seat_keys=SEAT_KEYS)
    speaker = ROOM_KEYS.speaker_ids("r")[0]
    todo = plan(d, Observed(exists=True, tokens=d.tokens, participants=frozenset([speaker])))
    assert todo.empty


def test_an_expired_lease_loses_its_token_and_its_participant() -> None:
    before = desired_state("r", LEASES, room_keys=ROOM_KEYS, seat_keys=SEAT_KEYS)
    after = desired_state("r", LEASES[1:], room_keys=ROOM_KEYS, seat_keys=SEAT_KEYS)
    gone = SEAT_KEYS.participant_id("r", LEASES[0])
    kept = SEAT_KEYS.participant_id("r", LEASES[1])
    todo = plan(after, Observed(exists=True, tokens=before.tokens, participants=frozenset([gone, kept])))
    assert todo == Plan(remove=(SEAT_KEYS.join_token("r", LEASES[0]),), kick=(gone,))


def test_strangers_are_removed_and_kicked_missing_tokens_added() -> None:
    d = desired_state("r", LEASES, room_keys=ROOM_KEYS, seat_keys=SEAT_KEYS)
    observed = Observed(exists=True, tokens=frozenset(["hand-added"]), participants=frozenset([12345]))
    todo = plan(d, observed)
    assert set(todo.add) == set(d.tokens) and todo.remove == ("hand-added",) and todo.kick == (12345,)
