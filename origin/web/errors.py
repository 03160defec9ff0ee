"""The one error shape of every origin endpoint, and the one place exceptions become HTTP responses.

    {"error": "<code>", "detail": <human-readable message, or an object with more>}

Codes by status: 400 invalid_request, 401 unauthorized, 403 forbidden, 404 not_found, 405
method_not_allowed, 409 conflict, 410 lease_ended, 413 body_too_large, 415 unsupported_media_type, 416
range_not_satisfiable, 429 rate_limited, 500 internal, 501 not_implemented, 503 unavailable. 401 carries
`WWW-Authenticate: Bearer`, 429 and 503 carry `Retry-After` (seconds). Which error is which status: STATUSES
below, and nowhere else.
Request validation (a bad body, query or path value) is always 400, never FastAPI's 422.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from origin.errors import (
    AuthError,
    BodyTooLargeError,
    ForbiddenError,
    GoneError,
    NotFoundError,
    OriginError,
    RateLimitedError,
    StateError,
    StorageError,
    UnavailableError,
    UnsupportedError,
    ValidationError,
)

log = logging.getLogger(__name__)

CODES: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "lease_ended",
    413: "body_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    429: "rate_limited",
    500: "internal",
    501: "not_implemented",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    """The body of every 4xx/5xx answer (OpenAPI: components/schemas/ErrorBody)."""

    error: str
    detail: object


# The origin's errors as HTTP statuses: the first class the error is an instance of wins (subclasses first).
STATUSES: tuple[tuple[type[OriginError], int], ...] = (
    (BodyTooLargeError, 413), (ValidationError, 400), (ForbiddenError, 403), (AuthError, 401), (GoneError, 410),
    (StateError, 409), (NotFoundError, 404), (RateLimitedError, 429), (UnsupportedError, 501),
    (UnavailableError, 503), (StorageError, 503),
)  # fmt: skip


def status_of(exc: OriginError) -> int:
    return next((status for cls, status in STATUSES if isinstance(exc, cls)), 500)


def error_response(status: int, detail: object, *, headers: dict[str, str] | None = None) -> JSONResponse:
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    if status == 503:
        headers.setdefault("Retry-After", "1")
    return JSONResponse({"error": CODES.get(status, "error"), "detail": detail}, status_code=status, headers=headers)


def origin_error_response(exc: OriginError) -> JSONResponse:
    status = status_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    if status >= 500:
        log.error("room=%s %s", exc.room, exc)
    else:
        log.info("room=%s refused (%d): %s", exc.room, status, exc)
    detail: object = getattr(exc, "detail", None) or str(exc)
    return error_response(status, detail, headers=headers)


def validation_detail(errors: list[dict[str, object]] | object) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for e in errors if isinstance(errors, list) else []:
        if isinstance(e, dict):
            loc = e.get("loc", ())
            out.append({"loc": list(loc) if isinstance(loc, list | tuple) else [], "msg": str(e.get("msg", ""))})
    return out


ErrorHook = Callable[[Request, int], None]  # (request, status) of every error answer the handlers give


def response_for(request: Request, exc: Exception) -> JSONResponse:
    """The answer to any exception a request raised: the one mapping, for the installed handlers and for the
    routes served outside FastAPI's routing (web/ingest.py IngestFastPath)."""
    if isinstance(exc, OriginError):
        return origin_error_response(exc)
    if isinstance(exc, RequestValidationError | PydanticValidationError):
        return error_response(400, validation_detail(list(exc.errors())))
    if isinstance(exc, StarletteHTTPException):
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request, headers.get("Allow", ""))
        return error_response(exc.status_code, str(exc.detail), headers=headers)
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error")


def install(app: FastAPI, *, on_error: ErrorHook | None = None) -> None:
    """Register the handlers: OriginError, request validation, routing errors (404/405), anything else (500).

    `on_error` sees every error answer given here (e.g. to count ingest refusals by code); it must be cheap.
    """

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        response = response_for(request, exc)
        if on_error is not None:
            on_error(request, response.status_code)
        return response

    for kind in (OriginError, RequestValidationError, PydanticValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, handle)


def allowed_methods(request: Request, starlette_allow: str) -> str:
    """Every method served at this path. Starlette's own 405 names only the first matching route's methods
    (`Allow: PUT` for /v1/rooms/{room}, which has GET and DELETE too): add what the OpenAPI document lists
    for the path template that matches (every route with siblings at its path is documented)."""
    methods = {m.strip().upper() for m in starlette_allow.split(",") if m.strip()}
    for template, ops in request.app.openapi().get("paths", {}).items():
        patterns = tuple(sorted({(p["name"], p.get("schema", {}).get("pattern", "")) for op in ops.values()
                                 for p in op.get("parameters", []) if p.get("in") == "path"}))  # fmt: skip
        if _template_regex(template, patterns).fullmatch(request.url.path):
            methods |= {m.upper() for m in ops}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


@functools.lru_cache(maxsize=256)
def _template_regex(template: str, patterns: tuple[tuple[str, str], ...] = ()) -> re.Pattern[str]:
    """The template's paths: each `{param}` as its documented pattern (a wave's `{name}` is a segment name, so
    `…/start` is not one), else any one path segment."""
    known = {name: pattern.removeprefix("^").removesuffix("$") for name, pattern in patterns if pattern}

    def param(match: re.Match[str]) -> str:
        return f"(?:{known.get(match.group(1), '[^/]+')})"

    return re.compile(re.sub(r"\\\{([^}/]+)\\\}", param, re.escape(template)))


# OpenAPI: the error responses every route may give (merged into each route's `responses`).
def responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    return {s: {"model": ErrorBody, "description": CODES.get(s, "error")} for s in statuses}
