"""Strict patterns for every identifier that reaches a storage key, a file name or a URL (pure).

ASCII only: Python's `\\d` and `[^…]` classes match Unicode digits and letters (Arabic-Indic digits would be
renumbered by `int()`), so every class is spelled out and every pattern compiled with re.ASCII.
"""

from __future__ import annotations

import re

from origin.errors import ValidationError

# Lowercase DNS-label-like: safe in URLs, object keys, file names and nginx locations.
ROOM_ID_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$", re.ASCII)
SESSION_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{6,62}[a-z0-9]$", re.ASCII)
RENDITION_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$", re.ASCII)
LEASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$", re.ASCII)
SEGMENT_NAME_PATTERN = re.compile(r"^([0-9]{1,9})\.m4s$", re.ASCII)
INIT_NAME_PATTERN = re.compile(r"^init(?:_[0-9]{1,3})?\.mp4$", re.ASCII)
PLAYLIST_NAME_PATTERN = re.compile(r"^[a-z0-9_-]{1,32}\.m3u8$", re.ASCII)
STREAM_NAME_PATTERN = re.compile(r"^stream\.mp4$", re.ASCII)

# The same patterns without anchors, for OpenAPI path parameters (JSON Schema `pattern` is unanchored).
ROOM_ID_SCHEMA = ROOM_ID_PATTERN.pattern
SESSION_ID_SCHEMA = SESSION_ID_PATTERN.pattern
RENDITION_SCHEMA = RENDITION_PATTERN.pattern
LEASE_ID_SCHEMA = LEASE_ID_PATTERN.pattern
OBJECT_NAME_SCHEMA = r"^(?:[0-9]{1,9}\.m4s|init(?:_[0-9]{1,3})?\.mp4|stream\.mp4|[a-z0-9_-]{1,32}\.m3u8)$"


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        shown = value[:80] if isinstance(value, str) else type(value).__name__
        raise ValidationError(f"invalid {what} {shown!r}: must match {pattern.pattern}")
    return value


def room_id(value: str) -> str:
    return _check(ROOM_ID_PATTERN, value, "room id")


def session_id(value: str) -> str:
    return _check(SESSION_ID_PATTERN, value, "session id")


def rendition_name(value: str) -> str:
    return _check(RENDITION_PATTERN, value, "rendition name")


def lease_id(value: str) -> str:
    return _check(LEASE_ID_PATTERN, value, "lease id")
