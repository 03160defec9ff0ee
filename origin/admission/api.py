"""HTTP edge of admission: `build_router(deps)` and `build_admission(settings, storage, broadcast_view)`.

    PUT    /v1/rooms/{room}                               admin: create or replace a room
    GET    /v1/rooms/{room}                               admin: the room with live counts
    POST   /v1/rooms/{room}/listeners                     public, rate limited: a seat or HLS
    POST   /v1/rooms/{room}/listeners/{lease}/heartbeat   renew a seat (404 unknown, 410 ended)
    DELETE /v1/rooms/{room}/listeners/{lease}             free a seat

Errors are JSON `{"error": <code>, "detail": <message or object>}` with a 4xx/5xx status, produced here
(by the routes' own class) so they do not depend on the app's exception handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from origin import ids
from origin.admission import status
from origin.admission.backend import AdmissionBackend
from origin.admission.clock import Clock, wall_clock
from origin.admission.decision import HINT_MAX_S, FullHint
from origin.admission.models import MAX_BODY_BYTES, RoomBody
from origin.admission.publisher import StatusPublisher
from origin.admission.ratelimit import BucketPolicy, RateLimiter, retry_after_header
from origin.admission.seat_token import MIN_SECRET_BYTES
from origin.admission.service import AdmissionService, HlsReferral, JoinAnswer, RoomSpec, RoomView, SeatGrant
from origin.admission.sfu.factory import build_sfu
from origin.admission.sfu.gate import SeatGate
from origin.admission.status import BroadcastView
from origin.errors import OriginError, RateLimitedError, StorageError, ValidationError
from origin.http_edge import check_bearer, read_capped
from origin.rooms import RoomRegistry
from origin.settings import Settings
from origin.storage.base import Storage

logger = logging.getLogger(__name__)

SECRET_FILE_NAME = "seat-token.secret"


@dataclass(kw_only=True)
class AdmissionDeps:
    rooms: RoomRegistry
    backend: AdmissionBackend
    publisher: StatusPublisher
    storage: Storage
    broadcasts: BroadcastView
    seat_token_secret: bytes
    admin_token: str  # empty: admin endpoints answer 403
    public_base_url: str
    api_url: str
    lease_s: float
    join_rate_per_minute: int
    clock: Clock = wall_clock
    hint_ttl_s: float = HINT_MAX_S
    gate: SeatGate | None = None  # the SFU that enforces seats (origin/admission/sfu/gate.py)
    run_publisher: bool = True  # flush status.json periodically in the router's lifespan
    close_backend: bool = True  # close the backend when the app shuts down


# -- errors -----------------------------------------------------------------------------------------------

_CODES: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    410: "lease_ended",
    413: "body_too_large",
    429: "rate_limited",
    503: "unavailable",
}


def error_response(exc: OriginError) -> JSONResponse:
    code = 503 if isinstance(exc, StorageError) else int(getattr(exc, "status_code", 500))
    detail: object = getattr(exc, "detail", None) or str(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = retry_after_header(exc.retry_after_s)
    elif code == 503:
        headers["Retry-After"] = "1"
        logger.error("room %s: admission backend unavailable: %s", exc.room, exc)
    elif code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"error": _CODES.get(code, "error"), "detail": detail}, status_code=code, headers=headers)


class AdmissionRoute(APIRoute):
    """Turns OriginError and request validation errors into the JSON error body; bounds PUT bodies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                if request.method == "PUT":
                    request._body = await read_capped(request, MAX_BODY_BYTES, "body")
                return await handler(request)
            except OriginError as exc:
                return error_response(exc)
            except RequestValidationError as exc:
                detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
                return JSONResponse({"error": "invalid_request", "detail": detail}, status_code=400)

        return guarded


# -- router -----------------------------------------------------------------------------------------------


