"""Live media playlists served by the origin: low-latency HLS with blocking reload (rfc8216bis §6.2.5.2).

    GET /rooms/{room}/live/{rendition}.m3u8[?_HLS_msn=M[&_HLS_part=P]][&_HLS_skip=YES|v2]

A room whose session streams parts has its current playlists on the board (publish/lowlatency.py): the
answer is the board's text, at once or, with `_HLS_msn`, once segment M (or its part P) is in it — held at
most 3 target durations (then 503), 400 for `_HLS_part` without `_HLS_msn` or M more than 2 past the edge.
A held request costs a coroutine and an asyncio.Event, no thread; the owner's doorbell ring wakes it, in
whichever worker it waits. A room without parts gets the standard playlist from storage (no blocking).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from origin.broadcast.playlist_ll import Edge, edge_of
from origin.broadcast.publish.lowlatency import PlaylistBoard
from origin.contract import ids, layout
from origin.contract.cache_policy import LIVE_PLAYLIST_MAX_AGE_S, PLAYLIST_CONTENT_TYPE, ObjectKind, headers_for
from origin.errors import NotFoundError, UnavailableError, ValidationError
from origin.storage.base import Storage
from origin.storage.filesystem import FilesystemStorage
from origin.web import errors
from origin.web.objects import serve

RoomPath = Annotated[str, Path(pattern=ids.ROOM_ID_SCHEMA, max_length=64)]
RenditionPath = Annotated[str, Path(pattern=ids.RENDITION_SCHEMA, max_length=32)]

HOLD_TARGET_DURATIONS = 3
MAX_AHEAD_MSN = 2
_TARGET = re.compile(r"^#EXT-X-TARGETDURATION:(\d+)$", re.M)


@dataclass(kw_only=True)
class Waiters:
    """One asyncio.Event per room that every held request of the room awaits; a ring sets and replaces it."""

    _events: dict[str, asyncio.Event] = field(default_factory=dict)

    def event(self, room: str) -> asyncio.Event:
        ev = self._events.get(room)
        if ev is None:
            ev = self._events[room] = asyncio.Event()
        return ev

    def notify(self, room: str) -> None:
        ev = self._events.pop(room, None)
        if ev is not None:
            ev.set()


def satisfied(edge: Edge, msn: int, part: int | None) -> bool:
    if edge.last_msn >= msn:
        return True
    return part is not None and edge.last_msn == msn - 1 and edge.next_parts > part


def build_router(*, board: PlaylistBoard, storage: Storage, waiters: Waiters, clock: Callable[[], float]) -> APIRouter:
    router = APIRouter(tags=["listeners"])
    cache = {"Cache-Control": f"public, max-age={LIVE_PLAYLIST_MAX_AGE_S}"}

    async def standard(room: str, rendition: str, request: Request) -> Response:
        """A room without parts: the stored playlist (with conditional requests when the storage is local)."""
        if isinstance(storage, FilesystemStorage):
            answer = await serve(storage, request, f"{room}/live/{rendition}.m3u8")
            if answer.status_code == 404:  # this route's own detail, in the one error shape
                raise NotFoundError(f"no live playlist for {room}/{rendition}", room=room)
            return answer
        key = layout.live_playlist(room, rendition)
        try:
            body = await run_in_threadpool(storage.get, key)
        except KeyError:
            raise NotFoundError(f"no live playlist for {room}/{rendition}", room=room) from None
        headers = headers_for(ObjectKind.LIVE_PLAYLIST)
        return Response(body, media_type=headers.content_type, headers={"Cache-Control": headers.cache_control})

    @router.api_route("/rooms/{room}/live/{rendition}.m3u8", methods=["GET", "HEAD"], response_class=Response,
                      responses={200: {"content": {PLAYLIST_CONTENT_TYPE: {}}, "description": "the media playlist"},
                                 **errors.responses(400, 404, 503)})  # fmt: skip
    async def live_playlist(
        room: RoomPath, rendition: RenditionPath, request: Request,
        _HLS_msn: Annotated[int | None, Query(ge=0)] = None, _HLS_part: Annotated[int | None, Query(ge=0)] = None,
        _HLS_skip: Annotated[Literal["YES", "v2"] | None, Query()] = None,
    ) -> Response:  # fmt: skip
        """The room's live media playlist; low-latency rooms answer blocking reloads."""
        msn, part, skip_arg = _HLS_msn, _HLS_part, _HLS_skip
        if part is not None and msn is None:
            raise ValidationError("_HLS_part needs _HLS_msn")
        skip = skip_arg is not None
        event = waiters.event(room)  # taken before the read: a ring in between is not missed
        text = await board.aread(room, rendition, skip=skip)
        if text is None:
            return await standard(room, rendition, request)
        if msn is not None:
            edge = edge_of(text)
            if msn > edge.last_msn + MAX_AHEAD_MSN:
                raise ValidationError(f"_HLS_msn {msn} is more than {MAX_AHEAD_MSN} past the last segment "
                                      f"{edge.last_msn}")  # fmt: skip
            found = _TARGET.search(text)
            deadline = clock() + HOLD_TARGET_DURATIONS * (int(found.group(1)) if found else 1)
            while not satisfied(edge, msn, part):
                remaining = deadline - clock()
                if remaining <= 0:
                    raise UnavailableError(f"segment {msn} part {part} not published within the hold", room=room)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), timeout=min(remaining, 0.5))
                event = waiters.event(room)
                fresh = await board.aread(room, rendition, skip=skip)
                if fresh is None:  # the broadcast ended: the standard playlist has the end
                    return await standard(room, rendition, request)
                text, edge = fresh, edge_of(fresh)
        return Response(text, media_type=PLAYLIST_CONTENT_TYPE, headers=cache)

    return router
