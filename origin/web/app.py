"""`create_app(settings)`: the origin's FastAPI application, wired from settings.

    settings → storage, coordination (journal, spool, group commit, claims, doorbell: one host or a fleet,
    origin/coordination.py) → services (ingest, publishing, admission, replay download) → routers (ingest,
    admin, listeners, health, player, storage read path)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from starlette.types import ASGIApp

from origin import metrics
from origin.admission.setup import build_admission, build_service
from origin.admission.sfu.factory import connect_origins as sfu_connect_urls
from origin.admission.sfu.factory import room_keys as sfu_room_keys
from origin.admission.sfu.talk import JanusTalkWatcher
from origin.broadcast.control import BroadcastControl
from origin.broadcast.events import EventService
from origin.broadcast.ingest import IngestLimits, IngestService
from origin.broadcast.ingest_parts import PartIngest
from origin.broadcast.journal.base import Ownership
from origin.broadcast.lifecycle import LifecyclePolicy
from origin.broadcast.model import BroadcastState
from origin.broadcast.publish.filler import FillerBank, FillerPolicy
from origin.broadcast.publish.lowlatency import LowLatency
from origin.broadcast.publish.playlists import RoomPlaylists
from origin.broadcast.publish.room import PassResult, PublishPolicy, RoomPublisher
from origin.broadcast.publish.scheduler import PublishScheduler
from origin.broadcast.retention import Retention
from origin.broadcast.states import RoomStates
from origin.broadcast.stores import RoomStores
from origin.broadcast.view import ListenerView
from origin.clock import wall_clock
from origin.coordination import BellHandlers, build_coordination, stats_dir
from origin.ops.room_metrics import AdmissionSeats, RoomCollector, RoomSampler
from origin.ops.room_stats import FileStatsStore, RoomStatsTracker
from origin.player import PlayerDeps
from origin.player import build_router as build_player_router
from origin.player.page import Realtime
from origin.replay.download import ReplayDownloads
from origin.settings import Settings
from origin.storage.factory import build_storage
from origin.storage.filesystem import FilesystemStorage
from origin.storage.hedge import HedgedStorage
from origin.web import admin, errors, health, ingest, listeners, live, openapi
from origin.web.client_address import client_address, parse_networks
from origin.web.live import Waiters

log = logging.getLogger(__name__)

REMOTE_WRITE_CONCURRENCY = 16


class OriginApp(FastAPI):
    """FastAPI with an ASGI front outside its whole middleware stack: the ingest object PUTs (≈ 900 a second per
    host) reach their handler there, before the stack's layers and FastAPI's route matching."""

    front: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return self.front(stack) if self.front is not None else stack


# The origin exports Prometheus metrics of its own; FastAPI ≥ 0.16x checks its OpenTelemetry providers on every
# request unless told not to (older versions have no such setting).
_NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {}
)  # fmt: skip


def _count_ingest_refusal(m: metrics.Metrics, request: Request, status: int) -> None:
    if request.url.path.startswith("/ingest/"):
        m.rejected(errors.CODES.get(status, "internal"))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # The owners' per-room figures, read by every worker (in a fleet: by the owner's instance's workers).
    stats = FileStatsStore(stats_dir(settings.state_dir))
    m = metrics.Metrics(stats=RoomStatsTracker(stats), storage_backend=settings.storage)
    storage = build_storage(
        backend=settings.storage, root=settings.storage_root, bucket=settings.s3_bucket, prefix=settings.s3_prefix,
        region=settings.s3_region, endpoint_url=settings.s3_endpoint_url, acl=settings.s3_acl,
        timeout_s=settings.s3_timeout_seconds, on_error=m.storage_attempt_failed,
    )  # fmt: skip
    if settings.hedge_writes and not isinstance(storage, FilesystemStorage):
        storage = HedgedStorage(storage, metrics=m)  # one hung write must not hold a pass or an ingest answer
    coord = build_coordination(settings, storage)
    journal, spool, commit = coord.journal, coord.spool, coord.commit
    states = RoomStates(journal)
    stores = RoomStores(journal=journal, states=states, storage=storage, spool=spool)
    service = IngestService(
        stores=stores, metrics=m, clock=wall_clock,
        limits=IngestLimits(max_backlog=settings.max_retry_backlog,
                            sessions_per_minute=settings.sessions_per_minute),
    )  # fmt: skip
    view = ListenerView(states, public_base_url=settings.public_base_url)
    admission = build_admission(settings, storage, view, m)
    seats = build_service(admission)
    filler = FillerBank(Path(settings.state_dir) / "filler", slate_file=settings.slate_file)
    policy = PublishPolicy(
        live_window_segments=settings.live_window_segments,
        lifecycle=LifecyclePolicy(session_timeout_s=settings.session_timeout_seconds,
                                  end_grace_s=settings.end_grace_seconds),
        filler=FillerPolicy(deadline_segments=settings.fill_deadline_segments) if settings.fill_gaps else None,
    )  # fmt: skip
    io = None if isinstance(storage, FilesystemStorage) else ThreadPoolExecutor(REMOTE_WRITE_CONCURRENCY, "storage")

    board = coord.board  # low-latency playlists: the host's workers (files) or the fleet's (Redis) read them
    waiters = Waiters()

    def playlist_moved(room: str) -> None:
        board.forget(room)
        waiters.notify(room)

    def make_publisher(room: str, ownership: Ownership) -> RoomPublisher:
        playlists = RoomPlaylists(room, coord.room_dir(room) / "dvr",
                                  live_window_segments=policy.live_window_segments,
                                  event_interval_s=policy.event_interval_s)  # fmt: skip
        low_latency = (LowLatency(room, board, live_window_segments=policy.live_window_segments)
                       if settings.low_latency else None)  # fmt: skip
        return RoomPublisher(room=room, ownership=ownership, commit=commit,
                             stores=dataclasses.replace(stores, storage=coord.publisher_storage(ownership)),
                             playlists=playlists, filler=filler, policy=policy, metrics=m, clock=wall_clock, io=io,
                             low_latency=low_latency)  # fmt: skip

    downloads = ReplayDownloads(storage=storage, states=states, state_dir=settings.state_dir,
                                on_done=lambda room: admission.publisher.note_change(room, wall_clock()),
                                claim=coord.download_claim)  # fmt: skip

    def on_result(room: str, result: PassResult) -> None:
        if result.status_changed:
            # status.json follows the broadcast (playable, ended, replay URL), not every segment.
            admission.publisher.note_change(room, wall_clock())
        if result.state is BroadcastState.ENDED:
            downloads.request(room)
        if result.low_latency_changed:
            doorbell.ring_playlist(room)

    local = isinstance(storage, FilesystemStorage)
    retention = Retention(states=states, retention_s=settings.state_retention_seconds, clock=wall_clock,
                          room_dir=coord.room_dir)  # fmt: skip

    def housekeeping() -> None:
        retention.sweep()
        downloads.recover()  # an instance that died mid-build leaves a room without its download

    scheduler = PublishScheduler(journal=journal, states=states, make_publisher=make_publisher, clock=wall_clock,
                                 on_result=on_result, inline=local, housekeeping=housekeeping,
                                 claims=coord.claims)  # fmt: skip
    doorbell = coord.make_bell(BellHandlers(on_ring=scheduler.request, on_durable=commit.note_durable,
                                            on_playlist=playlist_moved, owns=lambda room: room in scheduler.owned))
    trusted = parse_networks(settings.trusted_proxies)

    def client_of(request: Request) -> str:
        peer = request.client.host if request.client else None
        return client_address(peer, request.headers.get("x-forwarded-for"), trusted)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # A restarted origin (or a replacement worker) resumes every unfinished room from its journal.
        doorbell.open(asyncio.get_running_loop())
        scheduler.start()
        downloads.recover()
        talk = asyncio.get_running_loop().create_task(talk_watcher.run()) if talk_watcher is not None else None
        yield
        if talk is not None:
            talk.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await talk
        await scheduler.stop()
        doorbell.close()
        downloads.close()
        coord.close()
        if io is not None:
            io.shutdown(wait=False)
        if isinstance(storage, HedgedStorage):
            storage.close()

    # No trailing-slash redirects: Starlette builds their Location from the request's Host header.
    app = OriginApp(title="Spillway origin", version="0.2.0", lifespan=lifespan, redirect_slashes=False,
                    **_NO_NATIVE_TELEMETRY)  # fmt: skip
    app.state.settings = settings
    app.state.storage = storage
    app.state.scheduler = scheduler
    def on_error(request: Request, status: int) -> None:
        _count_ingest_refusal(m, request, status)

    errors.install(app, on_error=on_error)
    openapi.install(app)
    tokens = ingest.RoomTokens(admission.rooms, wall_clock)
    ingest_deps = ingest.IngestDeps(
        service=service, parts=PartIngest(service), tokens=tokens, commit=commit, ring=doorbell.ring, metrics=m,
        max_segment_bytes=settings.max_segment_bytes, max_init_bytes=settings.max_init_bytes, inline=local,
    )  # fmt: skip
    app.include_router(ingest.build_router(ingest_deps))
    put_object = ingest.object_handler(ingest_deps)
    put_wave = ingest.wave_handler(ingest_deps)
    app.front = lambda inner: ingest.IngestFastPath(inner, put=put_object, wave=put_wave, on_error=on_error)

    def on_deleted(room: str) -> None:
        scheduler.forget(room)
        tokens.forget(room)

    events = EventService(journal=journal, states=states, clock=wall_clock, ring=lambda room: doorbell.ring(room))
    # Janus: the rooms this worker publishes get an observer whose talking events become speaker turns.
    talk_watcher = JanusTalkWatcher(
        url=settings.janus_url, room_keys=sfu_room_keys(settings), rooms=lambda: list(scheduler.owned),
        record=events.record, clock=wall_clock, timeout_s=settings.janus_timeout_seconds,
    ) if settings.sfu == "janus" else None  # fmt: skip
    control = BroadcastControl(states=states, ingest=service, spool=spool, storage=storage, stats=stats,
                               exclusive=downloads.held)  # fmt: skip
    app.include_router(admin.build_router(admin.AdminDeps(
        admission=seats, broadcasts=control, on_deleted=on_deleted, ring=lambda room: doorbell.ring(room),
        admin_token=settings.admin_token.get_secret_value(), public_base_url=settings.public_base_url,
        clock=wall_clock, events=events,
    )))  # fmt: skip
    app.include_router(listeners.build_router(admission, seats, client_of))
    sampler = RoomSampler(states=states, stats=stats, seats=AdmissionSeats(admission.rooms, admission.backend),
                          clock=wall_clock, signature=coord.signature, max_rooms=settings.metrics_max_rooms)
    app.include_router(health.build_router(storage, [RoomCollector(sampler)], checks=coord.checks))
    # Before the storage read path: the origin answers live playlists itself (blocking reloads for LL rooms).
    app.include_router(live.build_router(board=board, storage=storage, waiters=waiters, clock=wall_clock))
    if isinstance(storage, FilesystemStorage):
        from origin.web.objects import build_storage_router

        app.include_router(build_storage_router(storage))
    app.include_router(  # player: /embed/{room}, /oembed, /static/player/...
        build_player_router(
            PlayerDeps(
                get_room=admission.rooms.get,
                public_base_url=settings.public_base_url,
                api_url=settings.api_url,
                realtime=Realtime(kind="janus") if settings.sfu == "janus" else None,  # seats over WebRTC
                sfu_urls=sfu_connect_urls(settings),
            )
        )
    )
    return app