def build_service(deps: AdmissionDeps) -> AdmissionService:
    return AdmissionService(
        rooms=deps.rooms,
        backend=deps.backend,
        publisher=deps.publisher,
        broadcasts=deps.broadcasts,
        limiter=RateLimiter(BucketPolicy.per_minute(deps.join_rate_per_minute)),
        hint=FullHint(ttl_s=deps.hint_ttl_s),
        seat_token_secret=deps.seat_token_secret,
        public_base_url=deps.public_base_url,
        api_url=deps.api_url,
        lease_s=deps.lease_s,
        gate=deps.gate,
    )


def build_router(deps: AdmissionDeps) -> APIRouter:
    svc = build_service(deps)
    clock = deps.clock

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(deps.publisher.run()) if deps.run_publisher else None
        sync = asyncio.create_task(deps.gate.run()) if deps.gate is not None and deps.run_publisher else None
        try:
            yield
        finally:
            if sync is not None:
                sync.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sync
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await run_in_threadpool(deps.publisher.flush, clock())
            if deps.close_backend:
                deps.backend.close()

    router = APIRouter(route_class=AdmissionRoute, lifespan=lifespan)

    def require_admin(authorization: Annotated[str | None, Header()] = None) -> None:
        check_bearer(authorization, deps.admin_token, what="admin", disabled_hint=": set SPILLWAY_ADMIN_TOKEN")

    admin = [Depends(require_admin)]

    @router.put("/v1/rooms/{room}", dependencies=admin)
    async def put_room(room: str, body: RoomBody) -> JSONResponse:
        ids.room_id(room)
        spec = RoomSpec(
            realtime_cap=body.realtime_cap,
            ingest_token=body.ingest_token,
            title=body.title,
            host=body.host,
            embed_origins=tuple(body.embed_origins),
        )
        now = clock()
        _cfg, created, issued = await run_in_threadpool(svc.put_room, room, spec, now)
        view = await run_in_threadpool(svc.room_view, room, now)
        doc = _room_json(view, deps)
        if issued is not None:
            doc["ingest_token"] = issued  # shown once: only its holder and the registry know it afterwards
        return JSONResponse(doc, status_code=201 if created else 200)

    @router.get("/v1/rooms/{room}", dependencies=admin)
    async def get_room(room: str) -> JSONResponse:
        ids.room_id(room)
        view = await run_in_threadpool(svc.room_view, room, clock())
        return JSONResponse(_room_json(view, deps))

    async def join(request: Request) -> Response:
        """The flash-crowd path: a plain Starlette route (no FastAPI dependency solving), memory-only when full."""
        try:
            now = clock()
            svc.check_rate(request.client.host if request.client else "unknown", now)
            room = ids.room_id(request.path_params["room"])
            cached = svc.cached_room(room, now)
            if cached is None:
                cached = await run_in_threadpool(svc.load_room, room, now)
            answer: JoinAnswer | None = svc.quick_answer(cached, now)
            if answer is None:
                answer = await run_in_threadpool(svc.try_seat, cached, now)
        except OriginError as exc:
            return error_response(exc)
        if isinstance(answer, SeatGrant):
            return JSONResponse(_seat_json(answer), status_code=201)
        return JSONResponse(_hls_json(answer))

    router.add_route("/v1/rooms/{room}/listeners", join, methods=["POST"])

    @router.post("/v1/rooms/{room}/listeners/{lease}/heartbeat")
    async def heartbeat(room: str, lease: str) -> JSONResponse:
        ids.room_id(room)
        grant = await run_in_threadpool(svc.heartbeat, room, lease, clock())
        return JSONResponse(_seat_json(grant))

    @router.delete("/v1/rooms/{room}/listeners/{lease}")
    async def leave(room: str, lease: str) -> Response:
        ids.room_id(room)
        await run_in_threadpool(svc.leave, room, lease, clock())
        return Response(status_code=204)

    return router


def _seat_json(answer: SeatGrant) -> dict[str, object]:
    lease = {"id": answer.lease, "expires_at": answer.expires_at, "heartbeat_interval_seconds": answer.heartbeat_s}
    return {
        "mode": "realtime",
        "room": answer.room,
        "lease": lease,
        "seat_token": answer.seat_token,
        "status_url": answer.status_url,
        "sfu": None if answer.sfu is None else answer.sfu.to_json(),
    }


