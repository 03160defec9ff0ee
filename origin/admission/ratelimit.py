"""Token bucket per client address for the join endpoint (pure logic; time passed in).

Each origin worker keeps its own buckets in memory, so a client can reach `workers × rate` joins per minute
across a gunicorn pool and `instances × workers × rate` across instances. That is deliberate: the limit is
a guard against a single client hammering the endpoint, not a quota, and keeping it out of Redis/SQLite keeps
rejected requests free of backend round trips. Memory is bounded (least recently seen clients are evicted;
an evicted client comes back with a full bucket).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

DEFAULT_MAX_CLIENTS = 100_000


@dataclass(frozen=True, kw_only=True)
class BucketPolicy:
    rate_per_s: float  # refill rate
    burst: float  # bucket size: attempts allowed back to back

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst < 1:
            raise ValueError(f"need rate_per_s > 0 and burst >= 1, got {self.rate_per_s}, {self.burst}")

    @classmethod
    def per_minute(cls, attempts: int) -> BucketPolicy:
        """`attempts` back to back, then one every 60/attempts seconds."""
        return cls(rate_per_s=attempts / 60.0, burst=float(attempts))


@dataclass(frozen=True, kw_only=True)
class Bucket:
    tokens: float
    updated_at: float


@dataclass(frozen=True, kw_only=True)
class Take:
    allowed: bool
    bucket: Bucket
    retry_after_s: float  # 0 when allowed; else when one token will be there


def take(bucket: Bucket | None, policy: BucketPolicy, now: float, *, cost: float = 1.0) -> Take:
    """Refill `bucket` up to `now` and try to take `cost` tokens. A clock going backwards refills nothing."""
    if bucket is None:
        bucket = Bucket(tokens=policy.burst, updated_at=now)
    elapsed = max(0.0, now - bucket.updated_at)
    tokens = min(policy.burst, bucket.tokens + elapsed * policy.rate_per_s)
    updated_at = max(now, bucket.updated_at)
    if tokens >= cost:
        return Take(allowed=True, bucket=Bucket(tokens=tokens - cost, updated_at=updated_at), retry_after_s=0.0)
    wait_s = (cost - tokens) / policy.rate_per_s
    return Take(allowed=False, bucket=Bucket(tokens=tokens, updated_at=updated_at), retry_after_s=wait_s)


def retry_after_header(wait_s: float) -> str:
    """HTTP Retry-After is whole seconds (RFC 9110 §10.2.3); round up so a client never comes back early."""
    return str(max(1, math.ceil(wait_s)))


class RateLimiter:
    """Buckets of many clients in one worker's memory, bounded to `max_clients` (LRU eviction)."""

    def __init__(self, policy: BucketPolicy, *, max_clients: int = DEFAULT_MAX_CLIENTS) -> None:
        self.policy = policy
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def check(self, client: str, now: float) -> Take:
        result = take(self._buckets.get(client), self.policy, now)
        self._buckets[client] = result.bucket
        self._buckets.move_to_end(client)
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        return result

    def __len__(self) -> int:
        return len(self._buckets)
