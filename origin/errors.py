"""Exception hierarchy of the origin.

OriginError
├── ValidationError      bad external input (room id, path part, body); maps to 400
│   └── BodyTooLargeError  a body over its cap; maps to 413
├── AuthError            missing credentials; maps to 401
│   └── ForbiddenError   wrong credentials, or the endpoint is disabled; maps to 403
├── StorageError         a storage backend failed (after its own retries); carries key and backend; maps to 503
├── StateError           the room state cannot accept the operation (e.g. room ended); maps to 409
│   └── GoneError        what was asked for existed and has ended (a seat's lease); maps to 410
├── NotFoundError        the room / lease / object does not exist; maps to 404
├── RateLimitedError     a client went over its rate; maps to 429 with Retry-After (seconds)
├── UnsupportedError     a valid request for something not implemented (an oEmbed format); maps to 501
└── UnavailableError     the origin cannot take this now (retry backlog full); maps to 503
    └── OwnershipLostError  a room's publisher was superseded (its lease lapsed): its writes are refused

The statuses are the web layer's (origin/web/errors.py STATUSES, the one mapper); these classes know no HTTP.
"""

from __future__ import annotations


class OriginError(Exception):
    """Root of every error the origin raises on purpose."""

    def __init__(self, message: str, *, room: str | None = None) -> None:
        super().__init__(message)
        self.room = room


class ValidationError(OriginError):
    """Bad external input (room id, path part, body)."""


class AuthError(OriginError):
    """Missing credentials."""


class BodyTooLargeError(ValidationError):
    """A body over its cap."""


class ForbiddenError(AuthError):
    """Wrong credentials, or the endpoint is disabled."""


class StateError(OriginError):
    """The room's state cannot accept the operation (e.g. the room ended)."""


class GoneError(StateError):
    """It existed and has ended (a seat's lease: join again)."""


class NotFoundError(OriginError):
    """The room, lease or object does not exist."""


class UnsupportedError(OriginError):
    """A valid request for something this origin does not implement (oEmbed: a format other than json)."""


class RateLimitedError(OriginError):
    """A client went over its rate; `retry_after_s` says when to come back."""

    def __init__(self, message: str, *, retry_after_s: float, room: str | None = None) -> None:
        super().__init__(message, room=room)
        self.retry_after_s = retry_after_s


class UnavailableError(OriginError):
    """The origin cannot take this now (e.g. the storage retry backlog is full); maps to 503."""


class StorageError(OriginError):
    def __init__(self, message: str, *, key: str, backend: str, retryable: bool = True) -> None:
        super().__init__(f"{backend}: {message} (key={key})")
        self.key = key
        self.backend = backend
        self.retryable = retryable


class OwnershipLostError(UnavailableError):
    """This process no longer owns the room: another owner took it (fencing token superseded), or its lease
    lapsed. Raised where the write happens (journal append, playlist write); the publisher drops the room."""
