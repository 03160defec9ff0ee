"""The host doorbell's datagrams (pure): room, durability stamp, and for a segment its rendition."""

from __future__ import annotations

from origin.broadcast.publish.doorbell import parse_ring, ring_message, segment_rendition


def test_a_segment_ring_names_its_rendition_and_others_do_not() -> None:
    seg = parse_ring(ring_message("launch", 1234.5, "a64"))
    assert seg is not None and seg[:2] == ("launch", 1234.5) and segment_rendition(seg[2]) == "a64"
    plain = parse_ring(ring_message("launch", 0.0, None))
    assert plain == ("launch", 0.0, "") and segment_rendition(plain[2]) is None
    assert segment_rendition("playlist") is None


def test_malformed_rings_are_dropped_or_carry_nothing() -> None:
    assert parse_ring(b"../etc 1.0 seg:a64") is None  # not a room id
    bad = parse_ring(b"launch nan seg:A/../x")
    assert bad is not None and bad[1] == 0.0 and segment_rendition(bad[2]) is None
