"""Timed events (pure): the one check, the fold, ID3/emsg bytes, which segment carries a cue, DATERANGE rules."""

from __future__ import annotations

import pytest

from origin.broadcast import daterange, id3, inband, timed
from origin.broadcast.model import Publication, Session
from origin.broadcast.records import TimedEventRecorded, decode, encode
from origin.broadcast.timed import EventKind, EventRequest, Timeline
from origin.errors import RateLimitedError, StateError, ValidationError
from tests.support.daterange_check import check_dateranges

NOW = 1_800_000_000.0


def _record(tl: Timeline, request: EventRequest, now: float = NOW) -> timed.TimedEvent:
    event = timed.plan_event(tl, request, now=now, room="r")
    assert event is not None
    timed.fold(tl, decode(encode(TimedEventRecorded(event=event))).event)  # type: ignore[union-attr]
    return event


def test_turns_open_close_and_repeat() -> None:
    tl = Timeline()
    on = _record(tl, EventRequest(kind=EventKind.SPEAKER, speaker="Alice"))
    assert timed.plan_event(tl, EventRequest(kind=EventKind.SPEAKER, speaker="Alice"), now=NOW, room="r") is None
    off = _record(tl, EventRequest(kind=EventKind.SPEAKER, on=False, speaker="Alice"), now=NOW + 3)
    assert (off.id, off.start, off.end) == (on.id, NOW, NOW + 3)
    assert [(c.edge, c.at) for c in tl.cues] == [("start", NOW), ("end", NOW + 3)]
    with pytest.raises(StateError):
        timed.plan_event(tl, EventRequest(kind=EventKind.SPEAKER, on=False, speaker="Alice"), now=NOW, room="r")


@pytest.mark.parametrize("request_", [
    EventRequest(kind=EventKind.TEXT, text="x", at=NOW - 31), EventRequest(kind=EventKind.TEXT, text="x", at=NOW + 3),
    EventRequest(kind=EventKind.SPEAKER, speaker="A\u202eB"), EventRequest(kind=EventKind.TEXT, text=" "),
    EventRequest(kind=EventKind.TEXT, text="x" * (timed.MAX_TEXT_CHARS + 1)),
])  # fmt: skip
def test_bad_requests_are_refused(request_: EventRequest) -> None:
    with pytest.raises(ValidationError):
        timed.plan_event(Timeline(), request_, now=NOW, room="r")


def test_chapters_only_move_forward_and_the_rate_is_bounded() -> None:
    tl = Timeline()
    _record(tl, EventRequest(kind=EventKind.CHAPTER, title="One"))
    with pytest.raises(StateError):  # RFC 8216bis §6.2.1 M19
        timed.plan_event(tl, EventRequest(kind=EventKind.CHAPTER, title="Two", at=NOW - 1), now=NOW, room="r")
    for i in range(timed.EDGES_PER_MINUTE - 1):
        _record(tl, EventRequest(kind=EventKind.TEXT, text=f"t{i}"))
    with pytest.raises(RateLimitedError):
        timed.plan_event(tl, EventRequest(kind=EventKind.TEXT, text="one more"), now=NOW, room="r")
    assert timed.plan_event(tl, EventRequest(kind=EventKind.TEXT, text="later"), now=NOW + 61, room="r")


def test_id3_and_emsg_round_trip() -> None:
    frames = [id3.Frame(id="TXXX", description="d", text="é" * 200), id3.Frame(id="TIT2", text="Alice")]
    tag = id3.tag(frames)
    assert tag[:3] == b"ID3" and id3.parse(tag) == frames
    box = inband.emsg_box(inband.Emsg(timescale=48_000, presentation_time=2**40, event_duration=0, id=7,
                                      scheme_id_uri=inband.SCHEME_ID3, value="", message_data=tag))  # fmt: skip
    assert inband.parse_emsg(box).message_data == tag and inband.parse_emsg(box).presentation_time == 2**40
    styp = b"\x00\x00\x00\x10stypmsdh\x00\x00\x00\x00"
    moof = b"\x00\x00\x00\x08moof"
    assert inband.prepend(styp + moof, [box]) == styp + box + moof  # after styp, before everything else
    assert inband.prepend(moof, [box]) == box + moof


