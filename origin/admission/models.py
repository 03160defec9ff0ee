"""Pydantic models of the admission HTTP edge: strict, extra fields forbidden, every size bounded."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from origin.contract.numbers import Integer

MAX_REALTIME_CAP = 100_000
MAX_EMBED_ORIGINS = 32
MAX_ORIGIN_CHARS = 255
INGEST_TOKEN_PATTERN = r"^[A-Za-z0-9._~-]{24,128}$"  # RFC 6750 b64token characters minus '+' and '/'
MAX_BODY_BYTES = 16 * 1024  # PUT /v1/rooms/{room} bodies

# An embed origin, exactly (the OpenAPI schema carries this pattern, so what it admits is what is accepted):
# http(s)://host[:port][/], case-insensitive, where host is a dotted-quad IPv4 address in canonical form or a
# DNS name whose last label is not all digits. That refuses the other spellings of IPv4 that browsers and
# resolvers accept (`127.1`, `0x7f.0.0.1`, `2130706433`, `127.0.0.01`) and IPv6 literals.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = rf"(?![0-9]+(?![A-Za-z0-9-])){_LABEL}"
_DNS = rf"(?=[A-Za-z0-9.-]{{1,253}}(?![A-Za-z0-9.-]))(?:{_LABEL}\.)*{_TLD}"
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
EMBED_ORIGIN_PATTERN = rf"^[Hh][Tt][Tt][Pp][Ss]?://(?:{_IPV4}|{_DNS})(?::{_PORT})?/?$"
_EMBED_ORIGIN = re.compile(EMBED_ORIGIN_PATTERN, re.ASCII)

# Characters a title or host name must not carry: controls (Cc), format characters (Cf: bidi overrides such as
# U+202E, zero-width characters, tags), line and paragraph separators (Zl, Zp), as of Unicode 15
# (tests/origin/admission/test_models.py checks the set against the running Python's tables). Lone surrogates
# (Cs) never get this far: the JSON parser refuses them.
_REFUSED = (
    "\\x00-\\x1f\\x7f-\\x9f\\xad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e"
    "\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f"
)
TEXT_PATTERN = f"^[^{_REFUSED}]*$"
_TEXT = re.compile(TEXT_PATTERN)


def embed_origin(value: str) -> str:
    """Normalise an http(s) origin (`scheme://host[:port]`, RFC 6454) or raise ValueError."""
    if len(value) > MAX_ORIGIN_CHARS:
        raise ValueError(f"origin longer than {MAX_ORIGIN_CHARS} characters")
    if not _EMBED_ORIGIN.fullmatch(value):
        raise ValueError(
            "origin must be http(s)://host[:port]: a DNS name or a dotted-quad IPv4 address, no path, query,"
            " credentials or other IP spelling"
        )
    parts = urlsplit(value.lower())
    default = 443 if parts.scheme == "https" else 80
    port = parts.port
    return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port not in (None, default) else "")


def _no_control(value: str) -> str:
    if not _TEXT.fullmatch(value):
        raise ValueError("control, format (bidi, zero-width) and separator characters are not allowed")
    return value


def _unique_origins(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


EmbedOrigin = Annotated[
    str, Field(max_length=MAX_ORIGIN_CHARS, json_schema_extra={"pattern": EMBED_ORIGIN_PATTERN}),
    AfterValidator(embed_origin),
]  # fmt: skip
Text = Annotated[str, Field(json_schema_extra={"pattern": TEXT_PATTERN}), AfterValidator(_no_control)]


class RoomBody(BaseModel):
    """PUT /v1/rooms/{room}: the whole room (a missing ingest_token keeps the room's token, or issues one)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    realtime_cap: Integer = Field(ge=0, le=MAX_REALTIME_CAP, description="real-time seats; 0 = HLS only")
    ingest_token: str | None = Field(None, pattern=INGEST_TOKEN_PATTERN)
    embed_origins: Annotated[list[EmbedOrigin], AfterValidator(_unique_origins)] = Field(
        default_factory=list, max_length=MAX_EMBED_ORIGINS
    )
    title: Text = Field("", max_length=200)
    host: Text = Field("", max_length=100)
