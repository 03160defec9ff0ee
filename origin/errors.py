"""Exception hierarchy of the origin.

OriginError
├── ValidationError      bad external input (room id, path part, body); maps to 400
│   └── BodyTooLargeError  a body over its cap; maps to 413
├── AuthError            missing credentials; maps to 401
│   └── ForbiddenError   wrong credentials, or the endpoint is disabled; maps to 403
├── StorageError         a storage backend failed (after its own retries); carries key and backend
├── StateError           the room state cannot accept the operation (e.g. room ended); maps to 409
├── NotFoundError        the room / lease / object does not exist; maps to 404
├── RateLimitedError     a client went over its rate; maps to 429 with Retry-After (seconds)
└── UnavailableError     the origin cannot take this now (retry backlog full); maps to 503
    └── OwnershipLostError  a room's publisher was superseded (its lease lapsed): its writes are refused
"""

from __future__ import annotations


class OriginError(Exception):
    """Root of every error the origin raises on purpose."""

    def __init__(self, message: str, *, room: str | None = None) -> None:
        super().__init__(message)
        self.room = room


class ValidationError(OriginError):
    status_code = 400


class AuthError(OriginError):
    status_code = 401


class BodyTooLargeError(ValidationError):
    status_code = 413


class ForbiddenError(AuthError):
    status_code = 403


class StateError(OriginError):
    status_code = 409


class NotFoundError(OriginError):
    status_code = 404


class RateLimitedError(OriginError):
    status_code = 429

    def __init__(self, message: str, *, retry_after_s: float, room: str | None = None) -> None:
        super().__init__(message, room=room)
        self.retry_after_s = retry_after_s


class UnavailableError(OriginError):
    """The origin cannot take this now (e.g. the storage retry backlog is full); maps to 503."""

    status_code = 503


class StorageError(OriginError):
    def __init__(self, message: str, *, key: str, backend: str, retryable: bool = True) -> None:
        super().__init__(f"{backend}: {message} (key={key})")
        self.key = key
        self.backend = backend
        self.retryable = retryable


class OwnershipLostError(UnavailableError):
    """This process no longer owns the room: another owner took it (fencing token superseded), or its lease
    lapsed. Raised where the write happens (journal append, playlist write); the publisher drops the room."""
