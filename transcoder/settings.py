"""Typed settings of one transcoder: what `run_transcoder` and the command builder take."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from origin.contract.ids import ROOM_ID_PATTERN
from origin.contract.ingest import (
    PART_SECONDS_MAX,
    PART_SECONDS_MIN,
    SEGMENT_SECONDS_DEFAULT,
    SEGMENT_SECONDS_MAX,
    SEGMENT_SECONDS_MIN,
)
from transcoder.errors import ConfigError
from transcoder.ladder import DEFAULT_LADDER, Rendition, validate_ladder
from transcoder.policy import RestartPolicy
from transcoder.source import JanusSource, SdpSource, Source

SEGMENT_SECONDS = SEGMENT_SECONDS_DEFAULT
MIN_SEGMENT_SECONDS = SEGMENT_SECONDS_MIN
MAX_SEGMENT_SECONDS = SEGMENT_SECONDS_MAX
PLAYLIST_SIZE_SEGMENTS = 3  # ffmpeg's own playlist (the origin ignores it; keep it small)


@dataclass(frozen=True, kw_only=True)
class TranscodeSettings:
    room: str
    source: Source
    origin_url: str  # e.g. http://127.0.0.1:8080 — the origin serving /ingest/…
    token: str = field(repr=False)  # the room's ingest token
    ladder: tuple[Rendition, ...] = DEFAULT_LADDER
    segment_seconds: float = SEGMENT_SECONDS
    # Low-latency HLS: each rendition goes out as one fragmented-MP4 stream of parts this long (None: segments)
    part_seconds: float | None = None
    ffmpeg_bin: str = "ffmpeg"
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    http_timeout_seconds: float = 10.0  # every call to the origin: start, end, uploads, low-latency streams
    stop_timeout_seconds: float = 15.0  # after SIGINT, wait this long before SIGTERM, then as long before SIGKILL
    status_interval_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not ROOM_ID_PATTERN.fullmatch(self.room):
            raise ConfigError(f"invalid room id {self.room!r}: must match {ROOM_ID_PATTERN.pattern}")
        url = urlsplit(self.origin_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ConfigError(f"invalid origin URL {self.origin_url!r}: expected http(s)://host[:port]")
        if not self.token or any(c in self.token for c in "\r\n"):
            raise ConfigError("an ingest token is required (--token or SPILLWAY_INGEST_TOKEN), on one line")
        if not MIN_SEGMENT_SECONDS <= self.segment_seconds <= MAX_SEGMENT_SECONDS:
            raise ConfigError(
                f"segment length {self.segment_seconds:g} s outside {MIN_SEGMENT_SECONDS:g}..{MAX_SEGMENT_SECONDS:g} s"
            )
        validate_ladder(self.ladder)
        if self.part_seconds is not None and not PART_SECONDS_MIN <= self.part_seconds <= PART_SECONDS_MAX:
            raise ConfigError(
                f"part length {self.part_seconds:g} s outside {PART_SECONDS_MIN:g}..{PART_SECONDS_MAX:g} s"
            )
        if (
            isinstance(self.source, SdpSource | JanusSource)
            and self.source.idle_timeout_seconds >= self.stop_timeout_seconds
        ):
            raise ConfigError("the RTP idle timeout must be shorter than the stop timeout (see SdpSource)")

    @property
    def origin_base(self) -> str:
        return self.origin_url.rstrip("/")
