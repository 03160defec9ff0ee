"""oEmbed provider (pure): query parameters in, a `rich` response or a spec status code out.

Spec: https://oembed.com/ (§2.2 request, §2.3 response, §2.3.4.4 rich type). A consumer asks
`GET /oembed?url=<embed or room URL>&format=json[&maxwidth=N][&maxheight=N]`; Spillway answers for

    {base}/embed/{room}                 the player page
    {base}/rooms/{room}[/]              the room
    {base}/rooms/{room}/master.m3u8     its live stream
    {base}/rooms/{room}/replay.m3u8     its replay

where {base} is the public (CDN) base URL or the API base URL. Status codes follow the spec: 404 when the URL
is not one of ours or names no room, 501 when `format` is anything but json; 400 for a malformed value.
Parameters other than the four above are ignored (the spec lets consumers send provider-specific ones).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from origin.contract.cache_policy import OEMBED_MAX_AGE_S
from origin.contract.ids import ROOM_ID_PATTERN
from origin.errors import NotFoundError, UnsupportedError, ValidationError
from origin.player.page import PROVIDER_NAME, display_title, embed_url, web_origin
from origin.rooms import Room

OEMBED_VERSION = "1.0"
DEFAULT_WIDTH_PX = 480
DEFAULT_HEIGHT_PX = 200
MAX_URL_CHARS = 2048
MAX_DIMENSION_PX = 10_000
_DIMENSION = re.compile(r"^[1-9][0-9]{0,4}$")
_FORMAT = re.compile(r"^[a-z]{1,16}$")
_URL_CHARS = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces: a URL as a consumer sends it
_ROOM = ROOM_ID_PATTERN.pattern.strip("^$")
_PATHS = (
    re.compile(rf"^/embed/(?P<room>{_ROOM})$"),
    re.compile(rf"^/rooms/(?P<room>{_ROOM})/?$"),
    re.compile(rf"^/rooms/(?P<room>{_ROOM})/(?:master|replay)\.m3u8$"),
)


class FormatNotImplemented(UnsupportedError):
    """oEmbed §2.3.5: the provider cannot answer in the requested format (501)."""


@dataclass(frozen=True, kw_only=True)
class OEmbedRequest:
    url: str
    maxwidth: int | None = None
    maxheight: int | None = None


def _single(params: Sequence[tuple[str, str]], name: str) -> str | None:
    values = [v for k, v in params if k == name]
    if len(values) > 1:
        raise ValidationError(f"oEmbed parameter {name!r} given {len(values)} times")
    return values[0] if values else None


def _dimension(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    if not _DIMENSION.fullmatch(raw) or int(raw) > MAX_DIMENSION_PX:
        raise ValidationError(f"oEmbed {name} must be an integer from 1 to {MAX_DIMENSION_PX}, got {raw[:40]!r}")
    return int(raw)


def parse_request(params: Sequence[tuple[str, str]]) -> OEmbedRequest:
    """Validate the query (as ordered pairs, repeats kept). Raises ValidationError or FormatNotImplemented."""
    url = _single(params, "url")
    if url is None or not url:
        raise ValidationError("oEmbed requires the url parameter")
    if len(url) > MAX_URL_CHARS or not _URL_CHARS.fullmatch(url):
        raise ValidationError(f"oEmbed url must be at most {MAX_URL_CHARS} printable ASCII characters")
    fmt = _single(params, "format")
    if fmt is not None:
        if not _FORMAT.fullmatch(fmt):
            raise ValidationError(f"oEmbed format must be a word such as json, got {fmt[:40]!r}")
        if fmt != "json":
            raise FormatNotImplemented(f"oEmbed format {fmt!r} is not implemented: use format=json")
    return OEmbedRequest(
        url=url,
        maxwidth=_dimension(_single(params, "maxwidth"), "maxwidth"),
        maxheight=_dimension(_single(params, "maxheight"), "maxheight"),
    )


def room_for_url(url: str, *, base_urls: Sequence[str]) -> str:
    """The room id a URL of ours names. Raises NotFoundError for any other URL (oEmbed: 404)."""
    try:
        parts = urlsplit(url)
        origin = web_origin(url)
    except ValueError:
        raise NotFoundError(f"not a Spillway URL: {url[:120]!r}") from None
    known = {web_origin(b): urlsplit(b).path.rstrip("/") for b in base_urls}
    if origin not in known or parts.query or parts.fragment or parts.username or parts.password:
        raise NotFoundError(f"not a Spillway URL: {url[:120]!r}")
    base_path = known[origin]
    if not parts.path.startswith(base_path + "/"):
        raise NotFoundError(f"not a Spillway URL: {url[:120]!r}")
    path = parts.path[len(base_path) :]
    for pattern in _PATHS:
        match = pattern.fullmatch(path)
        if match:
            return match.group("room")
    raise NotFoundError(f"no oEmbed answer for {url[:120]!r}")


def frame_size(req: OEmbedRequest) -> tuple[int, int]:
    """The iframe size: the default, shrunk to maxwidth/maxheight (the player reflows down to 320 px)."""
    width = min(DEFAULT_WIDTH_PX, req.maxwidth or DEFAULT_WIDTH_PX)
    height = min(DEFAULT_HEIGHT_PX, req.maxheight or DEFAULT_HEIGHT_PX)
    return width, height


def iframe_html(*, src: str, title: str, width: int, height: int) -> str:
    """The publisher snippet (docs/embed.md): fixed height, width up to the column."""
    return (
        f'<iframe src="{html.escape(src)}" width="{width}" height="{height}" '
        f'title="{html.escape(title)}" allow="autoplay" loading="lazy" '
        'referrerpolicy="strict-origin-when-cross-origin" '
        'style="border:0;max-width:100%"></iframe>'
    )


def oembed_response(room: Room, req: OEmbedRequest, *, public_base_url: str) -> dict[str, object]:
    """oEmbed §2.3.4 response of type rich for a room."""
    width, height = frame_size(req)
    title = display_title(room)
    doc: dict[str, object] = {
        "type": "rich",
        "version": OEMBED_VERSION,
        "title": title,
        "provider_name": PROVIDER_NAME,
        "provider_url": f"{public_base_url}/",
        "cache_age": OEMBED_MAX_AGE_S,
        "html": iframe_html(src=embed_url(public_base_url, room.id), title=title, width=width, height=height),
        "width": width,
        "height": height,
    }
    if room.host:
        doc["author_name"] = room.host
    return doc
