"""Strict patterns for every identifier that reaches a storage key or URL (pure)."""

from __future__ import annotations

import re

from origin.errors import ValidationError

# Lowercase DNS-label-like: safe in URLs, object keys, file names and nginx locations.
ROOM_ID_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
SESSION_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{6,62}[a-z0-9]$")
RENDITION_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
SEGMENT_NAME_PATTERN = re.compile(r"^(\d{1,9})\.m4s$")
INIT_NAME_PATTERN = re.compile(r"^init(?:_\d{1,3})?\.mp4$")
PLAYLIST_NAME_PATTERN = re.compile(r"^[a-z0-9_-]{1,32}\.m3u8$")


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValidationError(f"invalid {what} {value[:80]!r}: must match {pattern.pattern}")
    return value


def room_id(value: str) -> str:
    return _check(ROOM_ID_PATTERN, value, "room id")


def session_id(value: str) -> str:
    return _check(SESSION_ID_PATTERN, value, "session id")


def rendition_name(value: str) -> str:
    return _check(RENDITION_PATTERN, value, "rendition name")
