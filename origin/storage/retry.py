"""Retry policy for object-storage calls (pure: no I/O, no clock, no randomness of its own).

The S3 backend classifies each failed attempt into an `ErrorClass`, then asks `next_delay` whether to try
again and how long to sleep first. The caller passes in the attempt number and a uniform random value in
[0, 1), so the policy is deterministic under test.

Backoff is capped exponential with *full jitter* (AWS Architecture Blog, "Exponential Backoff And Jitter"):
    delay = rand * min(max_delay_s, base * 2 ** (attempt - 1))
Throttling (SlowDown, 429, ...) uses a larger base, as S3 asks clients to back off harder.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ErrorClass(enum.Enum):
    THROTTLE = "throttle"  # SlowDown, 429, RequestLimitExceeded ...: retry with a longer backoff
    SERVER = "server"  # 5xx, InternalError, RequestTimeout (S3's 400 for a slow request body): retry
    TIMEOUT = "timeout"  # connect or read timeout on our side: retry
    CONNECTION = "connection"  # refused, reset, closed without a response: retry
    CLIENT = "client"  # any other 4xx (403, 400, 404 where unexpected ...): never retried
    OTHER = "other"  # anything unclassified (bad parameters, no credentials): never retried

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE


_RETRYABLE = frozenset({ErrorClass.THROTTLE, ErrorClass.SERVER, ErrorClass.TIMEOUT, ErrorClass.CONNECTION})

# Error codes S3 and S3-compatible stores (R2, MinIO, GCS interop) use for "slow down".
THROTTLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "TooManyRequestsException",
        "BandwidthLimitExceeded",
        "ProvisionedThroughputExceededException",
        "EC2ThrottledException",
    }
)
# Codes that are transient although their HTTP status may be 4xx.
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "ServiceUnavailable",
    }
)


def classify_response(status: int | None, code: str | None) -> ErrorClass:
    """Class of an error *response* (the server answered) from its HTTP status and error code."""
    if code in THROTTLE_CODES or status == 429:
        return ErrorClass.THROTTLE
    if code in TRANSIENT_CODES:
        return ErrorClass.SERVER
    if status is not None and 500 <= status <= 599:
        return ErrorClass.SERVER
    if status is not None and 400 <= status <= 499:
        return ErrorClass.CLIENT
    return ErrorClass.OTHER


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 4  # total attempts, the first one included
    base_delay_s: float = 0.05
    throttle_base_delay_s: float = 0.25
    max_delay_s: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if min(self.base_delay_s, self.throttle_base_delay_s, self.max_delay_s) < 0:
            raise ValueError("delays must be >= 0")


def next_delay(policy: RetryPolicy, *, attempt: int, error: ErrorClass, rand: float) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None to give up.

    `attempt` is the 1-based number of the attempt that just failed; `rand` is uniform in [0, 1).
    """
    if attempt < 1:
        raise ValueError(f"attempt is 1-based, got {attempt}")
    if not 0.0 <= rand < 1.0:
        raise ValueError(f"rand must be in [0, 1), got {rand}")
    if not error.retryable or attempt >= policy.max_attempts:
        return None
    base = policy.throttle_base_delay_s if error is ErrorClass.THROTTLE else policy.base_delay_s
    ceiling = min(policy.max_delay_s, base * 2.0 ** min(attempt - 1, 62))
    return rand * ceiling


def worst_case_sleep_s(policy: RetryPolicy, *, error: ErrorClass) -> float:
    """Upper bound of the total backoff sleep across all attempts (for timeouts and tests)."""
    total = 0.0
    for attempt in range(1, policy.max_attempts):
        delay = next_delay(policy, attempt=attempt, error=error, rand=1.0 - 1e-12)
        if delay is None:
            break
        total += delay
    return total
