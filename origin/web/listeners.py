"""Listener admission over HTTP (docs/admission.md): a real-time seat up to the cap, HLS past it.

    POST   /v1/rooms/{room}/listeners                     public, rate limited: a seat or HLS
    POST   /v1/rooms/{room}/listeners/{lease}/heartbeat   renew a seat (404 unknown, 410 ended)
    DELETE /v1/rooms/{room}/listeners/{lease}             free a seat

The join is the flash-crowd path: a plain Starlette route (no dependency solving) that answers from memory
once this worker knows the room is full. Heartbeats and leaves are rate limited per client address too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from origin.admission.service import AdmissionService, HlsReferral, JoinAnswer, SeatGrant
from origin.admission.setup import AdmissionDeps
from origin.contract import ids
from origin.errors import OriginError
from origin.ops.probes import watch_backend
from origin.web import errors

RoomPath = Annotated[str, Path(pattern=ids.ROOM_ID_SCHEMA, max_length=64)]
LeasePath = Annotated[str, Path(pattern=ids.LEASE_ID_SCHEMA, max_length=64)]
ClientOf = Callable[[Request], str]


def seat_json(answer: SeatGrant) -> dict[str, object]:
    lease = {"id": answer.lease, "expires_at": answer.expires_at, "heartbeat_interval_seconds": answer.heartbeat_s}
    return {
        "mode": "realtime",
        "room": answer.room,
        "lease": lease,
        "seat_token": answer.seat_token,
        "status_url": answer.status_url,
        "sfu": None if answer.sfu is None else answer.sfu.to_json(),
    }


def hls_json(answer: HlsReferral) -> dict[str, object]:
    return {
        "mode": "hls",
        "room": answer.room,
        "reason": answer.reason,
        "hls_url": answer.hls_url,
        "expected_delay_seconds": answer.expected_delay_s,
        "status_url": answer.status_url,
    }


def build_router(deps: AdmissionDeps, svc: AdmissionService, client_of: ClientOf) -> APIRouter:
    clock = deps.clock

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(deps.publisher.run()) if deps.run_publisher else None
        sync = asyncio.create_task(deps.gate.run()) if deps.gate is not None and deps.run_publisher else None
        probe = None
        if deps.metrics is not None and deps.run_publisher:
            probe = asyncio.create_task(watch_backend(deps.backend, deps.metrics))
        try:
            yield
        finally:
            if probe is not None:
                probe.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await probe
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

    router = APIRouter(lifespan=lifespan, tags=["listeners"])

    def count(answer: str, reason: str) -> None:
        if deps.metrics is not None:
            deps.metrics.join(answer, reason)

    async def join(request: Request) -> Response:
        try:
            now = clock()
            svc.check_rate(client_of(request), now)
            room = ids.room_id(request.path_params["room"])
            cached = svc.cached_room(room, now)
            if cached is None:
                cached = await run_in_threadpool(svc.load_room, room, now)
            answer: JoinAnswer | None = svc.quick_answer(cached, now)
            if answer is None:
                answer = await run_in_threadpool(svc.try_seat, cached, now)
        except OriginError as exc:
            count("error", errors.CODES.get(errors.status_of(exc), "internal"))
            return errors.origin_error_response(exc)
        if isinstance(answer, SeatGrant):
            count("seat", "granted")
            return JSONResponse(seat_json(answer), status_code=201)
        count("hls", answer.reason)
        return JSONResponse(hls_json(answer))

    # Served by the plain route (first match wins); the API route below only documents it in OpenAPI.
    router.add_route("/v1/rooms/{room}/listeners", join, methods=["POST"])

    @router.post("/v1/rooms/{room}/listeners", status_code=201, summary="Join: a real-time seat or HLS",
                 responses={200: {"description": "HLS: the room is full or has no real-time seats",
                                 "content": {"application/json": {}}},
                            **errors.responses(400, 404, 409, 429, 503)})  # fmt: skip
    async def join_documented(room: RoomPath) -> dict[str, object]:  # pragma: no cover - never routed
        raise AssertionError("served by the plain route above")

    @router.post("/v1/rooms/{room}/listeners/{lease}/heartbeat", responses=errors.responses(400, 404, 410, 429))
    async def heartbeat(room: RoomPath, lease: LeasePath, request: Request) -> JSONResponse:
        """Renew a seat: call every `heartbeat_interval_seconds`."""
        now = clock()
        svc.check_lease_rate(client_of(request), now)
        grant = await run_in_threadpool(svc.heartbeat, room, lease, now)
        return JSONResponse(seat_json(grant))

    @router.delete("/v1/rooms/{room}/listeners/{lease}", status_code=204, responses=errors.responses(400, 404, 429))
    async def leave(room: RoomPath, lease: LeasePath, request: Request) -> Response:
        """Free the seat."""
        now = clock()
        svc.check_lease_rate(client_of(request), now)
        await run_in_threadpool(svc.leave, room, lease, now)
        return Response(status_code=204)

    return router
