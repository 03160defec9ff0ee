"""The hedge policy: delay from recent latency, the budget, and the version lane of a mutable key (pure)."""

from __future__ import annotations

import pytest

from origin.storage.hedge_policy import HedgePolicy, Lane, Sample, hedge_delay, may_hedge, quantile, recent

POLICY = HedgePolicy(min_samples=4, quantile=0.9, factor=2.0, min_delay_s=0.05, initial_delay_s=0.25,
                     max_delay_s=0.5, horizon_s=60.0)  # fmt: skip


def samples(*latencies: float, at: float = 100.0) -> list[Sample]:
    return [Sample(at=at, latency_s=x) for x in latencies]


def test_initial_delay_until_enough_samples() -> None:
    assert hedge_delay([], 100.0, POLICY) == 0.25
    assert hedge_delay(samples(0.01, 0.01, 0.01), 100.0, POLICY) == 0.25


def test_delay_is_factor_times_the_quantile() -> None:
    lat = [0.01] * 8 + [0.06, 0.3]  # p90 (nearest rank) of 10 values = the 9th = 0.06
    assert quantile(lat, 0.9) == 0.06
    assert hedge_delay(samples(*lat), 100.0, POLICY) == pytest.approx(0.12)


def test_delay_is_clamped() -> None:
    assert hedge_delay(samples(0.001, 0.001, 0.001, 0.001), 100.0, POLICY) == 0.05
    assert hedge_delay(samples(2.0, 2.0, 2.0, 2.0), 100.0, POLICY) == 0.5


def test_old_samples_are_forgotten() -> None:
    old = samples(0.2, 0.2, 0.2, 0.2, at=10.0)
    assert len(recent(old, 71.0, POLICY)) == 0
    assert hedge_delay(old, 71.0, POLICY) == 0.25  # back to the initial delay, not the stale p90
    assert hedge_delay(old, 70.0, POLICY) == 0.4


def test_recent_keeps_at_most_max_samples_newest_last() -> None:
    policy = HedgePolicy(max_samples=3)
    kept = recent([Sample(at=float(i), latency_s=float(i)) for i in range(10)], 10.0, policy)
    assert [s.latency_s for s in kept] == [7.0, 8.0, 9.0]


def test_budget() -> None:
    assert may_hedge(writes=100, hedges=59, policy=POLICY)
    assert not may_hedge(writes=100, hedges=60, policy=POLICY)  # half the writes, plus a burst of 10
    assert may_hedge(writes=1, hedges=9, policy=POLICY)
    assert not may_hedge(writes=10, hedges=0, policy=HedgePolicy(budget=0.0, burst=0))


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        HedgePolicy(quantile=0.0)
    with pytest.raises(ValueError):
        HedgePolicy(min_delay_s=0.3, initial_delay_s=0.2)
    with pytest.raises(ValueError):
        HedgePolicy(max_attempts=0)


def test_lane_orders_the_versions_of_a_key() -> None:
    lane = Lane()
    v1 = lane.issue()
    assert not lane.superseded(v1)
    lane.landed(v1)
    assert not lane.needs_repair(v1)  # a loser of the stored version: same bytes, nothing to do
    v2 = lane.issue()
    assert lane.superseded(v1) and not lane.superseded(v2)
    assert not lane.needs_repair(v1)  # v2 is not stored yet: v1 landing last is not a regression yet
    lane.landed(v2)
    assert lane.needs_repair(v1)  # v1 may have landed after v2
    lane.landed(v1)
    assert lane.stored == v2  # stored never goes back
