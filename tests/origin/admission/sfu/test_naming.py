"""Names inside Janus are derived: stable, distinct per room and lease, JavaScript-safe, keyed by the secrets."""

from __future__ import annotations

import pytest

from origin.admission.sfu.naming import (
    LISTENER_ID_BASE,
    MAX_ID,
    SPEAKER_SLOTS,
    RoomKeys,
    SeatKeys,
    is_listener_id,
    janus_room_id,
    room_description,
    room_from_description,
)

ROOM_KEYS = RoomKeys(key=b"room-secret-key-0123456789")
SEAT_KEYS = SeatKeys(key=b"seat-secret-key-0123456789abcdef")


def test_room_ids_are_stable_distinct_and_exact_in_javascript() -> None:
    ids = {janus_room_id(f"room-{i}") for i in range(2000)}
    assert len(ids) == 2000
    assert all(1 <= i <= MAX_ID for i in ids)
    assert janus_room_id("launch") == janus_room_id("launch")


def test_descriptions_round_trip_and_foreign_rooms_are_ignored() -> None:
    assert room_from_description(room_description("launch")) == "launch"
    for other in ("Demo Room", "", "spillway:", None, 42):
        assert room_from_description(other) is None


def test_listener_tokens_and_ids_are_per_room_and_lease_and_keyed() -> None:
    token = SEAT_KEYS.join_token("launch", "lease-aaaaaaaaaaaa")
    assert token == SEAT_KEYS.join_token("launch", "lease-aaaaaaaaaaaa")  # stable across heartbeats
    assert token != SEAT_KEYS.join_token("launch", "lease-bbbbbbbbbbbb")
    assert token != SEAT_KEYS.join_token("other", "lease-aaaaaaaaaaaa")
    assert token != SeatKeys(key=b"another-seat-secret-0123456789ab").join_token("launch", "lease-aaaaaaaaaaaa")
    ids = {SEAT_KEYS.participant_id("launch", f"lease-{i:012d}") for i in range(2000)}
    assert len(ids) == 2000 and all(is_listener_id(i) for i in ids)


def test_speaker_ids_never_collide_with_listener_ids() -> None:
    speakers = ROOM_KEYS.speaker_ids("launch")
    assert len(set(speakers)) == SPEAKER_SLOTS
    assert all(1 <= i < LISTENER_ID_BASE for i in speakers)
    assert ROOM_KEYS.speaker_token("launch") != ROOM_KEYS.speaker_token("other")
    assert ROOM_KEYS.room_secret("launch") != ROOM_KEYS.room_secret("other")


def test_short_room_key_is_refused() -> None:
    with pytest.raises(ValueError):
        RoomKeys(key=b"short")


def test_secrets_stay_out_of_repr() -> None:
    assert "room-secret-key" not in repr(ROOM_KEYS) and "seat-secret-key" not in repr(SEAT_KEYS)


def test_speaker_cli_prints_what_the_transcoder_and_origin_derive(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from origin.cli import main

    monkeypatch.setenv("SPILLWAY_JANUS_ROOM_SECRET", "room-secret-key-0123456789")
    monkeypatch.setenv("SPILLWAY_JANUS_URL", "http://127.0.0.1:8088/janus")
    assert main(["sfu", "speaker", "--room", "launch"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["room"] == janus_room_id("launch") and doc["token"] == ROOM_KEYS.speaker_token("launch")
    assert doc["participant_ids"] == list(ROOM_KEYS.speaker_ids("launch"))
    monkeypatch.setenv("SPILLWAY_JANUS_ROOM_SECRET", "short")
    assert main(["sfu", "speaker", "--room", "launch"]) == 2
    assert main(["sfu", "speaker", "--room", "../x"]) == 2
