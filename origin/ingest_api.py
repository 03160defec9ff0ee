"""Receiving side of the ingest contract (docs/ingest.md): start, object PUTs, end.

Order of checks for every request: path ids (400) → credentials (401/403) → session/rendition (404/409)
→ body size (413) → body content (400). Nothing is stored before all of them pass.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from origin import fmp4, ids
from origin.errors import AuthError, NotFoundError, StateError, UnavailableError, ValidationError
from origin.http_edge import read_capped
from origin.metrics import Metrics
from origin.publisher import ACCEPT_AFTER_END_S, Publisher
from origin.rooms import Room, RoomRegistry
from origin.state import INIT_INDEX, RenditionSpec, StateStore

log = logging.getLogger(__name__)

MAX_PLAYLIST_BYTES = 256 * 1024
ROOM_CACHE_TTL_S = 2.0


class RenditionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(pattern=ids.RENDITION_PATTERN.pattern)
    bitrate: int = Field(ge=8_000, le=512_000)
    channels: Literal[1, 2]
    sample_rate: Literal[44_100, 48_000]


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    segment_seconds: float = Field(gt=0.2, le=10.0)
    renditions: list[RenditionBody] = Field(min_length=1, max_length=8)


class EndBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Literal["eos", "signal", "crash"] = "eos"


@dataclass(frozen=True, kw_only=True)
class IngestDeps:
    store: StateStore
    publisher: Publisher
    metrics: Metrics
    clock: Callable[[], float]
    max_segment_bytes: int
    max_init_bytes: int
    max_retry_backlog: int
    schedule_pump: Callable[[str], None]  # ask this worker to pump the room soon (coalesced)
    room_cache: RoomCache


class RoomCache:
    """Room lookups for ingest auth, cached briefly: every PUT would otherwise query the registry (SQLite or
    Redis) from the event loop. A changed ingest token takes effect within `ttl_s`."""

    def __init__(self, rooms: RoomRegistry, clock: Callable[[], float], ttl_s: float = ROOM_CACHE_TTL_S) -> None:
        self.rooms = rooms
        self.clock = clock
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, Room | None]] = {}

    def get(self, room: str) -> Room | None:
        now = self.clock()
        hit = self._entries.get(room)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        value = self.rooms.get(room)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[room] = (now, value)
        return value


def _authenticate(deps: IngestDeps, room: str, authorization: str | None) -> None:
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthError("missing ingest credentials: send Authorization: Bearer <room ingest token>", room=room)
    config = deps.room_cache.get(room)
    given = authorization.removeprefix("Bearer ").strip().encode()
    expected = config.ingest_token.encode() if config else b"\x00unknown-room"
    # Same response for an unknown room and a wrong token: ingest does not reveal which rooms exist.
    if not hmac.compare_digest(given, expected) or config is None:
        err = AuthError("ingest token rejected", room=room)
        err.status_code = 403
        raise err


def build_router(deps: IngestDeps) -> APIRouter:
    router = APIRouter(prefix="/ingest", tags=["ingest"])

    @router.post("/{room}/{session}/start", status_code=201)
    async def start(
        room: str,
        session: str,
        body: StartBody,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, object]:
        ids.room_id(room)
        ids.session_id(session)
        _authenticate(deps, room, authorization)
        if len({r.name for r in body.renditions}) != len(body.renditions):
            raise ValidationError("rendition names must be unique", room=room)
        ladder = tuple(
            RenditionSpec(name=r.name, bitrate=r.bitrate, channels=r.channels, sample_rate=r.sample_rate)
            for r in body.renditions
        )

        def _start() -> bool:
            with deps.store.open(room) as db:
                return db.start_session(session, ladder, body.segment_seconds, deps.clock())

        created = await asyncio.to_thread(_start)
        log.info(
            "room=%s session=%s %s (%d renditions)", room, session, "started" if created else "re-started", len(ladder)
        )
        deps.schedule_pump(room)
        return {"room": room, "session": session, "created": created}

    @router.post("/{room}/{session}/end")
    async def end(
        room: str,
        session: str,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, object]:
        ids.room_id(room)
        ids.session_id(session)
        _authenticate(deps, room, authorization)
        raw = await read_capped(request, 4096, "end body")
        reason = EndBody.model_validate_json(raw).reason if raw.strip() else "eos"

        def _end() -> None:
            with deps.store.open(room) as db:
                if db.session(session) is None:
                    raise NotFoundError(f"unknown session {session!r}", room=room)
                db.end_session(session, reason, deps.clock())

        await asyncio.to_thread(_end)
        log.info("room=%s session=%s ended (%s)", room, session, reason)
        deps.schedule_pump(room)
        return {"room": room, "session": session, "ended": True}

    @router.put("/{room}/{session}/{rendition}/{name}", status_code=201)
    async def put_object(
        room: str,
        session: str,
        rendition: str,
        name: str,
        request: Request,
        background: BackgroundTasks,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        ids.room_id(room)
        ids.session_id(session)
        ids.rendition_name(rendition)
        _authenticate(deps, room, authorization)
        if ids.PLAYLIST_NAME_PATTERN.fullmatch(name):
            # ffmpeg's own playlist: read and dropped (the origin builds its own; see docs/ingest.md).
            await read_capped(request, MAX_PLAYLIST_BYTES, "playlist")
            return Response(status_code=204)
        seg = ids.SEGMENT_NAME_PATTERN.fullmatch(name)
        if seg:
            idx = int(seg.group(1))
            body = await read_capped(request, deps.max_segment_bytes, "segment")
            info_s = fmp4.inspect_segment(body)
            fields: dict[str, object] = {
                "duration_ticks": info_s.duration_ticks,
                "base_ticks": info_s.base_decode_time,
                "timescale": None,
                "channels": None,
                "codec": None,
            }
        elif ids.INIT_NAME_PATTERN.fullmatch(name):
            idx = INIT_INDEX
            body = await read_capped(request, deps.max_init_bytes, "init segment")
            info_i = fmp4.inspect_init(body)
            fields = {
                "duration_ticks": 0,
                "base_ticks": 0,
                "timescale": info_i.timescale,
                "channels": info_i.channels,
                "codec": info_i.codec,
            }
        else:
            raise ValidationError(
                f"unexpected object name {name[:64]!r}: expected NNNNNN.m4s, init[_N].mp4 or a .m3u8", room=room
            )
        spool_name = "init.mp4" if idx == INIT_INDEX else f"{idx:06d}.m4s"

        def _receive() -> bool:
            with deps.store.open(room) as db:
                # Check before spooling so a refused object leaves nothing behind.
                sess = db.session(session)
                if sess is None:
                    raise NotFoundError(f"unknown session {session!r}: call start first", room=room)
                if sess.rendition(rendition) is None:
                    raise NotFoundError(f"rendition {rendition!r} not declared by session {session!r}", room=room)
                state, _, _ = db.broadcast()
                if state in ("ending", "ended"):
                    raise StateError(f"room {room!r} broadcast has ended", room=room)
                backlog = db.pending_count()
                if backlog >= deps.max_retry_backlog:
                    raise UnavailableError(
                        f"storage retry backlog full ({backlog} objects waiting): storage is failing", room=room
                    )
                path = deps.publisher.spool(room, session, rendition, spool_name, body)
                try:
                    fresh = db.record_object(
                        session_id=session,
                        rendition=rendition,
                        idx=idx,
                        spool=str(path),
                        size=len(body),
                        now=deps.clock(),
                        accept_after_end_s=ACCEPT_AFTER_END_S,
                        **fields,  # type: ignore[arg-type]
                    )
                except LookupError as exc:
                    path.unlink(missing_ok=True)
                    raise NotFoundError(str(exc), room=room) from exc
                except BaseException:
                    path.unlink(missing_ok=True)
                    raise
                return fresh

        await asyncio.to_thread(_receive)
        if idx != INIT_INDEX:
            deps.metrics.received(room)
        deps.schedule_pump(room)
        return Response(status_code=201)

    return router
