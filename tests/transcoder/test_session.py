from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from origin.contract.ids import SESSION_ID_PATTERN
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


def test_status_printer_rewrites_one_line_on_a_tty_and_logs_otherwise(caplog: pytest.LogCaptureFixture) -> None:
    import io
    import logging

    from transcoder.status import StatusPrinter

    tty = io.StringIO()
    printer = StatusPrinter(tty, tty=True)
    printer(TranscodeStatus(room="demo", state="running", segments_pushed=3, uptime_seconds=1))
    printer(TranscodeStatus(room="demo", state="finished", segments_pushed=9, uptime_seconds=2))
    text = tty.getvalue()
    assert text.startswith("\rroom demo running") and "\rroom demo finished" in text and text.endswith("\n")
    assert text.count("\n") == 1

    log = io.StringIO()
    printer = StatusPrinter(log, tty=False, log_interval_seconds=10)
    with caplog.at_level(logging.INFO, logger="transcoder.status"):
        for t in (0, 4, 9, 10, 12, 21):
            printer(TranscodeStatus(room="demo", state="running", uptime_seconds=t))
    assert log.getvalue() == ""
    assert [r.getMessage().split(" up ")[1] for r in caplog.records] == ["00:00:00", "00:00:10", "00:00:21"]
