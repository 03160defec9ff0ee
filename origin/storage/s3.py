"""S3 storage (AWS S3, Cloudflare R2, MinIO, GCS interop) through one shared, thread-safe boto3 client.

Credentials come from boto3's standard chain (environment, shared config/profile, container or instance
role); settings never carry keys. Every put sends Content-Type and Cache-Control from origin.contract.cache_policy and,
when configured, a canned ACL (`public-read` for a public bucket; none behind CloudFront OAC).

Retries are ours, not botocore's: botocore makes exactly one attempt per call, and RetryingCalls (s3_calls.py)
retries it with capped exponential backoff and full jitter (origin/storage/retry.py) on throttling, 5xx, timeouts and
connection errors. Other 4xx are not retried. Each failed attempt is logged (WARNING, with the key) and
reported to `on_error(backend, kind)` with kind an ErrorClass value ("throttle", "server", "timeout",
"connection", "client", "other") — wire it to a Prometheus counter. Once attempts run out the call raises
StorageError(key=..., backend="s3", retryable=...).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from origin.contract.cache_policy import ObjectHeaders
from origin.errors import StorageError, ValidationError
from origin.storage.keys import validate_key, validate_prefix
from origin.storage.retry import RetryPolicy
from origin.storage.s3_calls import (
    BACKEND,
    AddressingStyle,
    ErrorCallback,
    RetryingCalls,
    classify_exception,
    make_client,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 2.0
DEFAULT_READ_TIMEOUT_S = 5.0  # a 2 s segment that takes longer than this is better retried
DEFAULT_MAX_ATTEMPTS = 4
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# A conditional PUT that lost: 412 (the ETag differs, or the key exists for If-None-Match), 404 (If-Match on a
# missing key), 409 (S3's ConditionalRequestConflict: another conditional write to the key is in flight).
_CONDITION_LOST = frozenset({412, 404, 409})

__all__ = ["ErrorCallback", "PreconditionFailedError", "S3Storage", "classify_exception", "normalize_prefix"]


class PreconditionFailedError(StorageError):
    """A conditional write found the object changed (or present, or absent): never retried by the backend."""


def _is_not_found(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = exc.response.get("Error", {}).get("Code")
    return status == 404 and code in _NOT_FOUND_CODES


def normalize_prefix(prefix: str) -> str:
    """'' stays ''; 'a/b', '/a/b/' become 'a/b/'. Raises ValidationError for anything not key-like."""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    try:
        validate_key(stripped)
    except ValidationError as exc:
        raise ValidationError(f"invalid S3 prefix {prefix!r}: {exc}") from exc
    return stripped + "/"


class S3Storage:
    """`Storage` on an S3 bucket. Synchronous and safe to share between threads."""

    name = BACKEND

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        acl: str | None = None,
        addressing_style: AddressingStyle = "auto",
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        retry_policy: RetryPolicy | None = None,
        on_error: ErrorCallback | None = None,
        client: S3Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] | None = None,
    ) -> None:
        if not bucket:
            raise ValidationError("S3 bucket name is empty")
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self.acl = acl or None
        self.policy = retry_policy if retry_policy is not None else RetryPolicy(max_attempts=max_attempts)
        self._call = RetryingCalls(policy=self.policy, on_error=on_error, sleep=sleep,
                                   rand=rand if rand is not None else random.Random().random)  # fmt: skip
        self._client: S3Client = client if client is not None else make_client(
            region=region, endpoint_url=endpoint_url, addressing_style=addressing_style,
            connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s)  # fmt: skip

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    @property
    def client(self) -> S3Client:
        return self._client

    def full_key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    # -- Storage protocol ----------------------------------------------------------------------------

    def _put_args(self, key: str, headers: ObjectHeaders) -> dict[str, Any]:
        """What every PUT of `key` sends besides its body: the full key, the cache policy's headers, the ACL."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.full_key(key), "ContentType": headers.content_type,
                                "CacheControl": headers.cache_control}  # fmt: skip
        if self.acl:
            args["ACL"] = self.acl
        return args

    def put(self, key: str, data: bytes, headers: ObjectHeaders, *, durable: bool = True) -> None:
        """S3 makes every successful PUT durable; `durable` only matters to the filesystem backend."""
        args = self._put_args(key, headers)
        body = bytes(data)

        def op() -> None:
            self._client.put_object(Body=body, **args)

        self._call("put", key, op)

    def put_conditional(
        self, key: str, data: bytes, headers: ObjectHeaders, *, if_match: str | None = None, if_absent: bool = False
    ) -> str:
        """PUT only if the object's ETag is `if_match`, or (`if_absent`) no object exists; returns the new ETag.

        S3 checks the condition atomically with the write (If-Match / If-None-Match: *; AWS since 2024, R2,
        MinIO, moto). Raises PreconditionFailedError when the condition fails, StorageError otherwise.
        """
        if (if_match is None) == (not if_absent):
            raise ValueError("exactly one of if_match and if_absent")
        args = self._put_args(key, headers)
        args.update({"IfMatch": if_match} if if_match is not None else {"IfNoneMatch": "*"})
        body = bytes(data)

        def op() -> str:
            try:
                resp = self._client.put_object(Body=body, **args)
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status in _CONDITION_LOST:
                    raise PreconditionFailedError(f"conditional put lost ({status})", key=key, backend=BACKEND,
                                                  retryable=False) from exc  # fmt: skip
                raise
            return resp["ETag"]

        return self._call("put_conditional", key, op)

    def _head(self, op: str, key: str) -> dict[str, Any] | None:
        """head_object's answer, None when the object is absent (a 404)."""
        full = self.full_key(key)

        def head() -> dict[str, Any] | None:
            try:
                return dict(self._client.head_object(Bucket=self.bucket, Key=full))
            except ClientError as exc:
                if _is_not_found(exc):
                    return None
                raise

        return self._call(op, key, head)

    def etag(self, key: str) -> str | None:
        """The object's ETag (a conditional write's `if_match`), None when absent."""
        resp = self._head("etag", key)
        return None if resp is None else str(resp["ETag"])

    def put_file(self, key: str, source: Path, headers: ObjectHeaders) -> None:
        """One PUT streamed from the file (a multi-hour replay download is hundreds of MB: never in memory)."""
        args = self._put_args(key, headers)
        size = source.stat().st_size  # FileNotFoundError if missing

        def op() -> None:
            with source.open("rb") as body:  # reopened per attempt: a retry starts from the first byte
                self._client.put_object(Body=body, ContentLength=size, **args)

        self._call("put_file", key, op)

    def sync(self) -> None:
        """Every successful PUT is already durable in S3."""

    def delete(self, key: str) -> None:
        full = self.full_key(key)

        def op() -> None:
            self._client.delete_object(Bucket=self.bucket, Key=full)

        self._call("delete", key, op)

    def get(self, key: str) -> bytes:
        full = self.full_key(key)

        def op() -> bytes:
            try:
                resp = self._client.get_object(Bucket=self.bucket, Key=full)
            except ClientError as exc:
                if _is_not_found(exc):
                    raise KeyError(key) from None
                raise
            return resp["Body"].read()

        return self._call("get", key, op)

    def exists(self, key: str) -> bool:
        """head_object: 404 is False. A 403 raises StorageError (S3 answers 403 for a missing key when the
        credentials lack s3:ListBucket: grant it, or exists() cannot tell absent from forbidden)."""
        return self._head("exists", key) is not None

    def get_headers(self, key: str) -> ObjectHeaders:
        """Stored Content-Type/Cache-Control of `key`. Raises KeyError if absent."""
        resp = self._head("get_headers", key)
        if resp is None:
            raise KeyError(key)
        return ObjectHeaders(content_type=resp.get("ContentType", ""), cache_control=resp.get("CacheControl", ""))

    def list(self, prefix: str) -> list[str]:
        full_prefix = self.prefix + validate_prefix(prefix)
        strip = len(self.prefix)

        def op() -> list[str]:
            keys: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                for obj in page.get("Contents", []):
                    key = obj["Key"][strip:]
                    try:
                        keys.append(validate_key(key))
                    except ValidationError:
                        logger.debug("s3 list %s: skipping foreign object %r", prefix, obj["Key"])
            keys.sort()
            return keys

        return self._call("list", prefix or "(all)", op)

    def check(self) -> None:
        """Readiness: one head_bucket attempt (the prober repeats); raises StorageError on failure."""

        def op() -> None:
            self._client.head_bucket(Bucket=self.bucket)

        self._call("check", f"s3://{self.bucket}/{self.prefix}", op, max_attempts=1)
