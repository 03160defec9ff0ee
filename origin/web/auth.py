"""Credentials and bounded bodies, shared by every route: checked before a body is read or parsed.

`Authorization: Bearer <token>`: the scheme is case-insensitive (RFC 7235 §2.1); a missing header, another
scheme or an empty token is 401; a wrong token (or a disabled endpoint) is 403. Tokens are compared in
constant time and never logged.
"""

from __future__ import annotations

import hmac
import logging

from starlette.requests import ClientDisconnect, Request

from origin.errors import AuthError, BodyTooLargeError, ForbiddenError, ValidationError

log = logging.getLogger(__name__)


def bearer_token(authorization: str | None, *, what: str, room: str | None = None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(f"missing {what} credentials: send Authorization: Bearer <{what} token>", room=room)
    return token


def check_bearer(
    authorization: str | None, expected: str, *, what: str, room: str | None = None, disabled_hint: str = ""
) -> None:
    """`Authorization: Bearer <expected>` or AuthError (401) / ForbiddenError (403). Empty `expected`: disabled."""
    token = bearer_token(authorization, what=what, room=room)
    if not expected:
        raise ForbiddenError(f"{what} endpoints are disabled{disabled_hint}", room=room)
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ForbiddenError(f"{what} token rejected", room=room)


class ClientGoneError(ValidationError):
    """The client closed the connection before its body was complete (nothing was stored)."""


async def read_capped(request: Request, cap: int, what: str) -> bytes:
    """The whole request body (chunked or not), refusing with 413 as soon as it exceeds `cap` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isascii() or not declared.isdigit() or int(declared) > cap):
        raise BodyTooLargeError(f"{what} of {declared[:20]} bytes exceeds the {cap}-byte cap")
    chunks: list[bytes] = []
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > cap:
                raise BodyTooLargeError(f"{what} exceeds the {cap}-byte cap")
            chunks.append(chunk)
    except ClientDisconnect:
        log.info("%s upload aborted by the client after %d bytes", what, total)
        raise ClientGoneError(f"{what}: the client went away before the body was complete") from None
    return b"".join(chunks)
