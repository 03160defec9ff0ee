"""Storage keys: the one rule every backend applies before anything touches a path or a bucket (pure)."""

from __future__ import annotations

import re

from origin.errors import ValidationError

KEY_PART_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
_PREFIX_TAIL_PATTERN = re.compile(r"[A-Za-z0-9._-]*")
MAX_KEY_CHARS = 1024  # S3's limit (in UTF-8 bytes; keys are ASCII here)
MAX_PART_CHARS = 200  # leaves room under NAME_MAX (255) for the sidecar and temp-file decorations
_KEY_PATTERN = re.compile(rf"(?:[A-Za-z0-9._-]{{1,{MAX_PART_CHARS}}}/)*[A-Za-z0-9._-]{{1,{MAX_PART_CHARS}}}")


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative object key, else raise ValidationError.

    Rules: `/`-separated parts of `[A-Za-z0-9._-]+`, no `.`/`..` part, no empty part (so no leading,
    trailing or doubled slash), at most MAX_KEY_CHARS characters. Used by every backend.
    """
    if not isinstance(key, str) or not key:
        raise ValidationError(f"invalid storage key {key!r}: empty")
    if len(key) > MAX_KEY_CHARS:
        raise ValidationError(f"invalid storage key {key[:80]!r}...: longer than {MAX_KEY_CHARS}")
    if _KEY_PATTERN.fullmatch(key) and "/./" not in f"/{key}/" and "/../" not in f"/{key}/":
        return key  # one match for the whole key (every segment PUT validates its key)
    for part in key.split("/"):
        _check_part(key, part)  # the part to blame
    raise AssertionError(f"unreachable: {key!r}")


def validate_prefix(prefix: str) -> str:
    """Return `prefix` if it can only match valid keys' beginnings (empty is allowed), else raise."""
    if not isinstance(prefix, str):
        raise ValidationError(f"invalid storage prefix {prefix!r}")
    if not prefix:
        return prefix
    if len(prefix) > MAX_KEY_CHARS:
        raise ValidationError(f"invalid storage prefix {prefix[:80]!r}...: longer than {MAX_KEY_CHARS}")
    *dirs, tail = prefix.split("/")
    for part in dirs:
        _check_part(prefix, part)
    if not _PREFIX_TAIL_PATTERN.fullmatch(tail) or len(tail) > MAX_PART_CHARS:
        raise ValidationError(f"invalid storage prefix {prefix[:80]!r}: bad last part {tail[:80]!r}")
    return prefix


def _check_part(key: str, part: str) -> None:
    if part in (".", "..") or not KEY_PART_PATTERN.fullmatch(part) or len(part) > MAX_PART_CHARS:
        raise ValidationError(
            f"invalid storage key {key[:80]!r}: part {part[:80]!r} must match {KEY_PART_PATTERN.pattern}, "
            f"not be '.' or '..', and be at most {MAX_PART_CHARS} characters"
        )


def is_key_part(name: str) -> bool:
    if name in (".", "..") or len(name) > MAX_PART_CHARS:
        return False
    return KEY_PART_PATTERN.fullmatch(name) is not None
