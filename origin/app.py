"""The origin's FastAPI application factory: ingest, storage read path, health, metrics, admission."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from origin import ids, metrics
from origin.admission.api import build_admission
from origin.admission.api import build_router as build_admission_router
from origin.admission.broadcast_view import StateBroadcastView
from origin.admission.sfu.factory import connect_origins as sfu_connect_urls  # SFU the embed page joins
from origin.clock import wall_clock
from origin.errors import NotFoundError, OriginError, StorageError
from origin.filler import FillerBank
from origin.http_edge import check_bearer
from origin.ingest_api import IngestDeps, RoomCache
from origin.ingest_api import build_router as build_ingest_router
from origin.player import PlayerDeps  # player: embed page, oEmbed, static files
from origin.player import build_router as build_player_router  # player
from origin.player.broadcast import ListenerBroadcastView  # player
from origin.player.page import Realtime  # player: seats over WebRTC
from origin.publisher import Publisher, PublishPolicy, PumpResult
from origin.pump_scheduler import PumpScheduler
from origin.replay_download import ReplayDownloads  # player: the replay .m4a
from origin.rooms import RoomRegistry
from origin.settings import Settings
from origin.state import StateStore
from origin.storage.factory import build_storage
from origin.storage.filesystem import FilesystemStorage

log = logging.getLogger(__name__)


def require_admin(settings: Settings, authorization: str | None) -> None:
    check_bearer(
        authorization, settings.admin_token.get_secret_value(), what="admin", disabled_hint=": set SPILLWAY_ADMIN_TOKEN"
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    m = metrics.Metrics()
    storage = build_storage(
        backend=settings.storage,
        root=settings.storage_root,
        bucket=settings.s3_bucket,
        prefix=settings.s3_prefix,
        region=settings.s3_region,
        endpoint_url=settings.s3_endpoint_url,
        acl=settings.s3_acl,
        timeout_s=settings.s3_timeout_seconds,
        on_error=lambda backend, kind: m.storage_error(backend, kind),
    )
    store = StateStore(settings.state_dir)
    publisher = Publisher(
        store=store,
        storage=storage,
        policy=PublishPolicy(
            live_window_segments=settings.live_window_segments,
            session_timeout_s=settings.session_timeout_seconds,
            end_grace_s=settings.end_grace_seconds,
        ),
        metrics=m,
        clock=wall_clock,
        filler=FillerBank(settings.state_dir / "filler", slate_file=settings.slate_file)
        if settings.fill_gaps
        else None,
    )
    # player: status.json says live once the stream is playable, and links the replay .m4a once one worker
    # has built it (off the event loop).
    downloads = ReplayDownloads(storage=storage, state_dir=settings.state_dir)
    broadcasts = ListenerBroadcastView(
        StateBroadcastView(store, public_base_url=settings.public_base_url),
        store=store,
        downloads=downloads,
        public_base_url=settings.public_base_url,
    )
    admission = build_admission(settings, storage, broadcasts)
    downloads.on_done = lambda room: admission.publisher.note_change(room, wall_clock())
    rooms: RoomRegistry = admission.rooms

    def on_result(room: str, result: PumpResult) -> None:
        if result.broadcast_changed or result.master_written:
            # status.json follows the broadcast (playable, ended, replay URL), not every segment.
            admission.publisher.note_change(room, wall_clock())
        if result.state == "ended":
            scheduler.forget(room)
            downloads.request(room)  # player: build the replay .m4a (one worker, in a thread)

    scheduler = PumpScheduler(publisher, clock=wall_clock, on_result=on_result)

    def _recoverable() -> list[str]:
        out = []
        for room in store.known_rooms():
            with store.open(room) as db:
                if db.broadcast()[0] in ("live", "ending"):
                    out.append(room)
        return out

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # A restarted origin (or a replacement worker) resumes every unfinished room: pending uploads,
        # session timeouts and the end-of-broadcast grace all continue from the durable state.
        scheduler.start(await asyncio.to_thread(_recoverable))
        downloads.recover(store)  # player: ended rooms whose .m4a a restart interrupted (in a thread)
        yield
        await scheduler.stop()
        downloads.close()  # player

    app = FastAPI(title="Spillway origin", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.storage = storage
    app.state.publisher = publisher
    app.state.scheduler = scheduler

    @app.exception_handler(OriginError)
    async def _origin_error(_request: Request, exc: OriginError) -> JSONResponse:
        status = getattr(exc, "status_code", 500)
        if isinstance(exc, StorageError):
            status = 503
        if status >= 500:
            log.error("room=%s %s", exc.room, exc)
        if status < 500:
            m.rejected(type(exc).__name__)
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unrouted paths (e.g. an encoded "/" splitting a path part) get the same JSON shape as the rest.
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        m.rejected("RequestValidationError")
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"error": "invalid request", "detail": details}, status_code=422)

    app.include_router(
        build_ingest_router(
            IngestDeps(
                store=store,
                publisher=publisher,
                metrics=m,
                clock=wall_clock,
                max_segment_bytes=settings.max_segment_bytes,
                max_init_bytes=settings.max_init_bytes,
                max_retry_backlog=settings.max_retry_backlog,
                schedule_pump=scheduler.request,
                room_cache=RoomCache(rooms, wall_clock),
            )
        )
    )

    @app.post("/v1/rooms/{room}/end")
    async def end_broadcast(room: str, authorization: Annotated[str | None, Header()] = None) -> dict[str, object]:
        ids.room_id(room)
        require_admin(settings, authorization)
        if not store.db_path(room).exists():
            raise NotFoundError(f"room {room!r} has never broadcast", room=room)
        changed = await asyncio.to_thread(publisher.request_end, room)
        scheduler.request(room)
        return {"room": room, "ending": changed, "replay_url": f"{settings.public_base_url}/rooms/{room}/replay.m3u8"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        try:
            await asyncio.to_thread(storage.check)
        except StorageError as exc:
            return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready", "storage": storage.name})

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    if isinstance(storage, FilesystemStorage):
        from origin.storage.serve import build_storage_router

        app.include_router(build_storage_router(storage))

    app.state.admission = admission
    app.include_router(build_admission_router(admission))
    app.state.downloads = downloads  # player
    app.include_router(  # player: /embed/{room}, /oembed, /static/player/...
        build_player_router(
            PlayerDeps(
                get_room=rooms.get,
                public_base_url=settings.public_base_url,
                api_url=settings.api_url,
                realtime=Realtime(kind="janus") if settings.sfu == "janus" else None,  # SFU: seats over WebRTC
                sfu_urls=sfu_connect_urls(settings),
            )
        )
    )
    return app
