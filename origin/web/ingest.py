"""The transcoder's calls (docs/ingest.md): start, object PUTs, end.

Order of checks for every request: path ids (400) → credentials (401/403) → body size (413) → body
content (400) → session/rendition/state (404/409/503). Nothing is stored before all of them pass; a 201
is sent only after the group commit made the object and its journal record durable.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import APIRouter, Header, Path, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from origin.broadcast.ingest import IngestService, Receipt, parse_object_name
from origin.broadcast.ingest_parts import PartIngest
from origin.broadcast.stream import FragmentStream, SegmentCutter
from origin.contract import ids
from origin.contract.ingest import (
    CONTROL_BODY_MAX_BYTES,
    PLAYLIST_MAX_BYTES,
    STREAM_PART_MAX_BYTES,
    WAVE_HEADER,
    WAVE_HEADER_MAX_CHARS,
    EndBody,
    StartBody,
    parse_wave,
    split_wave,
)
from origin.errors import ForbiddenError, ValidationError
from origin.metrics import Metrics
from origin.rooms import Room, RoomRegistry
from origin.storage.group_commit import GroupCommit
from origin.web import errors, openapi
from origin.web.auth import bearer_token, read_capped

log = logging.getLogger(__name__)
T = TypeVar("T")

ROOM_CACHE_TTL_S = 2.0

RoomPath = Annotated[str, Path(pattern=ids.ROOM_ID_SCHEMA, max_length=64)]
SessionPath = Annotated[str, Path(pattern=ids.SESSION_ID_SCHEMA, max_length=64)]
RenditionPath = Annotated[str, Path(pattern=ids.RENDITION_SCHEMA, max_length=32)]
NamePath = Annotated[str, Path(pattern=ids.OBJECT_NAME_SCHEMA, max_length=40)]
AuthHeader = Annotated[str | None, Header(include_in_schema=False)]  # documented as the IngestToken scheme
SegmentPath = Annotated[str, Path(pattern=ids.SEGMENT_NAME_PATTERN.pattern, max_length=16)]
WaveHeader = Annotated[str | None, Header(alias=WAVE_HEADER, max_length=WAVE_HEADER_MAX_CHARS,
                                          description="the renditions in body order: `a48=8123, a64=10456`")]


class _SegmentName(Convertor[str]):
    """`{name:segment}`: the wave route matches segment names only, so `PUT …/start` is still a 405, not a wave."""

    regex = ids.SEGMENT_NAME_PATTERN.pattern.removeprefix("^").removesuffix("$")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("segment", _SegmentName())


class RoomTokens:
    """Room lookups for ingest auth, cached briefly: every PUT would otherwise query the registry (SQLite or
    Redis). A changed ingest token takes effect within `ttl_s`. Misses are looked up off the event loop."""

    def __init__(self, rooms: RoomRegistry, clock: Callable[[], float], ttl_s: float = ROOM_CACHE_TTL_S) -> None:
        self.rooms = rooms
        self.clock = clock
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, Room | None]] = {}

    async def check(self, room: str, authorization: str | None) -> None:
        given = bearer_token(authorization, what="ingest", room=room).encode()
        now = self.clock()
        hit = self._entries.get(room)
        if hit is None or now - hit[0] >= self.ttl_s:
            config = await run_in_threadpool(self.rooms.get, room)
            if len(self._entries) > 10_000:
                self._entries.clear()
            hit = self._entries[room] = (now, config)
        config = hit[1]
        expected = config.ingest_token.encode() if config else b"\x00unknown-room"
        # Same answer for an unknown room and a wrong token: ingest does not reveal which rooms exist.
        if not hmac.compare_digest(given, expected) or config is None:
            raise ForbiddenError("ingest token rejected", room=room)

    def forget(self, room: str) -> None:
        self._entries.pop(room, None)


@dataclass(frozen=True, kw_only=True)
class IngestDeps:
    service: IngestService
    parts: PartIngest
    tokens: RoomTokens
    commit: GroupCommit
    ring: Callable[[str, float, str | None], None]  # tell the room's publisher (any worker) it has news
    metrics: Metrics
    max_segment_bytes: int
    max_init_bytes: int
    # Local storage: receive on the event loop (a segment write is tens of µs; a thread hop costs more, in GIL
    # contention, than the work). Remote storage: in a thread.
    inline: bool = False


_OBJECT_BODY = openapi.binary_body(
    "init: an fMP4 init segment (≤ SPILLWAY_MAX_INIT_BYTES); NNNNNN.m4s: a media segment (≤"
    " SPILLWAY_MAX_SEGMENT_BYTES); *.m3u8: ffmpeg's playlist, dropped. Bytes that are not the fMP4 the session"
    " declared are refused with 400: that is more than a schema can say."
)
_WAVE_BODY = openapi.binary_body(
    "The renditions' segments of one index, concatenated in the order and with the byte counts that the"
    " spillway-wave header names (each ≤ SPILLWAY_MAX_SEGMENT_BYTES). Each is received as its own PUT would be;"
    " the first refusal is the answer, and what came before it is kept (a repeat of it is answered 201)."
)
_ERRORS = errors.responses(400, 401, 403, 404, 409, 413, 429, 503)


def _on_loop(deps: IngestDeps, room: str) -> bool:
    """Receive on the event loop: local storage, and the room's state already folded here (otherwise its whole
    journal is read first, seconds for a broadcast of hours: bench/takeover.py)."""
    return deps.inline and deps.service.stores.states.folded(room)


async def _run(deps: IngestDeps, fn: Callable[..., T], room: str, *args: object) -> T:
    """`fn(room, *args)`: on the event loop when _on_loop says so, else in a thread."""
    if _on_loop(deps, room):
        return fn(room, *args)
    return await asyncio.to_thread(fn, room, *args)


def _durable(deps: IngestDeps) -> Callable[..., Awaitable[None]]:
    async def durable(room: str, *, ring: bool = True, rendition: str | None = None) -> None:
        """Wait for the group commit (an identical repeat too: its first copy may still be on its way), then
        ring the room's publisher (`rendition`: for a segment of it)."""
        started = time.monotonic()
        await deps.commit.barrier()
        deps.metrics.committed(time.monotonic() - started)
        if ring:
            deps.ring(room, deps.commit.durable_before, rendition)

    return durable


