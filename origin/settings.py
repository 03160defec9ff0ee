"""Origin configuration, read once from the environment (prefix SPILLWAY_) and passed down.

Every field is documented in the README's configuration table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPILLWAY_", extra="ignore")

    # Serving
    bind: str = Field("127.0.0.1:8080", description="host:port gunicorn binds")
    workers: int = Field(2, ge=1, le=64, description="gunicorn worker processes")
    public_base_url: str = Field(
        "http://127.0.0.1:8080", description="base URL listeners use to reach published objects (CDN/edge)"
    )
    api_base_url: str = Field("", description="base URL of the origin API as seen by clients; empty = public_base_url")
    admin_token: SecretStr = Field(SecretStr(""), description="bearer token for admin endpoints; empty disables them")

    # State
    state_dir: Path = Field(Path("./demo-data/state"), description="room/session state and ingest spool (local disk)")

    # Storage
    storage: Literal["filesystem", "s3"] = "filesystem"
    storage_root: Path = Field(Path("./demo-data/storage"), description="filesystem storage directory")
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_region: str | None = None
    s3_endpoint_url: str | None = None
    s3_acl: str | None = Field(None, description="canned ACL for uploads, e.g. public-read (not with CloudFront OAC)")
    s3_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="per-attempt read timeout of S3 requests (hedged writes race a slow one)"
    )
    hedge_writes: bool = Field(True, description="a slow remote storage write gets a second concurrent attempt")

    # Ingest and playlists
    max_segment_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    max_init_bytes: int = Field(64 * 1024, ge=256)
    live_window_segments: int = Field(6, ge=3, description="segments in the live sliding window (≥6 recommended)")
    session_timeout_seconds: float = Field(10.0, gt=0, description="no PUT for this long ends an ingest session")
    end_grace_seconds: float = Field(120.0, gt=0, description="no open session for this long ends the broadcast")
    max_retry_backlog: int = Field(
        3000, ge=10, description="objects per room waiting for storage before ingest answers 503"
    )
    low_latency: bool = Field(
        True, description="serve low-latency HLS (parts, blocking reload) for sessions that stream parts"
    )
    fill_gaps: bool = Field(True, description="publish silence (or the slate) while a live room's source is gone")
    fill_deadline_segments: float = Field(
        1.4, ge=1.05, le=10.0, description="a live slot this many segments past the edge's end gets filler at once"
    )
    state_retention_seconds: float = Field(
        7 * 86_400.0, ge=60, description="an ended room's journal is compacted (its replay stays) after this long"
    )
    sessions_per_minute: int = Field(12, ge=1, le=1000, description="ingest session starts per room per minute")
    slate_file: Path | None = Field(None, description="audio file looped instead of silence while the source is gone")

    @field_validator("slate_file")
    @classmethod
    def _slate_exists(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"slate file {v} does not exist")
        return v

    # Operations (docs/operations.md)
    metrics_max_rooms: int = Field(2000, ge=0, le=100_000, description="rooms with per-room series per scrape")

    # Admission
    admission_backend: Literal["embedded", "redis"] = "embedded"
    redis_url: str = "redis://127.0.0.1:6379/0"
    seat_token_secret: SecretStr = Field(SecretStr(""), description="HMAC secret shared with the SFU")
    seat_lease_seconds: float = Field(30.0, gt=0)
    join_rate_per_minute: int = Field(30, ge=1, description="join attempts per client address per minute")
    trusted_proxies: str = Field(
        "127.0.0.1/32,::1/128", description="CIDRs whose X-Forwarded-For names the client (the edge, the CDN)"
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: str) -> str:
        from origin.web.client_address import parse_networks

        parse_networks(v)  # raises ValueError with the bad entry
        return v

    # Real-time SFU (docs/sfu.md): seats enforced inside Janus AudioBridge, or LiveKit access tokens
    sfu: Literal["none", "janus", "livekit"] = Field("none", description="the SFU that enforces seats")
    janus_url: str = Field("http://127.0.0.1:8088/janus", description="Janus HTTP API as the origin reaches it")
    janus_public_url: str = Field("", description="Janus HTTP API as browsers reach it; empty = janus_url")
    janus_api_secret: SecretStr = Field(SecretStr(""), description="Janus api_secret (only if browsers need none)")
    janus_admin_key: SecretStr = Field(SecretStr(""), description="AudioBridge admin_key (create, rtp_forward)")
    janus_room_secret: SecretStr = Field(SecretStr(""), description="key of per-room secrets and speaker tokens")
    janus_timeout_seconds: float = Field(2.0, gt=0, le=30, description="per-call timeout; slower = unavailable")
    livekit_url: str = Field("", description="LiveKit URL clients connect to, e.g. wss://lk.example")
    livekit_api_key: str = Field("", description="LiveKit API key (the token issuer)")
    livekit_api_secret: SecretStr = Field(SecretStr(""), description="LiveKit API secret (signs seat tokens)")

    # Fleet (docs/deploy-aws.md): several origin instances behind one load balancer
    coordination: Literal["local", "redis"] = Field(
        "local", description="local: one host (files under state_dir); redis: a fleet sharing Redis and S3"
    )
    owner_lease_seconds: float = Field(2.0, ge=1.0, le=30.0, description="a dead owner's rooms move after this")
    redis_wait_replicas: int = Field(0, ge=0, le=5, description="replicas that acknowledge a record before 201")
    redis_spool_max_bytes: int = Field(256 * 1024 * 1024, ge=1 << 20, description="fleet-wide spool bytes in Redis")

    @model_validator(mode="after")
    def _fleet_shares_everything(self) -> Settings:
        if self.coordination == "redis" and (self.storage != "s3" or self.admission_backend != "redis"):
            raise ValueError("SPILLWAY_COORDINATION=redis needs SPILLWAY_STORAGE=s3 and SPILLWAY_ADMISSION_BACKEND="
                             "redis: every instance must see the same objects, rooms and seats")  # fmt: skip
        return self

    @field_validator("public_base_url", "api_base_url", "janus_url", "janus_public_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v.rstrip("/")

    @property
    def api_url(self) -> str:
        return self.api_base_url or self.public_base_url
