"""The S3 backend's I/O plumbing: one boto3 client configured for one attempt per call, botocore exceptions
mapped onto the retry policy's error classes, and the retry loop every S3 call goes through."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from origin.errors import StorageError
from origin.storage.base import given_up
from origin.storage.retry import ErrorClass, RetryPolicy, classify_response, next_delay

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger("origin.storage.s3")

BACKEND = "s3"
MAX_POOL_CONNECTIONS = 50  # one client is shared by every worker thread of an origin process

T = TypeVar("T")
ErrorCallback = Callable[[str, str], None]
AddressingStyle = Literal["auto", "virtual", "path"]


def classify_exception(exc: BaseException) -> ErrorClass:
    """Map a botocore exception to its ErrorClass (the I/O half of the retry policy)."""
    if isinstance(exc, ClientError):
        meta = exc.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        code = exc.response.get("Error", {}).get("Code")
        return classify_response(status, code)
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return ErrorClass.TIMEOUT
    if isinstance(exc, BotoConnectionError | HTTPClientError | IncompleteReadError):
        return ErrorClass.CONNECTION
    return ErrorClass.OTHER


def make_client(*, region: str | None, endpoint_url: str | None, addressing_style: AddressingStyle,
                connect_timeout_s: float, read_timeout_s: float) -> S3Client:  # fmt: skip
    config = Config(
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        retries={"total_max_attempts": 1, "mode": "standard"},  # one try per call; RetryingCalls retries
        max_pool_connections=MAX_POOL_CONNECTIONS,
        s3={"addressing_style": addressing_style},
        # Checksums only where S3 requires them: R2, GCS interop and older MinIO reject the
        # CRC headers / aws-chunked bodies newer botocore sends by default.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    # A Session of our own: boto3's default session is not safe to create clients from concurrently.
    session = boto3.session.Session(region_name=region)
    return session.client("s3", endpoint_url=endpoint_url or None, config=config)


@dataclass(frozen=True, kw_only=True)
class RetryingCalls:
    """Runs one S3 call with capped exponential backoff and full jitter; every failed attempt is logged and
    reported to `on_error(backend, kind)`; a call abandoned by a hedge is never sent again."""

    policy: RetryPolicy
    on_error: ErrorCallback | None
    sleep: Callable[[float], None]
    rand: Callable[[], float]

    def __call__(self, op: str, key: str, fn: Callable[[], T], *, max_attempts: int | None = None) -> T:
        limit = self.policy.max_attempts if max_attempts is None else max_attempts
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except (ClientError, BotoCoreError) as exc:
                error = classify_exception(exc)
                if self.on_error is not None:
                    self.on_error(BACKEND, error.value)
                delay = next_delay(self.policy, attempt=attempt, error=error, rand=self.rand())
                if attempt >= limit or given_up():  # abandoned by a hedge: never send it again
                    delay = None
                if delay is None:
                    logger.warning("s3 %s %s failed (%s: %s) after %d attempt(s); giving up", op, key, error.value,
                                   exc, attempt)  # fmt: skip
                    raise StorageError(f"{op} failed after {attempt} attempt(s) ({error.value}): {exc}", key=key,
                                       backend=BACKEND, retryable=error.retryable) from exc  # fmt: skip
                logger.warning("s3 %s %s failed (%s: %s), attempt %d/%d; retrying in %.3fs", op, key, error.value,
                               exc, attempt, limit, delay)  # fmt: skip
                self.sleep(delay)
                if given_up():
                    raise StorageError(f"{op} abandoned by its caller", key=key, backend=BACKEND) from exc