def object_handler(deps: IngestDeps) -> Callable[[Request], Awaitable[Response]]:
    """PUT /ingest/{room}/{session}/{rendition}/{name}: an init, a segment, or ffmpeg's playlist (dropped)."""
    durable = _durable(deps)

    async def put_object(request: Request) -> Response:
        p = request.path_params
        room, session = ids.room_id(p["room"]), ids.session_id(p["session"])
        rendition, name = ids.rendition_name(p["rendition"]), p["name"]
        await deps.tokens.check(room, request.headers.get("authorization"))
        kind = parse_object_name(name).kind
        cap = {"segment": deps.max_segment_bytes, "init": deps.max_init_bytes}.get(kind, PLAYLIST_MAX_BYTES)
        body = await read_capped(request, cap, kind)
        if kind == "playlist":
            return Response(status_code=204)
        receipt = await _run(deps, deps.service.receive, room, session, rendition, name, body)
        await durable(room, ring=receipt.stored, rendition=rendition if receipt.segment else None)
        if receipt.segment:
            deps.metrics.received(room)
        return Response(status_code=201)

    return put_object


def wave_handler(deps: IngestDeps) -> Callable[[Request], Awaitable[Response]]:
    """PUT /ingest/{room}/{session}/{NNNNNN}.m4s: one segment of several renditions, framed by WAVE_HEADER.

    The renditions are checked in body order, each as its own PUT would be (one hold and one journal append for
    them all: IngestService.receive_all); the first refusal stops the wave and is the answer. What was stored
    before it is durable and published all the same, so a sender that retries the wave (or sends its renditions
    one by one) repeats those harmlessly: identical repeats are 201."""
    durable = _durable(deps)

    async def put_wave(request: Request) -> Response:
        p = request.path_params
        room, session, name = ids.room_id(p["room"]), ids.session_id(p["session"]), p["name"]
        await deps.tokens.check(room, request.headers.get("authorization"))
        what = parse_object_name(name)
        if what.kind != "segment":
            raise ValidationError(f"a wave carries a segment (NNNNNN.m4s), not {name[:40]!r}")
        framing = parse_wave(request.headers.get(WAVE_HEADER), max_part_bytes=deps.max_segment_bytes)
        pieces = split_wave(framing, await read_capped(request, sum(size for _, size in framing), "wave"))
        receipts: list[Receipt] = []
        try:
            receipts, refusal = await _run(deps, deps.service.receive_all, room, session, what, pieces)
        finally:  # what was stored before a refusal is durable and rung, like the PUTs it stands for
            await durable(room, ring=False)
            for (rendition, _), receipt in zip(pieces, receipts, strict=False):
                if receipt.stored:
                    deps.ring(room, deps.commit.durable_before, rendition)
                deps.metrics.received(room)
        if refusal is not None:
            raise refusal
        return Response(status_code=201)

    return put_wave


