"""Token bucket per client address (pure, time passed in)."""

from __future__ import annotations

import pytest

from origin.admission.ratelimit import BucketPolicy, RateLimiter, retry_after_header, take

T0 = 500.0


def test_burst_then_refill_at_rate() -> None:
    policy = BucketPolicy.per_minute(30)  # 30 back to back, then one every 2 s
    bucket = None
    for _ in range(30):
        result = take(bucket, policy, T0)
        assert result.allowed
        bucket = result.bucket
    refused = take(bucket, policy, T0)
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(2.0)
    assert not take(refused.bucket, policy, T0 + 1.9).allowed
    assert take(refused.bucket, policy, T0 + 2.0).allowed


def test_bucket_never_exceeds_burst() -> None:
    policy = BucketPolicy(rate_per_s=1.0, burst=3)
    result = take(None, policy, T0)
    later = take(result.bucket, policy, T0 + 3600)
    assert later.bucket.tokens == pytest.approx(2.0)  # refilled to 3, took 1


def test_clock_going_backwards_refills_nothing() -> None:
    policy = BucketPolicy(rate_per_s=1.0, burst=1)
    spent = take(None, policy, T0).bucket
    back = take(spent, policy, T0 - 100)
    assert not back.allowed
    assert back.bucket.updated_at == T0


def test_invalid_policy() -> None:
    with pytest.raises(ValueError):
        BucketPolicy(rate_per_s=0, burst=1)
    with pytest.raises(ValueError):
        BucketPolicy(rate_per_s=1, burst=0.5)


def test_limiter_separates_clients_and_is_bounded() -> None:
    limiter = RateLimiter(BucketPolicy(rate_per_s=0.1, burst=1), max_clients=100)
    assert limiter.check("10.0.0.1", T0).allowed
    assert not limiter.check("10.0.0.1", T0).allowed
    assert limiter.check("10.0.0.2", T0).allowed
    for i in range(500):
        limiter.check(f"192.0.2.{i}", T0)
    assert len(limiter) == 100
    assert limiter.check("10.0.0.1", T0).allowed  # evicted: comes back with a full bucket


@pytest.mark.parametrize(("wait_s", "header"), [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (59.5, "60")])
def test_retry_after_rounds_up(wait_s: float, header: str) -> None:
    assert retry_after_header(wait_s) == header