def _hls_json(answer: HlsReferral) -> dict[str, object]:
    return {
        "mode": "hls",
        "room": answer.room,
        "reason": answer.reason,
        "hls_url": answer.hls_url,
        "expected_delay_seconds": answer.expected_delay_s,
        "status_url": answer.status_url,
    }


def _room_json(view: RoomView, deps: AdmissionDeps) -> dict[str, object]:
    room = view.room
    return {
        "id": room.id,
        "title": room.title,
        "host": room.host,
        "realtime_cap": room.realtime_cap,
        "embed_origins": list(room.embed_origins),
        "broadcast": view.broadcast.state,
        "seats_taken": view.seats_taken,
        "seats_left": max(0, room.realtime_cap - view.seats_taken),
        "hls_listeners_recent": view.hls_recent,
        "status_url": status.status_url(deps.public_base_url, room.id),
        "hls_url": status.hls_url(deps.public_base_url, room.id),
    }


# -- construction from settings ------------------------------------------------------------------------------


def build_admission(settings: Settings, storage: Storage, broadcast_view: BroadcastView) -> AdmissionDeps:
    """Backends from settings: `embedded` (SQLite in state_dir) or `redis` (settings.redis_url)."""
    rooms: RoomRegistry
    backend: AdmissionBackend
    if settings.admission_backend == "redis":
        from origin.admission.redis_backend import RedisAdmission, RedisRoomRegistry, connect

        client = connect(settings.redis_url)
        backend, rooms = RedisAdmission(client), RedisRoomRegistry(client)
    else:
        from origin.admission.sqlite_backend import SqliteAdmission, SqliteRoomRegistry

        sqlite_backend = SqliteAdmission.open(settings.state_dir)
        backend, rooms = sqlite_backend, SqliteRoomRegistry(sqlite_backend.db)
    publisher = StatusPublisher(
        storage=storage,
        rooms=rooms,
        backend=backend,
        broadcasts=broadcast_view,
        public_base_url=settings.public_base_url,
        api_url=settings.api_url,
    )
    secret = seat_secret(settings)
    sfu = build_sfu(settings, seat_secret=secret)
    return AdmissionDeps(
        rooms=rooms,
        backend=backend,
        publisher=publisher,
        storage=storage,
        broadcasts=broadcast_view,
        gate=None if sfu is None else SeatGate(sfu=sfu, backend=backend),
        seat_token_secret=secret,
        admin_token=settings.admin_token.get_secret_value(),
        public_base_url=settings.public_base_url,
        api_url=settings.api_url,
        lease_s=settings.seat_lease_seconds,
        join_rate_per_minute=settings.join_rate_per_minute,
    )


def seat_secret(settings: Settings) -> bytes:
    """SPILLWAY_SEAT_TOKEN_SECRET, or (embedded backend only) a secret kept in state_dir, made on first use."""
    configured = settings.seat_token_secret.get_secret_value().encode()
    if configured:
        if len(configured) < MIN_SECRET_BYTES:
            raise ValidationError(f"SPILLWAY_SEAT_TOKEN_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return configured
    if settings.admission_backend == "redis":
        raise ValidationError("SPILLWAY_SEAT_TOKEN_SECRET must be set with the redis backend (shared by instances)")
    return _state_dir_secret(Path(settings.state_dir) / SECRET_FILE_NAME)


def _state_dir_secret(path: Path) -> bytes:
    """Read the secret file, or create it exclusively (workers starting together agree on one secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker created it a moment ago and may still be writing
            secret = path.read_bytes().strip()
            if len(secret) >= MIN_SECRET_BYTES:
                return secret
            time.sleep(0.01)
        raise ValidationError(f"seat token secret file {path} is too short") from None
    secret = secrets.token_urlsafe(48).encode()
    with os.fdopen(fd, "wb") as f:
        f.write(secret + b"\n")
        f.flush()
        os.fsync(f.fileno())
    logger.warning("seat token secret created in %s: give the SFU this file, or set SPILLWAY_SEAT_TOKEN_SECRET", path)
    return secret
