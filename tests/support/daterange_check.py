"""Strict checks of EXT-X-DATERANGE in a media playlist (RFC 8216bis §4.2 attribute lists, §4.4.5.1 rules).

The playlist must parse with the m3u8 library; each DATERANGE line is parsed here by the spec's grammar
(AttributeName=AttributeValue, quoted-string / decimal / enumerated), not leniently: an unquoted value with
a comma, a quote inside a quoted string or a lowercase attribute name fails.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import m3u8

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|-?[0-9]+(?:\.[0-9]+)?|[A-Z0-9-]+)(,|$)')
_CLIENT = re.compile(r"^X-[A-Z0-9-]+$")


@dataclass(frozen=True, kw_only=True)
class Range:
    id: str
    start_date: datetime
    end_date: datetime | None
    duration: float | None
    attrs: dict[str, str]


def attributes(line: str) -> dict[str, str]:
    text = line.split(":", 1)[1]
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = _ATTR.match(text, pos)
        assert m is not None, f"not an attribute list at {text[pos:pos + 40]!r}: {line}"
        assert m.group(1) not in out, f"attribute {m.group(1)} twice: {line}"
        out[m.group(1)] = m.group(2)
        pos = m.end()
    return out


def _date(value: str) -> datetime:
    assert value.startswith('"') and value.endswith('"'), value
    parsed = datetime.fromisoformat(value[1:-1])
    assert parsed.tzinfo is not None, value
    return parsed


def check_dateranges(text: str) -> list[Range]:
    """Every date range of the playlist, merged by ID, after checking the rules. Raises AssertionError."""
    playlist = m3u8.loads(text)
    assert playlist.segments, "a media playlist with segments"
    lines = text.splitlines()
    tags = [line for line in lines if line.startswith("#EXT-X-DATERANGE:")]
    if tags:
        assert any(line.startswith("#EXT-X-PROGRAM-DATE-TIME:") for line in lines), "DATERANGE needs a PDT"
    merged: dict[str, dict[str, str]] = {}
    for line in tags:
        attrs = attributes(line)
        for name in attrs:
            assert name in {"ID", "CLASS", "START-DATE", "END-DATE", "DURATION", "END-ON-NEXT"} or _CLIENT.match(
                name), name  # fmt: skip
        assert "ID" in attrs and "START-DATE" in attrs and "CLASS" in attrs, line
        start = _date(attrs["START-DATE"])
        if "END-DATE" in attrs:
            assert _date(attrs["END-DATE"]) >= start, line
        if "DURATION" in attrs:
            assert float(attrs["DURATION"]) >= 0, line
            if "END-DATE" in attrs:
                delta = (_date(attrs["END-DATE"]) - start).total_seconds()
                assert abs(delta - float(attrs["DURATION"])) < 0.0005, line
        if attrs.get("END-ON-NEXT") is not None:
            assert attrs["END-ON-NEXT"] == "YES" and "DURATION" not in attrs and "END-DATE" not in attrs, line
        prior = merged.setdefault(attrs["ID"][1:-1], {})
        for name, value in attrs.items():
            assert prior.get(name, value) == value, f"{name} differs for the same ID: {line}"
        prior.update(attrs)
    _check_placement(text)
    out = []
    for ident, attrs in merged.items():
        out.append(Range(id=ident, start_date=_date(attrs["START-DATE"]),
                         end_date=_date(attrs["END-DATE"]) if "END-DATE" in attrs else None,
                         duration=float(attrs["DURATION"]) if "DURATION" in attrs else None, attrs=attrs))  # fmt: skip
    return out


def _check_placement(text: str) -> None:
    """No tag comes before a segment that ends before the tag's START-DATE (it would anchor it too early)."""
    playlist = m3u8.loads(text)
    for seg in playlist.segments:
        for d in seg.dateranges:
            end = seg.current_program_date_time.timestamp() + seg.duration
            assert datetime.fromisoformat(d.start_date).timestamp() < end + 0.001, (d.id, d.start_date)


def media_time(frags: Sequence[tuple[float, float, float]], pdt: float) -> float | None:
    """The media time of PDT `pdt` (epoch s) from (start, duration, PDT) of fragments."""
    for start, duration, frag_pdt in frags:
        if frag_pdt - 0.0005 <= pdt < frag_pdt + duration:
            return start + pdt - frag_pdt
    return None
