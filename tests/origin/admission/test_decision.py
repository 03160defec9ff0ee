"""Pure admission policy: lease liveness, the reference lease table, the full-room hint."""

from __future__ import annotations

import pytest

from origin.admission.decision import (
    FullHint,
    JoinPath,
    LeaseEndedError,
    LeaseNotFoundError,
    LeaseTable,
    choose_path,
    expected_hls_delay_s,
    heartbeat_interval_s,
    lease_id,
    lease_is_live,
)
from origin.errors import ValidationError

T0 = 1_000.0


def test_lease_is_live_strictly_before_expiry() -> None:
    assert lease_is_live(10.0, 9.999)
    assert not lease_is_live(10.0, 10.0)
    assert not lease_is_live(10.0, 10.5)


def test_heartbeat_and_hls_delay() -> None:
    assert heartbeat_interval_s(30.0) == 10.0
    assert expected_hls_delay_s(2.0) == 8.0  # 3 segments of hold-back + the one being cut
    assert expected_hls_delay_s(2.048) == pytest.approx(8.192)


@pytest.mark.parametrize("value", ["", "short", "a" * 65, "has space-0000000", "../../etc/passwd0000", "é" * 20])
def test_lease_id_rejects_bad_values(value: str) -> None:
    with pytest.raises(ValidationError):
        lease_id(value)


def test_lease_id_accepts_token_urlsafe() -> None:
    assert lease_id("FBK1EBXVvTs_XoveiehC9A") == "FBK1EBXVvTs_XoveiehC9A"


def test_choose_path() -> None:
    assert choose_path(cap=0, full_until=None, now=T0) is JoinPath.HLS
    assert choose_path(cap=5, full_until=None, now=T0) is JoinPath.TRY_SEAT
    assert choose_path(cap=5, full_until=T0 + 0.5, now=T0) is JoinPath.HLS
    assert choose_path(cap=5, full_until=T0, now=T0) is JoinPath.TRY_SEAT  # the hint has run out


def test_full_hint_expires_and_clears() -> None:
    hint = FullHint(ttl_s=1.0)
    hint.mark_full("r", T0)
    assert hint.until("r") == T0 + 1.0
    hint.clear("r")
    assert hint.until("r") is None
    with pytest.raises(ValueError):
        FullHint(ttl_s=2.0)  # never trusted for longer than a second


def test_full_hint_is_bounded() -> None:
    hint = FullHint(ttl_s=1.0, max_rooms=3)
    for i in range(10):
        hint.mark_full(f"r{i}", T0 + i)  # each earlier mark has expired by the next
    assert hint.until("r9") == T0 + 10.0
    assert sum(hint.until(f"r{i}") is not None for i in range(10)) <= 3


def test_table_admits_to_cap_then_refuses() -> None:
    table = LeaseTable()
    results = [table.admit("r", lease=f"l{i}", cap=3, now=T0, lease_s=30) for i in range(5)]
    assert [r.admitted for r in results] == [True, True, True, False, False]
    assert [r.seats_taken for r in results] == [1, 2, 3, 3, 3]
    assert results[0].expires_at == T0 + 30


def test_table_expiry_frees_seats() -> None:
    table = LeaseTable()
    table.admit("r", lease="a", cap=1, now=T0, lease_s=30)
    assert not table.admit("r", lease="b", cap=1, now=T0 + 29.9, lease_s=30).admitted
    assert table.seats_taken("r", now=T0 + 30) == 0
    assert table.admit("r", lease="b", cap=1, now=T0 + 30, lease_s=30).admitted
    with pytest.raises(LeaseEndedError):  # "a" was reaped by that admit: a late heartbeat reads 410
        table.renew("r", lease="a", now=T0 + 31, lease_s=30)


def test_table_heartbeat_extends_and_expired_heartbeat_is_410() -> None:
    table = LeaseTable()
    table.admit("r", lease="a", cap=1, now=T0, lease_s=30)
    assert table.renew("r", lease="a", now=T0 + 20, lease_s=30) == T0 + 50
    assert table.seats_taken("r", now=T0 + 45) == 1
    with pytest.raises(LeaseEndedError):
        table.renew("r", lease="a", now=T0 + 50, lease_s=30)
    with pytest.raises(LeaseNotFoundError):
        table.renew("r", lease="never", now=T0, lease_s=30)
    with pytest.raises(LeaseNotFoundError):
        table.renew("other-room", lease="a", now=T0, lease_s=30)


def test_table_release_is_idempotent_for_known_leases() -> None:
    table = LeaseTable()
    table.admit("r", lease="a", cap=1, now=T0, lease_s=30)
    table.release("r", lease="a", now=T0 + 1)
    table.release("r", lease="a", now=T0 + 2)
    assert table.seats_taken("r", now=T0 + 2) == 0
    with pytest.raises(LeaseEndedError):
        table.renew("r", lease="a", now=T0 + 3, lease_s=30)
    with pytest.raises(LeaseNotFoundError):
        table.release("r", lease="never", now=T0)


def test_table_forgets_ended_leases_after_retention() -> None:
    table = LeaseTable(gone_retention_s=60)
    table.admit("r", lease="a", cap=5, now=T0, lease_s=30)
    table.release("r", lease="a", now=T0)
    table.admit("r", lease="b", cap=5, now=T0 + 61, lease_s=30)  # an admit trims the ended list
    with pytest.raises(LeaseNotFoundError):
        table.renew("r", lease="a", now=T0 + 62, lease_s=30)