def test_a_segment_carries_its_cues_and_late_ones_once() -> None:
    tl = Timeline()
    _record(tl, EventRequest(kind=EventKind.SPEAKER, speaker="A", at=NOW + 0.5))
    _record(tl, EventRequest(kind=EventKind.TEXT, text="future", at=NOW + 1.5), now=NOW)
    first = inband.due(tl.cues, (0, 0.0), start=NOW, end=NOW + 1)
    assert [(c.event.id, at) for c, at in first] == [("speaker-1", NOW + 0.5)]
    second = inband.due(tl.cues, (len(tl.cues), NOW + 1), start=NOW + 1, end=NOW + 2)
    assert [c.event.id for c, _ in second] == ["text-2"]  # known before, but ahead of the first segment
    _record(tl, EventRequest(kind=EventKind.TEXT, text="late", at=NOW + 0.2), now=NOW + 1.2)
    third = inband.due(tl.cues, (2, NOW + 2), start=NOW + 2, end=NOW + 3)
    assert [(c.event.id, at) for c, at in third] == [("text-3", NOW + 2)]  # clamped to the segment's start
    (box,) = inband.boxes(third, start=NOW + 2, base_ticks=96_000, timescale=48_000)
    assert inband.parse_emsg(box).presentation_time == 96_000


def test_predicted_pdt_follows_the_sequencer() -> None:
    session = Session(id="s", ordinal=1, started_at=0, segment_seconds=1, ladder=(), last_activity_at=0)
    assert inband.predict_pdt(session, None, base_s=5, duration_s=1, now=NOW) == NOW - 1
    session.anchor_pdt = NOW - 10
    last = Publication(rendition="a", msn=4, session="s", idx=4, duration_s=1, pdt=NOW - 5.5, discontinuity=False,
                       size=1, received_at=0)  # fmt: skip
    assert inband.predict_pdt(session, last, base_s=5, duration_s=1, now=NOW) == NOW - 4.5  # never before the last


def _playlist(tags: dict[int, str], n: int = 4) -> str:
    head = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
    body = "#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:00.000+00:00\n"
    for i in range(n):
        body += tags.get(i, "") + f"#EXTINF:1.0,\nseg{i}.m4s\n"
    return head + body


def test_window_tags_keep_a_range_while_it_maps_into_the_window() -> None:
    start = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    tl = Timeline()
    for e in (timed.TimedEvent(kind=EventKind.SPEAKER, id="speaker-1", start=start - 30),  # open: stays
              timed.TimedEvent(kind=EventKind.TEXT, id="text-2", start=start - 20, text='say "hi"'),  # gone
              timed.TimedEvent(kind=EventKind.SPEAKER, id="speaker-3", start=start + 1.25, end=start + 2.5,
                               speaker="B")):  # fmt: skip
        timed.fold(tl, e)
    segs = [(i, start + i, start + i + 1) for i in range(4)]
    tags = daterange.window_tags(tl, segs)
    assert sorted(tags) == [0, 1]
    ranges = {r.id: r for r in check_dateranges(_playlist(tags))}
    assert set(ranges) == {"speaker-1", "speaker-3"} and ranges["speaker-3"].duration == 1.25


def test_dvr_tags_append_start_then_close() -> None:
    tl = Timeline()
    dvr = daterange.DvrTags()
    timed.fold(tl, timed.TimedEvent(kind=EventKind.SPEAKER, id="speaker-1", start=NOW + 0.5, speaker="A"))
    dvr.feed(tl.cues)
    first = dvr.before(NOW + 1)
    timed.fold(tl, timed.TimedEvent(kind=EventKind.SPEAKER, id="speaker-1", start=NOW + 0.5, end=NOW + 1.7))
    dvr.feed(tl.cues[1:])
    second = dvr.before(NOW + 2)
    assert "END-DATE" not in first and "DURATION=1.2" in second and dvr.before(NOW + 3) == ""
