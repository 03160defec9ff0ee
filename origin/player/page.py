"""The embed page as data (pure): a room and the public URLs in, HTML text and response headers out.

Everything a listener's browser fetches comes from `public_base_url` (the CDN/edge): status.json, the live
and replay playlists, the download. The page itself reaches the browser through the same CDN (it routes
`/embed/*`, `/oembed` and `/static/*` to the origin), so `'self'` covers the player's own assets.

Embedding is governed by `Content-Security-Policy: frame-ancestors` (CSP Level 2 §7.7): the room's allowed
embed origins plus `'self'`. No X-Frame-Options is sent: browsers that know frame-ancestors ignore it, and
older ones would read it as a stricter, contradicting rule.
"""

from __future__ import annotations

import html
import json
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from origin.contract import layout
from origin.contract.cache_policy import EMBED_PAGE_MAX_AGE_S, ERROR_MAX_AGE_S
from origin.rooms import Room

TEMPLATE_PATH = Path(__file__).with_name("templates") / "embed.html"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
PROVIDER_NAME = "Spillway"

# Player behaviour the page hands to player.js (see docs/embed.md and docs/performance.md "Listener delay").
# status.json polling per player state (±20 % jitter in the page). status.json has a 1 s TTL at the CDN; every
# poll is a CDN request (600k listeners at 3 s: 200k requests/s, all from the edge's cache): poll fastest while
# waiting for the start (a flash crowd wants the first second), slower while live (a playing page also learns
# the end from the playlist's EXT-X-ENDLIST) and not at all in replay once the download link is known.
STATUS_POLL_S = {"waiting": 3.0, "live": 5.0, "replay": 5.0}
LIVE_SYNC_DURATION_COUNT = 3  # hls.js: start/keep this many target durations behind the live edge
CROSSFADE_MS = 300  # HLS ↔ WebRTC switch: both play, one fades out as the other fades in
SEAT_RETRY_AFTER_ERROR_S = 15.0  # after an SFU failure (ICE, refusal, sfu_unavailable), stay on HLS this long
SPEAKER_SETTLE_MS = 800  # "Now speaking" changes (and is announced) only once the new set held this long
# hls.js's own catch-up off: player.js keeps the target (see KEEP there; hls.js's needs > 1 s buffered).
MAX_LIVE_SYNC_PLAYBACK_RATE = 1.0
LIVE_SYNC_ON_STALL_INCREASE_S = 0.25  # hls.js adds this to its target per stall (default 1 s: a whole LL budget)


@dataclass(frozen=True, kw_only=True)
class EmbedPage:
    """What one room's embed page shows and where its player fetches from."""

    room: str
    title: str
    host: str
    embed_url: str
    oembed_url: str
    status_url: str
    hls_url: str
    replay_url: str
    chapters_url: str
    stylesheet_url: str
    hls_js_url: str
    player_js_url: str
    realtime: Realtime | None = None  # seats over WebRTC, when the origin enforces them in an SFU
    janus_js_url: str = ""
    realtime_js_url: str = ""


@dataclass(frozen=True, kw_only=True)
class Realtime:
    """What the player needs to take seats: the SFU kind it can join (only Janus from this page)."""

    kind: str = "janus"
    ice_servers: tuple[str, ...] = ()  # STUN/TURN URLs for the browser; none on a reachable Janus (ICE-full)


@dataclass(frozen=True, kw_only=True)
class AssetUrls:
    stylesheet: str
    hls_js: str
    player_js: str
    janus_js: str = ""
    realtime_js: str = ""


def embed_url(public_base_url: str, room: str) -> str:
    return f"{public_base_url}/embed/{room}"


def oembed_url(public_base_url: str, url: str) -> str:
    return f"{public_base_url}/oembed?" + urlencode({"url": url, "format": "json"})


def display_title(room: Room) -> str:
    return room.title or f"Live audio: {room.id}"


def embed_page(
    room: Room, *, public_base_url: str, assets: AssetUrls, realtime: Realtime | None = None
) -> EmbedPage:
    page_url = embed_url(public_base_url, room.id)
    return EmbedPage(
        room=room.id,
        title=display_title(room),
        host=room.host,
        embed_url=page_url,
        oembed_url=oembed_url(public_base_url, page_url),
        status_url=f"{public_base_url}/{layout.status(room.id)}",
        hls_url=f"{public_base_url}/{layout.master_playlist(room.id)}",
        replay_url=f"{public_base_url}/{layout.replay_master(room.id)}",
        chapters_url=f"{public_base_url}/{layout.chapters_json(room.id)}",
        stylesheet_url=assets.stylesheet,
        hls_js_url=assets.hls_js,
        player_js_url=assets.player_js,
        realtime=realtime if room.realtime_cap > 0 else None,
        janus_js_url=assets.janus_js,
        realtime_js_url=assets.realtime_js,
    )


