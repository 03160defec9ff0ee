"""The room body's text and embed-origin rules (pure): the OpenAPI patterns are the validators."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from origin.admission.models import EMBED_ORIGIN_PATTERN, TEXT_PATTERN, RoomBody, embed_origin

REFUSED_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")
TEXT = re.compile(TEXT_PATTERN)


def test_the_text_pattern_refuses_every_control_format_and_separator_character_python_knows() -> None:
    missed = [f"U+{cp:04X}" for cp in range(sys.maxunicode + 1)
              if unicodedata.category(chr(cp)) in REFUSED_CATEGORIES and TEXT.fullmatch(chr(cp))]  # fmt: skip
    assert not missed, f"Unicode {unicodedata.unidata_version} added characters to refuse: {missed}"


def test_the_text_pattern_keeps_letters_marks_symbols_and_spaces() -> None:
    kept = "Café — 会議 ٣ 🎙 Zoë O'Brien नमस्ते \u00a0 ‘quoted’"
    assert TEXT.fullmatch(kept)
    assert RoomBody.model_validate({"realtime_cap": 0, "title": kept}).title == kept


@pytest.mark.parametrize(
    ("value", "normalised"),
    [("https://News.Example/", "https://news.example"), ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
     ("https://a.example:443", "https://a.example"), ("http://localhost", "http://localhost"),
     ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"), ("http://255.255.255.255:1", None),
     ("https://1password.com", None), ("https://a-1.b2.example.co.uk:65535", None)],
)  # fmt: skip
def test_embed_origins_accepted(value: str, normalised: str | None) -> None:
    assert embed_origin(value) == (normalised or value)


@pytest.mark.parametrize(
    "value",
    ["http://127.1", "http://0x7f.0.0.1", "http://2130706433", "http://127.0.0.01", "http://256.0.0.1",
     "http://1.2.3.4.5", "https://example.123", "http://[::1]", "https://a.example:0", "https://a.example:65536",
     "https://a.example/path", "https://a.example?q", "https://u:p@a.example", "ftp://a.example", "https://*.a",
     " https://a.example", "https://a..example", "https://-a.example", "https://a.example.", "https://" + "a" * 64],
)  # fmt: skip
def test_embed_origins_refused(value: str) -> None:
    with pytest.raises(ValueError):
        embed_origin(value)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(EMBED_ORIGIN_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 255))
def test_whatever_the_schema_pattern_admits_is_accepted(value: str) -> None:
    assert embed_origin(value).startswith(("http://", "https://"))
