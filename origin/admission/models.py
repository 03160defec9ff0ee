"""Pydantic models of the admission HTTP edge: strict, extra fields forbidden, every size bounded."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_REALTIME_CAP = 100_000
MAX_EMBED_ORIGINS = 32
MAX_ORIGIN_CHARS = 255
INGEST_TOKEN_PATTERN = r"^[A-Za-z0-9._~-]{24,128}$"  # RFC 6750 b64token characters minus '+' and '/'
MAX_BODY_BYTES = 16 * 1024  # PUT /v1/rooms/{room} bodies
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def embed_origin(value: str) -> str:
    """Normalise an http(s) origin (`scheme://host[:port]`, RFC 6454) or raise ValueError."""
    if len(value) > MAX_ORIGIN_CHARS:
        raise ValueError(f"origin longer than {MAX_ORIGIN_CHARS} characters")
    parts = urlsplit(value.strip().lower())
    if parts.scheme not in ("http", "https"):
        raise ValueError("origin must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise ValueError("origin must not carry credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("origin is scheme://host[:port] only: no path, query or fragment")
    host = parts.hostname or ""
    if not _HOSTNAME.fullmatch(host):
        raise ValueError("origin host must be a DNS name (IP literals other than IPv4 are not accepted)")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("origin port must be 1-65535") from exc
    if port == 0:
        raise ValueError("origin port must be 1-65535")
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    return value


def _unique_origins(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


EmbedOrigin = Annotated[str, Field(max_length=MAX_ORIGIN_CHARS), AfterValidator(embed_origin)]
Text = Annotated[str, AfterValidator(_no_control)]


class RoomBody(BaseModel):
    """PUT /v1/rooms/{room}: the whole room (a missing ingest_token keeps the room's token, or issues one)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    realtime_cap: int = Field(ge=0, le=MAX_REALTIME_CAP, description="real-time seats; 0 = HLS only")
    ingest_token: str | None = Field(None, pattern=INGEST_TOKEN_PATTERN)
    embed_origins: Annotated[list[EmbedOrigin], AfterValidator(_unique_origins)] = Field(
        default_factory=list, max_length=MAX_EMBED_ORIGINS
    )
    title: Text = Field("", max_length=200)
    host: Text = Field("", max_length=100)
