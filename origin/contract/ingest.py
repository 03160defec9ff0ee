"""The ingest calls' bodies and limits (docs/ingest.md) — the transcoder builds them, the origin enforces them.

    POST /ingest/{room}/{session}/start            StartBody   (JSON, ≤ CONTROL_BODY_MAX_BYTES)
    PUT  /ingest/{room}/{session}/{rendition}/…    init (≤ INIT_MAX_BYTES), segments, ffmpeg's playlist
    PUT  /ingest/{room}/{session}/NNNNNN.m4s       a wave: segment NNNNNN of several renditions in one body,
                                                   framed by the WAVE_HEADER (`a48=8123, a64=10456`)
    PUT  /ingest/{room}/{session}/{rendition}/stream.mp4   low latency: one chunked fragmented-MP4 stream
                                                   (ftyp+moov, then a moof+mdat per part), for the session
    POST /ingest/{room}/{session}/end              EndBody     (JSON, optional)
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from origin.contract.ids import RENDITION_PATTERN, RENDITION_SCHEMA
from origin.contract.numbers import Integer, IntegralLiteral
from origin.errors import BodyTooLargeError, ValidationError

SEGMENT_SECONDS_MIN = 0.2
SEGMENT_SECONDS_MAX = 10.0
SEGMENT_SECONDS_DEFAULT = 1.0  # 47 AAC frames at 48 kHz; listeners ~3.7 s behind live (docs/performance.md)
RENDITIONS_MAX = 8
BITRATE_MIN_BPS = 8_000
BITRATE_MAX_BPS = 512_000
SAMPLE_RATES_HZ = (44_100, 48_000)
CHANNELS = (1, 2)
AAC_FRAME_SAMPLES = 1024  # AAC-LC: every access unit is 1024 samples, and every one is a sync sample

CONTROL_BODY_MAX_BYTES = 4096  # start and end bodies; refused with 413 before parsing
INIT_MAX_BYTES = 64 * 1024
SEGMENT_MAX_BYTES = 8 * 1024 * 1024
PLAYLIST_MAX_BYTES = 256 * 1024  # ffmpeg's own playlist: read and dropped
PART_SECONDS_MIN = 0.1
PART_SECONDS_MAX = 0.5
PART_SECONDS_DEFAULT = 0.2  # ffmpeg cuts a fragment once it reaches this: 10 AAC frames (213 ms) at 48 kHz
STREAM_PART_MAX_BYTES = 256 * 1024  # one moof+mdat of a stream
STREAM_NAME = "stream.mp4"
# A segment index more than this far past the session's highest one is refused (400): a gap costs O(1),
# but an attacker's 999999999.m4s must not make the session's next real segment wait for it.
INDEX_LOOKAHEAD_MAX = 64
# A wave's framing: its renditions' names and byte counts, in body order. One request per segment of the ladder
# instead of one per rendition: the origin's cost per request (HTTP, auth, durability wait, ring) is paid once.
WAVE_HEADER = "spillway-wave"
WAVE_HEADER_MAX_CHARS = 512


class RenditionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(pattern=RENDITION_SCHEMA)
    bitrate: Integer = Field(ge=BITRATE_MIN_BPS, le=BITRATE_MAX_BPS, description="nominal bits per second")
    channels: Annotated[Literal[1, 2], IntegralLiteral]
    sample_rate: Annotated[Literal[44_100, 48_000], IntegralLiteral]


class StartBody(BaseModel):
    """Opens an ingest session and declares its ladder (one ffmpeg run = one session)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    segment_seconds: float = Field(ge=SEGMENT_SECONDS_MIN, le=SEGMENT_SECONDS_MAX)
    renditions: list[RenditionBody] = Field(min_length=1, max_length=RENDITIONS_MAX)
    part_seconds: float | None = Field(
        None, ge=PART_SECONDS_MIN, le=PART_SECONDS_MAX,
        description="low-latency HLS: the session sends stream.mp4 fragments of about this length (parts)",
    )  # fmt: skip

    @field_validator("renditions")
    @classmethod
    def _unique_names(cls, v: list[RenditionBody]) -> list[RenditionBody]:
        if len({r.name for r in v}) != len(v):
            raise ValueError("rendition names must be unique")
        return v


EndReason = Literal["eos", "signal", "crash"]


class EndBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reason: EndReason = "eos"


def format_wave(parts: list[tuple[str, int]]) -> str:
    """The WAVE_HEADER value for (rendition, byte count) pairs in body order."""
    return ", ".join(f"{name}={size}" for name, size in parts)


def parse_wave(value: str | None, *, max_part_bytes: int) -> list[tuple[str, int]]:
    """A WAVE_HEADER value → (rendition, byte count) pairs; ValidationError (400) for anything else."""
    if value is None:
        raise ValidationError(f"a wave needs its {WAVE_HEADER} header: rendition=bytes, comma-separated")
    if len(value) > WAVE_HEADER_MAX_CHARS:
        raise ValidationError(f"{WAVE_HEADER} is longer than {WAVE_HEADER_MAX_CHARS} characters")
    parts: list[tuple[str, int]] = []
    for item in value.split(","):
        name, eq, size = item.strip().partition("=")
        if not eq or not RENDITION_PATTERN.fullmatch(name) or not (size.isascii() and size.isdigit()):
            raise ValidationError(f"{WAVE_HEADER} item {item.strip()[:40]!r}: expected rendition=bytes")
        if int(size) > max_part_bytes:
            raise BodyTooLargeError(f"{WAVE_HEADER}: {name} declares {size[:12]} bytes, over the {max_part_bytes}-byte"
                                    " cap")  # fmt: skip
        if int(size) == 0:
            raise ValidationError(f"{WAVE_HEADER}: {name} declares 0 bytes")
        parts.append((name, int(size)))
    if len(parts) > RENDITIONS_MAX or len({name for name, _ in parts}) != len(parts):
        raise ValidationError(f"{WAVE_HEADER}: at most {RENDITIONS_MAX} renditions, each named once")
    return parts


def split_wave(framing: list[tuple[str, int]], body: bytes) -> list[tuple[str, bytes]]:
    """A wave's body cut by its parsed framing into (rendition, bytes); ValidationError if the sizes do not add up."""
    if len(body) != sum(size for _, size in framing):
        raise ValidationError(f"wave body is {len(body)} bytes; {WAVE_HEADER} declares "
                              f"{sum(size for _, size in framing)}")  # fmt: skip
    pieces, at = [], 0
    for rendition, size in framing:
        pieces.append((rendition, body[at:at + size]))
        at += size
    return pieces
