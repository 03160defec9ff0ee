"""The AAC rendition ladder: values, the `--ladder` syntax and the ingest `start` body (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from origin.contract.ids import RENDITION_PATTERN
from origin.contract.ingest import BITRATE_MAX_BPS as MAX_BITRATE_BPS
from origin.contract.ingest import BITRATE_MIN_BPS as MIN_BITRATE_BPS
from origin.contract.ingest import RENDITIONS_MAX as MAX_RENDITIONS
from origin.contract.ingest import RenditionBody, StartBody
from transcoder.errors import ConfigError

SAMPLE_RATE_HZ = 48_000  # the ladder's one rate (the contract also accepts 44.1 kHz from other ingest clients)

_BITRATE = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")


@dataclass(frozen=True, kw_only=True)
class Rendition:
    """One AAC-LC rendition; `name` is stable across sessions (it is a path part and a playlist name)."""

    name: str
    bitrate_bps: int
    channels: int
    sample_rate_hz: int = SAMPLE_RATE_HZ

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bitrate": self.bitrate_bps,
            "channels": self.channels,
            "sample_rate": self.sample_rate_hz,
        }


DEFAULT_LADDER: tuple[Rendition, ...] = (
    Rendition(name="a48", bitrate_bps=48_000, channels=1),
    Rendition(name="a64", bitrate_bps=64_000, channels=2),
    Rendition(name="a128", bitrate_bps=128_000, channels=2),
)


def parse_bitrate(text: str) -> int:
    """'48k' → 48000, '128000' → 128000, '0.5M' → 500000."""
    match = _BITRATE.fullmatch(text.strip())
    if not match:
        raise ConfigError(f"invalid bitrate {text!r}: expected e.g. 48k or 48000")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return round(float(match.group(1)) * scale)


def format_bitrate(bitrate_bps: int) -> str:
    """The ffmpeg spelling: 48000 → '48k', 44100 → '44100'."""
    return f"{bitrate_bps // 1000}k" if bitrate_bps % 1000 == 0 else str(bitrate_bps)


def parse_ladder(text: str) -> tuple[Rendition, ...]:
    """Parse `name:bitrate:channels[,…]`, e.g. `a48:48k:1,a64:64k:2,a128:128k:2`."""
    renditions = []
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) != 3:
            raise ConfigError(f"invalid ladder entry {item.strip()!r}: expected name:bitrate:channels, e.g. a48:48k:1")
        name, bitrate, channels = (p.strip() for p in parts)
        if not channels.isdigit():
            raise ConfigError(f"invalid channel count {channels!r} in ladder entry {item.strip()!r}")
        renditions.append(Rendition(name=name, bitrate_bps=parse_bitrate(bitrate), channels=int(channels)))
    return validate_ladder(renditions)


def validate_ladder(ladder: Sequence[Rendition]) -> tuple[Rendition, ...]:
    if not ladder:
        raise ConfigError("the ladder needs at least one rendition")
    if len(ladder) > MAX_RENDITIONS:
        raise ConfigError(f"the ladder has {len(ladder)} renditions; at most {MAX_RENDITIONS} are supported")
    seen: set[str] = set()
    for r in ladder:
        if not RENDITION_PATTERN.fullmatch(r.name):
            raise ConfigError(f"invalid rendition name {r.name!r}: must match {RENDITION_PATTERN.pattern}")
        if r.name in seen:
            raise ConfigError(f"duplicate rendition name {r.name!r} in the ladder")
        seen.add(r.name)
        if not MIN_BITRATE_BPS <= r.bitrate_bps <= MAX_BITRATE_BPS:
            raise ConfigError(
                f"rendition {r.name}: bitrate {r.bitrate_bps} b/s outside {MIN_BITRATE_BPS}..{MAX_BITRATE_BPS}"
            )
        if r.channels not in (1, 2):
            raise ConfigError(f"rendition {r.name}: channels must be 1 or 2, got {r.channels}")
        if r.sample_rate_hz != SAMPLE_RATE_HZ:
            raise ConfigError(f"rendition {r.name}: sample rate must be {SAMPLE_RATE_HZ} Hz")
    return tuple(ladder)


def format_ladder(ladder: Sequence[Rendition]) -> str:
    return ",".join(f"{r.name}:{format_bitrate(r.bitrate_bps)}:{r.channels}" for r in ladder)


def start_body(
    ladder: Sequence[Rendition], segment_seconds: float, part_seconds: float | None = None
) -> dict[str, Any]:
    """JSON body of `POST /ingest/{room}/{session}/start` (docs/ingest.md), checked against the shared contract."""
    body = StartBody(
        segment_seconds=segment_seconds,
        renditions=[RenditionBody.model_validate(r.to_json()) for r in ladder],
        part_seconds=part_seconds,
    )
    return body.model_dump(exclude_none=True)


def total_bitrate_bps(ladder: Sequence[Rendition]) -> int:
    return sum(r.bitrate_bps for r in ladder)