def _script_json(value: object) -> str:
    """JSON safe inside a <script> data block: no `<`, `>` or `&` can end or confuse it."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def player_config(page: EmbedPage) -> dict[str, object]:
    """The JSON player.js reads (#spillway-config)."""
    return {
        "room": page.room,
        "statusUrl": page.status_url,
        "hlsUrl": page.hls_url,
        "replayUrl": page.replay_url,
        "chaptersUrl": page.chapters_url,
        "speakerSettleMs": SPEAKER_SETTLE_MS,
        "statusPollSeconds": dict(STATUS_POLL_S),
        "realtime": None
        if page.realtime is None
        else {
            "kind": page.realtime.kind,
            "iceServers": [{"urls": url} for url in page.realtime.ice_servers],
            "crossfadeMs": CROSSFADE_MS,
            "retryAfterErrorSeconds": SEAT_RETRY_AFTER_ERROR_S,
        },
        "hlsConfig": {
            "enableWorker": False,  # fMP4 audio needs no transmuxing; no blob: worker for the CSP to allow
            "lowLatencyMode": True,  # parts and blocking reload when the room streams them (LL-HLS)
            # No liveSyncDurationCount (nor liveMaxLatencyDurationCount, which hls.js refuses without it): set at
            # all, hls.js would use it instead of a low-latency room's PART-HOLD-BACK. Its default, 3 target
            # durations, is what standard rooms get (LIVE_SYNC_DURATION_COUNT).
            "maxLiveSyncPlaybackRate": MAX_LIVE_SYNC_PLAYBACK_RATE,
            "liveSyncOnStallIncrease": LIVE_SYNC_ON_STALL_INCREASE_S,
            "backBufferLength": 30,
        },
    }


def render_embed_page(page: EmbedPage, template: str) -> str:
    """Fill the page template; every value is HTML-escaped (attribute-safe) or script-block-safe JSON."""
    esc = html.escape
    return string.Template(template).substitute(
        title=esc(page.title),
        host=esc(page.host),
        host_hidden="" if page.host else " hidden",
        embed_url=esc(page.embed_url),
        oembed_url=esc(page.oembed_url),
        hls_url=esc(page.hls_url),
        stylesheet_url=esc(page.stylesheet_url),
        hls_js_url=esc(page.hls_js_url),
        player_js_url=esc(page.player_js_url),
        realtime_js_tags=(
            f'<script src="{esc(page.janus_js_url)}" defer></script>\n'
            f'<script src="{esc(page.realtime_js_url)}" defer></script>\n'
            if page.realtime is not None and page.realtime.kind == "janus" and page.janus_js_url
            else ""
        ),
        config_json=_script_json(player_config(page)),
    )


def render_error_page(*, status: int, heading: str, detail: str, stylesheet_url: str) -> str:
    """A small, clear page for a bad or unknown room (still framable, still styled)."""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(heading)}</title>\n"
        '<link rel="icon" href="data:,">\n'
        f'<link rel="stylesheet" href="{html.escape(stylesheet_url)}">\n'
        "</head>\n<body>\n"
        f'<main class="player error-page" data-status="{status}">\n'
        f'  <h1 class="title">{html.escape(heading)}</h1>\n'
        f'  <p class="message" role="alert">{html.escape(detail)}</p>\n'
        "</main>\n</body>\n</html>\n"
    )


def web_origin(url: str) -> str:
    """`scheme://host[:port]` of an absolute http(s) URL (RFC 6454 serialisation, default port dropped)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url[:120]!r}")
    default = 443 if parts.scheme == "https" else 80
    port = parts.port
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def frame_ancestors(embed_origins: Sequence[str]) -> str:
    """The frame-ancestors source list: 'self' plus each allowed embed origin (already normalised)."""
    return " ".join(["'self'", *dict.fromkeys(embed_origins)])


def content_security_policy(
    *, public_base_url: str, embed_origins: Sequence[str], connect_urls: Sequence[str] = ()
) -> str:
    """`connect_urls`: the API (join, heartbeats) and the SFU the player calls, beside the media origin."""
    media = web_origin(public_base_url)
    connect = " ".join(dict.fromkeys(["'self'", media, *(web_origin(url) for url in connect_urls)]))
    directives = [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        f"connect-src {connect}",
        # data: for hls.js's metadata <track> (src "data:,WEBVTT"), which carries the timed-metadata cues.
        f"media-src 'self' {media} blob: data:",
        "base-uri 'none'",
        "form-action 'none'",
        f"frame-ancestors {frame_ancestors(embed_origins)}",
    ]
    return "; ".join(directives)


def page_headers(
    *, public_base_url: str, embed_origins: Sequence[str], ok: bool, connect_urls: Sequence[str] = ()
) -> dict[str, str]:
    """Response headers for an embed page (ok) or its error page (short TTL: the room may appear soon)."""
    max_age = EMBED_PAGE_MAX_AGE_S if ok else ERROR_MAX_AGE_S
    return {
        "Content-Security-Policy": content_security_policy(
            public_base_url=public_base_url, embed_origins=embed_origins, connect_urls=connect_urls
        ),
        "Cache-Control": f"public, max-age={max_age}",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }
