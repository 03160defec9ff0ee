"""Ingest session ids: time-sortable and random, new for every ffmpeg run (pure)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from origin.contract.ids import SESSION_ID_PATTERN
from transcoder.errors import ConfigError

RANDOM_HEX_CHARS = 8


def session_id(now: datetime, random_hex: str) -> str:
    """`20261126t090301z-3f9a1c0d`: UTC second (sorts by time), then randomness (unique within a second)."""
    if now.tzinfo is None:
        raise ConfigError("session ids need an aware datetime")
    value = f"{now.astimezone(UTC):%Y%m%dt%H%M%Sz}-{random_hex.lower()}"
    if not SESSION_ID_PATTERN.fullmatch(value):
        raise ConfigError(f"generated session id {value!r} does not match {SESSION_ID_PATTERN.pattern}")
    return value


def random_hex(chars: int = RANDOM_HEX_CHARS) -> str:
    return secrets.token_hex((chars + 1) // 2)[:chars]
