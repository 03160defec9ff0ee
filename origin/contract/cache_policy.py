"""The one place that owns Content-Type and Cache-Control of every published object (pure).

The nginx edge template and the CloudFormation parameters are generated from / checked against
these values (tests/cdn_config/test_ttl_agreement.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

SEGMENT_MAX_AGE_S = 31_536_000  # one year: names are unique per ingest session, so immutable is safe
LIVE_PLAYLIST_MAX_AGE_S = 1  # at most half a segment (2 s default) — AWS MediaPackage / Fastly guidance
MASTER_PLAYLIST_MAX_AGE_S = 5  # renditions rarely change; short so a new session's ladder shows quickly
REPLAY_PLAYLIST_MAX_AGE_S = 86_400  # a final VOD playlist never changes
STATUS_MAX_AGE_S = 1  # status.json: clients poll it from the CDN before calling the join endpoint
ERROR_MAX_AGE_S = 1  # 4xx/5xx at the edge: a segment that appears a moment later must not stay 404
ERROR_CACHE_CONTROL = f"public, max-age={ERROR_MAX_AGE_S}"
DOWNLOAD_MAX_AGE_S = 86_400  # replay .m4a download
# Listener pages the origin serves through the CDN (origin/player); not stored objects, same single home.
EMBED_PAGE_MAX_AGE_S = 60  # /embed/{room}: a room's title, host and allowed embedders show within a minute
OEMBED_MAX_AGE_S = 300  # /oembed JSON (also its `cache_age`)
PLAYER_ASSET_MAX_AGE_S = SEGMENT_MAX_AGE_S  # /static/player/{digest}/…: content-addressed, so immutable

MP4_CONTENT_TYPE = "audio/mp4"
PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
JSON_CONTENT_TYPE = "application/json"
VTT_CONTENT_TYPE = "text/vtt; charset=utf-8"


class ObjectKind(enum.Enum):
    SEGMENT = "segment"
    INIT = "init"
    LIVE_PLAYLIST = "live_playlist"
    MASTER_PLAYLIST = "master_playlist"
    EVENT_PLAYLIST = "event_playlist"  # the DVR playlist while live: appended every segment
    REPLAY_PLAYLIST = "replay_playlist"  # the same URL once final (VOD + ENDLIST)
    STATUS = "status"
    DOWNLOAD = "download"
    CHAPTERS_VTT = "chapters_vtt"  # the replay's chapters, written once at the end: cached like the VOD replay
    CHAPTERS_JSON = "chapters_json"


@dataclass(frozen=True, kw_only=True)
class ObjectHeaders:
    content_type: str
    cache_control: str

    @property
    def immutable(self) -> bool:
        """Never rewritten under its name (segments, parts, inits): safe to create once, cache for good."""
        return "immutable" in self.cache_control


def _public(max_age_s: int, *, immutable: bool = False) -> str:
    return f"public, max-age={max_age_s}" + (", immutable" if immutable else "")


_HEADERS: dict[ObjectKind, ObjectHeaders] = {
    ObjectKind.SEGMENT: ObjectHeaders(
        content_type=MP4_CONTENT_TYPE, cache_control=_public(SEGMENT_MAX_AGE_S, immutable=True)
    ),
    ObjectKind.INIT: ObjectHeaders(
        content_type=MP4_CONTENT_TYPE, cache_control=_public(SEGMENT_MAX_AGE_S, immutable=True)
    ),
    ObjectKind.LIVE_PLAYLIST: ObjectHeaders(
        content_type=PLAYLIST_CONTENT_TYPE, cache_control=_public(LIVE_PLAYLIST_MAX_AGE_S)
    ),
    ObjectKind.MASTER_PLAYLIST: ObjectHeaders(
        content_type=PLAYLIST_CONTENT_TYPE, cache_control=_public(MASTER_PLAYLIST_MAX_AGE_S)
    ),
    ObjectKind.EVENT_PLAYLIST: ObjectHeaders(
        content_type=PLAYLIST_CONTENT_TYPE, cache_control=_public(LIVE_PLAYLIST_MAX_AGE_S)
    ),
    ObjectKind.REPLAY_PLAYLIST: ObjectHeaders(
        content_type=PLAYLIST_CONTENT_TYPE, cache_control=_public(REPLAY_PLAYLIST_MAX_AGE_S)
    ),
    ObjectKind.STATUS: ObjectHeaders(content_type=JSON_CONTENT_TYPE, cache_control=_public(STATUS_MAX_AGE_S)),
    ObjectKind.DOWNLOAD: ObjectHeaders(content_type=MP4_CONTENT_TYPE, cache_control=_public(DOWNLOAD_MAX_AGE_S)),
    ObjectKind.CHAPTERS_VTT: ObjectHeaders(
        content_type=VTT_CONTENT_TYPE, cache_control=_public(REPLAY_PLAYLIST_MAX_AGE_S)
    ),
    ObjectKind.CHAPTERS_JSON: ObjectHeaders(
        content_type=JSON_CONTENT_TYPE, cache_control=_public(REPLAY_PLAYLIST_MAX_AGE_S)
    ),
}


def headers_for(kind: ObjectKind) -> ObjectHeaders:
    return _HEADERS[kind]