class IngestFastPath:
    """ASGI front of the app (web/app.py OriginApp): object PUTs (≈ 900 a second per host) go straight to their
    handler, past the middleware stack and FastAPI's route matching (every route, every request); everything else
    goes on to the app. Errors take the app's one mapping (errors.response_for) and its error hook."""

    def __init__(self, app: ASGIApp, *, put: Callable[[Request], Awaitable[Response]],
                 wave: Callable[[Request], Awaitable[Response]],
                 on_error: errors.ErrorHook | None = None) -> None:  # fmt: skip
        self.app = app
        self.put = put
        self.wave = wave
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "PUT" and scope["path"].startswith("/ingest/"):
            parts = scope["path"].split("/")  # "", "ingest", room, session, [rendition,] name
            handler = None
            if len(parts) == 6 and all(parts[2:]) and parts[5] != "stream.mp4":
                handler = self.put
                scope["path_params"] = {"room": parts[2], "session": parts[3], "rendition": parts[4],
                                        "name": parts[5]}  # fmt: skip
            elif len(parts) == 5 and all(parts[2:]) and parts[4].endswith(".m4s"):
                handler = self.wave
                scope["path_params"] = {"room": parts[2], "session": parts[3], "name": parts[4]}
            if handler is not None:
                request = Request(scope, receive)
                try:
                    response = await handler(request)
                except Exception as exc:
                    response = errors.response_for(request, exc)
                    if self.on_error is not None:
                        self.on_error(request, response.status_code)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_router(deps: IngestDeps) -> APIRouter:
    router = APIRouter(prefix="/ingest", tags=["ingest"])
    durable = _durable(deps)

    @router.post("/{room}/{session}/start", status_code=201, responses=_ERRORS,
                 openapi_extra=openapi.json_body(StartBody))  # fmt: skip
    async def start(
        room: RoomPath, session: SessionPath, request: Request, authorization: AuthHeader = None
    ) -> dict[str, object]:
        """Open an ingest session and declare its ladder (a newer session supersedes the open one)."""
        await deps.tokens.check(room, authorization)
        body = StartBody.model_validate_json(await read_capped(request, CONTROL_BODY_MAX_BYTES, "start body"))
        created = await asyncio.to_thread(deps.service.start, room, session, body)
        await durable(room)
        if created:
            deps.metrics.session_started(room)
        return {"room": room, "session": session, "created": created}

    @router.post("/{room}/{session}/end", responses=_ERRORS, openapi_extra=openapi.json_body(EndBody, required=False))
    async def end(
        room: RoomPath, session: SessionPath, request: Request, authorization: AuthHeader = None
    ) -> dict[str, object]:
        """Close the session once ffmpeg has exited and its PUTs completed (the broadcast goes on)."""
        await deps.tokens.check(room, authorization)
        raw = await read_capped(request, CONTROL_BODY_MAX_BYTES, "end body")
        reason = EndBody.model_validate_json(raw).reason if raw.strip() else "eos"
        await asyncio.to_thread(deps.service.end, room, session, reason)
        await durable(room)
        return {"room": room, "session": session, "ended": True}

    async def put_stream(request: Request) -> Response:
        """Low latency: the session's whole fragmented-MP4 stream for one rendition, split into parts."""
        p = request.path_params
        room, session, rendition = ids.room_id(p["room"]), ids.session_id(p["session"]), ids.rendition_name(
            p["rendition"])  # fmt: skip
        await deps.tokens.check(room, request.headers.get("authorization"))
        segment_s = await _run(deps, deps.service.segment_seconds, room, session)
        splitter = FragmentStream(max_piece_bytes=max(deps.max_init_bytes, STREAM_PART_MAX_BYTES))
        cutter = SegmentCutter(segment_s=segment_s)
        pending: list[bytes] = []  # the open segment's parts
        closed_idx = -1
        try:
            async for chunk in request.stream():
                for piece in splitter.feed(chunk):
                    if piece.kind == "init":
                        await _run(deps, deps.service.receive, room, session, rendition, "init.mp4", piece.data)
                    else:
                        receipt = await _run(deps, deps.parts.receive_part, room, session, rendition, piece.data,
                                             cutter)  # fmt: skip
                        pending.append(piece.data)
                        if receipt.completes_segment:
                            await _run(deps, deps.service.receive, room, session, rendition, f"{receipt.idx:06d}.m4s",
                                      b"".join(pending))  # fmt: skip
                            deps.metrics.received(room)
                            pending, closed_idx = [], receipt.idx
                    await durable(room)
            splitter.finish()
        except ClientDisconnect:
            log.info("room=%s %s/%s stream ended by the client", room, session, rendition)
        finally:
            if pending:  # the stream ended inside a segment: publish what arrived as a (short) segment
                await _run(deps, deps.service.receive, room, session, rendition, f"{closed_idx + 1:06d}.m4s",
                          b"".join(pending))  # fmt: skip
                await durable(room)
        return Response(status_code=201)

    # Served by the plain routes (first match wins) — object PUTs by IngestFastPath before any route, this route
    # only without it —; the API routes below only document them in OpenAPI.
    router.add_route("/ingest/{room}/{session}/{rendition}/stream.mp4", put_stream, methods=["PUT"])
    router.add_route("/ingest/{room}/{session}/{rendition}/{name}", object_handler(deps), methods=["PUT"])
    router.add_route("/ingest/{room}/{session}/{name:segment}", wave_handler(deps), methods=["PUT"])

    @router.put("/{room}/{session}/{rendition}/{name}", status_code=201, openapi_extra=_OBJECT_BODY,
                responses={204: {"description": "ffmpeg's own playlist: read and dropped"}, **_ERRORS})  # fmt: skip
    async def put_object_documented(
        room: RoomPath, session: SessionPath, rendition: RenditionPath, name: NamePath,
        authorization: AuthHeader = None,
    ) -> Response:  # fmt: skip  # pragma: no cover - never routed
        """An init segment, a media segment, or ffmpeg's playlist (accepted, ignored)."""
        raise AssertionError("served by the plain route above")

    @router.put("/{room}/{session}/{name:segment}", status_code=201, openapi_extra=_WAVE_BODY, responses=_ERRORS)
    async def put_wave_documented(
        room: RoomPath, session: SessionPath, name: SegmentPath, authorization: AuthHeader = None,
        spillway_wave: WaveHeader = None,
    ) -> Response:  # fmt: skip  # pragma: no cover - never routed
        """A wave: one segment of several renditions in one body (the transcoder's uploads)."""
        raise AssertionError("served by the plain route above")

    return router
