"""Small helpers shared by the origin's HTTP routes: bearer credentials and bounded request bodies."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from origin.errors import AuthError, ValidationError


class BodyTooLargeError(ValidationError):
    status_code = 413


def check_bearer(
    authorization: str | None, expected: str, *, what: str, room: str | None = None, disabled_hint: str = ""
) -> None:
    """`Authorization: Bearer <expected>` or AuthError: 401 when missing, 403 when wrong or disabled.

    Compared in constant time. An empty `expected` means the endpoint is disabled.
    """
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(f"missing {what} credentials: send Authorization: Bearer <{what} token>", room=room)
    if not expected:
        err = AuthError(f"{what} endpoints are disabled{disabled_hint}", room=room)
        err.status_code = 403
        raise err
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        err = AuthError(f"{what} token rejected", room=room)
        err.status_code = 403
        raise err


async def read_capped(request: Request, cap: int, what: str) -> bytes:
    """The whole request body (chunked or not), refusing with 413 as soon as it exceeds `cap` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        raise BodyTooLargeError(f"{what} of {declared} bytes exceeds the {cap}-byte cap")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > cap:
            raise BodyTooLargeError(f"{what} exceeds the {cap}-byte cap")
        chunks.append(chunk)
    return b"".join(chunks)
