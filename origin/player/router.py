"""HTTP edge of the listener experience: the embed page, oEmbed and the player's static files.

    GET /embed/{room}                        the player page (HTML); 400 bad id, 404 unknown room (HTML too)
    GET /oembed?url=…&format=json            oEmbed (JSON); 400 / 404 / 501 as the oEmbed spec says
    GET /static/player/{digest}/{name}       player.js, player.css, vendored hls.js (immutable)

The nginx edge and CloudFront route these paths to the origin and cache them as the Cache-Control here says
(origin.contract.cache_policy.py). Room lookups run in the threadpool (the registry may be SQLite or Redis).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from origin.contract import ids
from origin.contract.cache_policy import ERROR_CACHE_CONTROL, OEMBED_MAX_AGE_S
from origin.errors import NotFoundError, OriginError, ValidationError
from origin.player import oembed
from origin.player.assets import ASSET_CACHE_CONTROL, URL_PREFIX, PlayerAssets
from origin.player.page import (
    HTML_CONTENT_TYPE,
    TEMPLATE_PATH,
    Realtime,
    embed_page,
    page_headers,
    render_embed_page,
    render_error_page,
)
from origin.rooms import Room
from origin.web import errors

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True, kw_only=True)
class PlayerDeps:
    get_room: Callable[[str], Room | None]  # blocking; RoomRegistry.get
    public_base_url: str  # where listeners fetch objects and pages (the CDN/edge)
    api_url: str  # the origin API as clients see it; oEmbed also accepts URLs under it
    realtime: Realtime | None = None  # seats over WebRTC (SPILLWAY_SFU=janus): the player joins the room
    sfu_urls: tuple[str, ...] = ()  # what the page must be allowed to connect to for the SFU (CSP)


def build_router(deps: PlayerDeps, assets: PlayerAssets | None = None) -> APIRouter:
    assets = assets or PlayerAssets()
    template = TEMPLATE_PATH.read_text()
    router = APIRouter()
    base = deps.public_base_url

    def _html_error(status: int, heading: str, detail: str) -> Response:
        body = render_error_page(status=status, heading=heading, detail=detail, stylesheet_url=assets.url("player.css"))
        headers = page_headers(public_base_url=base, embed_origins=(), ok=False)
        return Response(body, status_code=status, media_type=HTML_CONTENT_TYPE, headers=headers)

    @router.api_route("/embed/{room}", methods=["GET", "HEAD"], include_in_schema=False)
    async def embed(room: str) -> Response:
        try:
            ids.room_id(room)
        except ValidationError:
            return _html_error(400, "Not a room address", "This link does not name a Spillway room.")
        try:
            cfg = await run_in_threadpool(deps.get_room, room)
        except OriginError as exc:
            logger.warning("room %s: embed page unavailable: %s", room, exc)
            return _html_error(503, "Temporarily unavailable", "The player could not load. Try again shortly.")
        if cfg is None:
            return _html_error(404, "Room not found", "There is no room at this address.")
        page = embed_page(cfg, public_base_url=base, assets=assets.page_urls(), realtime=deps.realtime)
        connect = (deps.api_url, *deps.sfu_urls) if page.realtime is not None else ()
        headers = page_headers(public_base_url=base, embed_origins=cfg.embed_origins, ok=True, connect_urls=connect)
        return Response(render_embed_page(page, template), media_type=HTML_CONTENT_TYPE, headers=headers)

    def _json(doc: dict[str, object], status: int, cache_control: str) -> Response:
        headers = {
            "Cache-Control": cache_control,
            "Access-Control-Allow-Origin": "*",  # oEmbed data is public; browsers may ask directly
            "X-Content-Type-Options": "nosniff",
        }
        body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        return Response(body, status_code=status, media_type=JSON_CONTENT_TYPE, headers=headers)

    @router.get("/oembed", include_in_schema=False)
    async def oembed_endpoint(request: Request) -> Response:
        try:
            req = oembed.parse_request(request.query_params.multi_items())
            room_id = oembed.room_for_url(req.url, base_urls=(base, deps.api_url))
            cfg = await run_in_threadpool(deps.get_room, room_id)
            if cfg is None:
                raise NotFoundError(f"room {room_id!r} does not exist", room=room_id)
        except OriginError as exc:  # the one error shape; oEmbed consumers may read it cross-origin
            return errors.error_response(errors.status_of(exc), str(exc), headers={
                "Cache-Control": ERROR_CACHE_CONTROL, "Access-Control-Allow-Origin": "*",
                "X-Content-Type-Options": "nosniff"})  # fmt: skip
        doc = oembed.oembed_response(cfg, req, public_base_url=base)
        return _json(doc, 200, f"public, max-age={OEMBED_MAX_AGE_S}")

    @router.api_route(URL_PREFIX + "/{digest}/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    async def static_asset(digest: str, name: str) -> Response:
        asset = assets.lookup(digest, name)
        if asset is None:
            return errors.error_response(404, "no such asset", headers={"Cache-Control": ERROR_CACHE_CONTROL})
        headers = {
            "Cache-Control": ASSET_CACHE_CONTROL,
            "X-Content-Type-Options": "nosniff",
            "Access-Control-Allow-Origin": "*",
        }
        return Response(asset.body, media_type=asset.content_type, headers=headers)

    return router
