"""Pure unit tests of the storage retry policy (no I/O, no clock, no randomness)."""

from __future__ import annotations

import pytest

from origin.storage.retry import ErrorClass, RetryPolicy, classify_response, next_delay, worst_case_sleep_s

POLICY = RetryPolicy(max_attempts=5, base_delay_s=0.1, throttle_base_delay_s=0.4, max_delay_s=1.0)
ALMOST_ONE = 1.0 - 1e-9


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (503, "SlowDown", ErrorClass.THROTTLE),
        (503, "503", ErrorClass.SERVER),
        (503, "ServiceUnavailable", ErrorClass.SERVER),
        (500, "InternalError", ErrorClass.SERVER),
        (502, None, ErrorClass.SERVER),
        (429, "TooManyRequests", ErrorClass.THROTTLE),
        (429, None, ErrorClass.THROTTLE),
        (400, "Throttling", ErrorClass.THROTTLE),
        (400, "RequestTimeout", ErrorClass.SERVER),  # S3 answers a stalled upload body with 400 RequestTimeout
        (400, "InvalidArgument", ErrorClass.CLIENT),
        (403, "AccessDenied", ErrorClass.CLIENT),
        (404, "NoSuchBucket", ErrorClass.CLIENT),
        (None, None, ErrorClass.OTHER),
        (301, "PermanentRedirect", ErrorClass.OTHER),
    ],
)
def test_classify_response(status: int | None, code: str | None, expected: ErrorClass) -> None:
    assert classify_response(status, code) is expected


def test_retryable_classes() -> None:
    assert {c for c in ErrorClass if c.retryable} == {
        ErrorClass.THROTTLE,
        ErrorClass.SERVER,
        ErrorClass.TIMEOUT,
        ErrorClass.CONNECTION,
    }


@pytest.mark.parametrize("error", [ErrorClass.SERVER, ErrorClass.TIMEOUT, ErrorClass.CONNECTION])
def test_capped_exponential_ceiling(error: ErrorClass) -> None:
    ceilings = [next_delay(POLICY, attempt=a, error=error, rand=ALMOST_ONE) for a in range(1, 5)]
    assert ceilings == pytest.approx([0.1, 0.2, 0.4, 0.8])
    big = RetryPolicy(max_attempts=20, base_delay_s=0.1, max_delay_s=1.0)
    assert next_delay(big, attempt=19, error=error, rand=ALMOST_ONE) == pytest.approx(1.0)


def test_full_jitter_scales_with_rand() -> None:
    assert next_delay(POLICY, attempt=3, error=ErrorClass.SERVER, rand=0.0) == 0.0
    assert next_delay(POLICY, attempt=3, error=ErrorClass.SERVER, rand=0.25) == pytest.approx(0.1)
    assert next_delay(POLICY, attempt=3, error=ErrorClass.SERVER, rand=0.5) == pytest.approx(0.2)


def test_throttling_backs_off_harder() -> None:
    delays = [next_delay(POLICY, attempt=a, error=ErrorClass.THROTTLE, rand=0.5) for a in range(1, 5)]
    assert delays == pytest.approx([0.2, 0.4, 0.5, 0.5])  # 0.4 * 2**n / 2, capped at 1.0 / 2


def test_gives_up_after_max_attempts() -> None:
    assert next_delay(POLICY, attempt=4, error=ErrorClass.SERVER, rand=0.5) is not None
    assert next_delay(POLICY, attempt=5, error=ErrorClass.SERVER, rand=0.5) is None
    assert next_delay(RetryPolicy(max_attempts=1), attempt=1, error=ErrorClass.SERVER, rand=0.5) is None


@pytest.mark.parametrize("error", [ErrorClass.CLIENT, ErrorClass.OTHER])
def test_never_retries_client_errors(error: ErrorClass) -> None:
    assert next_delay(POLICY, attempt=1, error=error, rand=0.5) is None


def test_worst_case_sleep() -> None:
    assert worst_case_sleep_s(POLICY, error=ErrorClass.SERVER) == pytest.approx(0.1 + 0.2 + 0.4 + 0.8)
    assert worst_case_sleep_s(POLICY, error=ErrorClass.THROTTLE) == pytest.approx(0.4 + 0.8 + 1.0 + 1.0)
    assert worst_case_sleep_s(POLICY, error=ErrorClass.CLIENT) == 0.0


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay_s=-1)
    with pytest.raises(ValueError):
        next_delay(POLICY, attempt=0, error=ErrorClass.SERVER, rand=0.5)
    with pytest.raises(ValueError):
        next_delay(POLICY, attempt=1, error=ErrorClass.SERVER, rand=1.0)
