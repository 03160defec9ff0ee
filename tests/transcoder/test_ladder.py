from __future__ import annotations

import pytest

from transcoder.errors import ConfigError
from transcoder.ladder import (
    DEFAULT_LADDER,
    Rendition,
    format_ladder,
    parse_bitrate,
    parse_ladder,
    start_body,
)


def test_default_ladder_names_and_syntax_round_trip() -> None:
    assert [r.name for r in DEFAULT_LADDER] == ["a48", "a64", "a128"]
    assert format_ladder(DEFAULT_LADDER) == "a48:48k:1,a64:64k:2,a128:128k:2"
    assert parse_ladder("a48:48k:1,a64:64k:2,a128:128k:2") == DEFAULT_LADDER


def test_parse_bitrate_units() -> None:
    assert parse_bitrate("48k") == 48_000
    assert parse_bitrate("96000") == 96_000
    assert parse_bitrate("0.25M") == 250_000


def test_start_body_matches_the_ingest_contract() -> None:
    assert start_body(DEFAULT_LADDER[:1], 2.0) == {
        "segment_seconds": 2.0,
        "renditions": [{"name": "a48", "bitrate": 48000, "channels": 1, "sample_rate": 48000}],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a48:48k", "expected name:bitrate:channels"),
        ("a48:fast:1", "invalid bitrate"),
        ("a48:48k:6", "channels must be 1 or 2"),
        ("a48:48k:x", "invalid channel count"),
        ("A48:48k:1", "invalid rendition name"),
        ("a48:48k:1,a48:64k:2", "duplicate rendition name"),
        ("a48:1k:1", "outside"),
        ("", "expected name:bitrate:channels"),
    ],
)
def test_bad_ladders_are_one_clear_message(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_ladder(text)


def test_sample_rate_is_fixed_at_48k() -> None:
    from transcoder.ladder import validate_ladder

    with pytest.raises(ConfigError, match="48000"):
        validate_ladder([Rendition(name="a", bitrate_bps=48_000, channels=1, sample_rate_hz=44_100)])
