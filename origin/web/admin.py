"""Room administration (admin bearer token): rooms, the broadcast's end, deletion, the operator's listing.

    GET    /v1/rooms                 every room with its live figures (what `spillway status` shows)
    PUT    /v1/rooms/{room}          create or replace a room (201 created, 200 replaced)
    GET    /v1/rooms/{room}          one room with its live figures
    DELETE /v1/rooms/{room}          the room, its state and every object it published (409 while on air)
    POST   /v1/rooms/{room}/end      end the broadcast: the replay becomes VOD at the same URL
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from origin.admission import status
from origin.admission.models import MAX_BODY_BYTES, RoomBody
from origin.admission.service import AdmissionService, RoomSpec, RoomView
from origin.broadcast.view import BroadcastSummary
from origin.contract import ids, layout
from origin.errors import NotFoundError
from origin.web import errors, openapi
from origin.web.auth import check_bearer, read_capped

RoomPath = Annotated[str, Path(pattern=ids.ROOM_ID_SCHEMA, max_length=64)]
LIST_LIMIT_MAX = 1000


class Broadcasts(Protocol):
    """What the admin routes need of the broadcast side (origin.broadcast.control.BroadcastControl). Blocking."""

    def exists(self, room: str) -> bool: ...

    def summary(self, room: str) -> BroadcastSummary | None: ...

    def end(self, room: str) -> bool: ...

    def delete(self, room: str) -> int: ...


@dataclass(frozen=True, kw_only=True)
class AdminDeps:
    admission: AdmissionService
    broadcasts: Broadcasts
    on_deleted: Callable[[str], None]  # event loop: forget the room in this worker
    ring: Callable[[str], None]
    admin_token: str
    public_base_url: str
    clock: Callable[[], float]


def room_json(view: RoomView, deps: AdminDeps) -> dict[str, object]:
    room = view.room
    summary = deps.broadcasts.summary(room.id)
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
        "publishing": summary.to_json() if summary else None,
    }


def build_router(deps: AdminDeps) -> APIRouter:
    def require_admin(authorization: Annotated[str | None, Header(include_in_schema=False)] = None) -> None:
        check_bearer(authorization, deps.admin_token, what="admin", disabled_hint=": set SPILLWAY_ADMIN_TOKEN")

    router = APIRouter(prefix="/v1/rooms", tags=["admin"], dependencies=[Depends(require_admin)],
                       responses=errors.responses(400, 401, 403, 503))  # fmt: skip
    svc = deps.admission

    @router.get("")
    async def list_rooms(
        limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = 100,
        after: Annotated[str, Query(pattern=r"^$|" + ids.ROOM_ID_SCHEMA, max_length=64)] = "",
    ) -> dict[str, object]:
        """Rooms in id order, `limit` at a time; pass the last id as `after` for the next page."""

        def page() -> tuple[list[dict[str, object]], str | None]:
            all_ids = [r for r in svc.rooms.ids() if r > after]
            now = deps.clock()
            views = [room_json(svc.room_view(r, now), deps) for r in all_ids[:limit]]
            return views, (all_ids[limit - 1] if len(all_ids) > limit else None)

        rooms, next_after = await run_in_threadpool(page)
        return {"rooms": rooms, "next_after": next_after}

    replaced = {"description": "replaced", "content": {"application/json": {}}}

    @router.put("/{room}", status_code=201, responses={200: replaced, **errors.responses(413)},
                openapi_extra=openapi.json_body(RoomBody))  # fmt: skip
    async def put_room(room: RoomPath, request: Request) -> JSONResponse:
        """Create or replace a room. A new room without `ingest_token` gets one, shown once in the answer."""
        body = RoomBody.model_validate_json(await read_capped(request, MAX_BODY_BYTES, "room body"))
        spec = RoomSpec(realtime_cap=body.realtime_cap, ingest_token=body.ingest_token, title=body.title,
                        host=body.host, embed_origins=tuple(body.embed_origins))  # fmt: skip
        now = deps.clock()
        _cfg, created, issued = await run_in_threadpool(svc.put_room, room, spec, now)
        doc = room_json(await run_in_threadpool(svc.room_view, room, now), deps)
        if issued is not None:
            doc["ingest_token"] = issued  # shown once: only its holder and the registry know it afterwards
        return JSONResponse(doc, status_code=201 if created else 200)

    @router.get("/{room}", responses=errors.responses(404))
    async def get_room(room: RoomPath) -> JSONResponse:
        """The room with its live figures."""
        return JSONResponse(room_json(await run_in_threadpool(svc.room_view, room, deps.clock()), deps))

    @router.delete("/{room}", responses=errors.responses(404, 409))
    async def delete_room(room: RoomPath) -> dict[str, object]:
        """Delete the room: its configuration, its state, and every object it published (its replay too)."""
        if await run_in_threadpool(svc.rooms.get, room) is None and not deps.broadcasts.exists(room):
            raise NotFoundError(f"unknown room {room!r}", room=room)
        removed = await asyncio.to_thread(deps.broadcasts.delete, room)
        await run_in_threadpool(svc.delete_room, room)
        deps.on_deleted(room)
        return {"room": room, "deleted": True, "objects_removed": removed}

    @router.post("/{room}/end", responses=errors.responses(404))
    async def end_broadcast(room: RoomPath) -> dict[str, object]:
        """End the broadcast: ingest is refused from now on; the replay turns VOD once the backlog is drained."""
        ending = await asyncio.to_thread(deps.broadcasts.end, room)
        deps.ring(room)
        return {"room": room, "ending": ending,
                "replay_url": f"{deps.public_base_url}/{layout.replay_master(room)}"}  # fmt: skip

    return router
