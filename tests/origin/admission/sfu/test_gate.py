"""The admission glue over an SFU twin (MemorySfu) and the real SQLite backend, through the HTTP API.

Seats are let into the SFU on grant, dropped on leave and on expiry (sync pass), an unavailable SFU sends
joins to HLS at once without a lease, and a restarted SFU gets its rooms and allowed lists back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from origin.admission.backend import AdmissionBackend
from origin.admission.sfu.gate import SeatGate
from origin.admission.sfu.memory import JoinRefusedError, MemorySfu
from origin.admission.sfu.naming import RoomKeys, SeatKeys, janus_room_id
from tests.origin.admission.test_api import LEASE_S, SECRET, Harness, harness

ROOM_KEYS = RoomKeys(key=b"room-secret-key-0123456789")


@pytest.fixture
def sfu() -> MemorySfu:
    return MemorySfu(room_keys=ROOM_KEYS, seat_keys=SeatKeys(key=SECRET))


@pytest.fixture
def h(tmp_path: Path, sfu: MemorySfu) -> Iterator[Harness]:
    def gate(backend: AdmissionBackend) -> SeatGate:
        return SeatGate(sfu=sfu, backend=backend)

    with harness(tmp_path, gate=gate) as h:
        h.room("launch", realtime_cap=2)
        yield h


def _gate(h: Harness) -> SeatGate:
    assert h.deps.gate is not None
    return h.deps.gate


def _join_sfu(sfu: MemorySfu, seat: dict[str, object]) -> None:
    access = seat["sfu"]
    assert isinstance(access, dict)
    sfu.join("launch", token=str(access["token"]), participant=int(access["participant_id"]))


def test_a_granted_seat_carries_sfu_access_and_is_let_in(h: Harness, sfu: MemorySfu) -> None:
    seat = h.join()
    access = seat["sfu"]
    assert access == {
        "kind": "janus", "url": sfu.url, "room": janus_room_id("launch"),
        "token": access["token"], "participant_id": access["participant_id"],  # type: ignore[index]
    }  # fmt: skip
    _join_sfu(sfu, seat)
    with pytest.raises(JoinRefusedError) as refused:  # a forged token is refused by the SFU itself
        sfu.join("launch", token="l.forged-token", participant=2**52 + 7)
    assert refused.value.code == 489
    with pytest.raises(JoinRefusedError) as twice:  # one token, one participant
        _join_sfu(sfu, seat)
    assert twice.value.code == 490


def test_heartbeat_keeps_the_same_join_token(h: Harness) -> None:
    seat = h.join()
    lease = seat["lease"]["id"]  # type: ignore[index]
    h.clock.advance(10)
    renewed = h.client.post(f"/v1/rooms/launch/listeners/{lease}/heartbeat").json()
    assert renewed["sfu"] == seat["sfu"] and renewed["seat_token"] != seat["seat_token"]


def test_leave_removes_the_token_and_kicks(h: Harness, sfu: MemorySfu) -> None:
    seat = h.join()
    _join_sfu(sfu, seat)
    lease = seat["lease"]["id"]  # type: ignore[index]
    assert h.client.delete(f"/v1/rooms/launch/listeners/{lease}").status_code == 204
    access = seat["sfu"]
    assert ("launch", access["participant_id"]) in sfu.kicked  # type: ignore[index]
    with pytest.raises(JoinRefusedError):
        _join_sfu(sfu, seat)


def test_expiry_is_enforced_by_the_sync_pass(h: Harness, sfu: MemorySfu) -> None:
    first, second = h.join(), h.join()
    _join_sfu(sfu, first)
    _join_sfu(sfu, second)
    h.clock.advance(LEASE_S * 2 / 3)
    second_lease = second["lease"]["id"]  # type: ignore[index]
    h.client.post(f"/v1/rooms/launch/listeners/{second_lease}/heartbeat")
    h.clock.advance(LEASE_S / 2)  # the first lease has expired, the second has not
    plans = _gate(h).sync_pass(h.clock.now)
    assert plans["launch"].kick == (first["sfu"]["participant_id"],)  # type: ignore[index]
    assert sfu.rooms_by_id["launch"].participants == {second["sfu"]["participant_id"]}  # type: ignore[index]
    assert _gate(h).sync_pass(h.clock.now + 0.5) == {}  # another pass within the interval: claimed already


def test_sfu_down_sends_joins_to_hls_at_once_and_frees_the_seat(h: Harness, sfu: MemorySfu) -> None:
    sfu.down = True
    doc = h.join()
    assert doc["mode"] == "hls" and doc["reason"] == "sfu_unavailable"
    calls = sfu.calls
    assert h.join()["reason"] == "sfu_unavailable"  # within the retry window: the SFU is not even called
    assert sfu.calls == calls
    assert h.deps.backend.seats_taken("launch", now=h.clock.now) == 0  # no seat held for an HLS listener
    sfu.down = False
    h.clock.advance(2.0)
    assert h.join()["mode"] == "realtime"


def test_a_restarted_sfu_gets_rooms_and_allowed_lists_back(h: Harness, sfu: MemorySfu) -> None:
    seat = h.join()
    sfu.restart()  # Janus restarted: every room gone
    h.clock.advance(1)
    plans = _gate(h).sync_pass(h.clock.now)
    assert plans["launch"].create
    _join_sfu(sfu, seat)  # the live lease's token works again
    assert ROOM_KEYS.speaker_token("launch") in sfu.rooms_by_id["launch"].tokens


def test_sync_while_down_marks_unavailable_and_recovers(h: Harness, sfu: MemorySfu) -> None:
    h.join()
    sfu.down = True
    h.clock.advance(3)
    assert _gate(h).sync_pass(h.clock.now) == {}
    assert not _gate(h).usable(h.clock.now)
    sfu.down = False
    sfu.restart()
    h.clock.advance(3)
    assert _gate(h).sync_pass(h.clock.now)["launch"].create
    assert _gate(h).usable(h.clock.now)
