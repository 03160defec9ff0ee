from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from origin.ids import SESSION_ID_PATTERN
from transcoder.errors import ConfigError
from transcoder.session import random_hex, session_id
from transcoder.status import TranscodeStatus, format_status


def test_session_ids_match_the_contract_and_sort_by_time() -> None:
    t = datetime(2026, 11, 26, 9, 3, 1, tzinfo=UTC)
    assert session_id(t, "3f9a1c0d") == "20261126t090301z-3f9a1c0d"
    ids = [session_id(t + timedelta(seconds=s), random_hex()) for s in (0, 1, 61, 3600)]
    assert ids == sorted(ids)
    assert all(SESSION_ID_PATTERN.fullmatch(i) for i in ids)
    assert len({session_id(t, random_hex()) for _ in range(50)}) == 50
    cet = timezone(timedelta(hours=1))
    assert session_id(datetime(2026, 11, 26, 10, 3, 1, tzinfo=cet), "00ff00ff") == "20261126t090301z-00ff00ff"


def test_naive_time_is_refused() -> None:
    with pytest.raises(ConfigError):
        session_id(datetime(2026, 1, 1), "deadbeef")


def test_status_line() -> None:
    status = TranscodeStatus(
        room="demo", state="running", session="s-1234567", segments_pushed=42, bitrate_bps=239_500,
        restarts=1, media_seconds=84.2, speed=1.0, uptime_seconds=3725,
    )  # fmt: skip
    assert format_status(status) == (
        "room demo running  session s-1234567 segments 42 bitrate 240 kb/s restarts 1 media 00:01:24 "
        "speed 1.00x up 01:02:05"
    )
