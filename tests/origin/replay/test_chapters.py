"""Replay chapters (pure): turns merged into readable chapters on the replay's clock."""

from __future__ import annotations

from origin.broadcast.timed import EventKind, TimedEvent
from origin.replay import chapters

T0 = 1_800_000_000.0


def _turn(i: int, who: str, start: float, end: float) -> TimedEvent:
    return TimedEvent(kind=EventKind.SPEAKER, id=f"speaker-{i}", start=T0 + start, end=T0 + end, speaker=who)


def test_turns_topics_and_interjections() -> None:
    clock = chapters.MediaClock([(T0 + i, 1.0) for i in range(60)])
    events = [
        TimedEvent(kind=EventKind.CHAPTER, id="chapter-1", start=T0 + 2, title="Opening"),
        _turn(2, "Alice", 2.5, 12), _turn(3, "Bob", 12, 13),  # Bob's "yes": no chapter
        _turn(4, "Alice", 13.5, 20), _turn(5, "Carol", 20, 30),
        TimedEvent(kind=EventKind.CHAPTER, id="chapter-6", start=T0 + 40, title="Q&A"),
    ]
    found = chapters.build(events, clock)
    assert [(c.title, c.start_s, c.end_s) for c in found] == [("Opening", 0.0, 20.0), ("Carol", 20.0, 40.0),
                                                              ("Q&A", 40.0, 60.0)]  # fmt: skip
    assert found[0].speakers == ("Alice", "Bob") and found[1].speakers == ("Carol",)
    vtt = chapters.to_webvtt(found)
    assert vtt.startswith("WEBVTT\n\nchapter-1\n00:00:00.000 --> 00:00:20.000\nOpening\n")
    assert chapters.to_json(found, duration_s=60)["chapters"][2] == {  # type: ignore[index]
        "start": 40.0, "end": 60.0, "title": "Q&A", "kind": "topic", "speakers": [], "topic": "Q&A"}


def test_media_clock_skips_gaps_between_sessions() -> None:
    clock = chapters.MediaClock([(T0, 2.0), (T0 + 2, 2.0), (T0 + 100, 2.0)])
    assert (clock.media_s(T0 - 5), clock.media_s(T0 + 3), clock.media_s(T0 + 50), clock.media_s(T0 + 101)) == (
        0.0, 3.0, 4.0, 5.0)  # fmt: skip
