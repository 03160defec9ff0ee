"""EXT-X-DATERANGE lines for timed events (pure, on the m3u8 library's DateRange).

RFC 8216bis §4.4.5.1: ID unique per event, START-DATE (ISO 8601, ms), CLASS per kind, END-DATE ≥ START-DATE
and DURATION = END-DATE - START-DATE (both from the same millisecond values), END-ON-NEXT=YES (with CLASS,
without END-DATE/DURATION) for chapters; X-SPEAKER / X-TITLE / X-TEXT carry the values. A playlist with a
DATERANGE has a PROGRAM-DATE-TIME: ours has one on its first segment and after every discontinuity.

Placement: each tag goes before the first segment whose PDT range contains its START-DATE (before the
window's first segment when it began earlier).
- Live window (`window_tags`): the tags whose range still maps to a segment in the window (§6.2.1: a server
  MUST NOT remove one while any date in its range maps to a segment of the playlist). An instant or closed
  range leaves with its segment; a turn under way or the current chapter stays until it ends.
- DVR/replay (`DvrTags`): the EVENT playlist only grows, so tags are appended, never inserted: a start tag
  before the segment that contains it (or, when the event arrived after that segment was published, before
  the next one); when a turn ends later, a second tag with the same ID adds END-DATE and DURATION
  (§4.4.5.1 allows a later tag with the same ID to add attributes; the ones both carry are equal).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import m3u8

from origin.broadcast.timed import Cue, EventKind, TimedEvent, Timeline

CLASSES: Mapping[EventKind, str] = {
    EventKind.SPEAKER: "org.spillway.speaker",
    EventKind.CHAPTER: "org.spillway.chapter",
    EventKind.TEXT: "org.spillway.text",
}
_VALUE_ATTRS = {EventKind.SPEAKER: ("x_speaker", "speaker"), EventKind.CHAPTER: ("x_title", "title"),
                EventKind.TEXT: ("x_text", "text")}  # fmt: skip


def _ms(t: float) -> int:
    return round(t * 1000)


def iso_date(ms: int) -> str:
    """ISO 8601 with milliseconds, UTC: the form of EXT-X-PROGRAM-DATE-TIME in our playlists."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _quoted(value: str) -> str:
    # A quoted-string holds no double quote, CR or LF (§4.2); validation already refused control characters.
    return '"' + value.replace('"', "'").replace("\r", " ").replace("\n", " ") + '"'


def tag(event: TimedEvent) -> str:
    """The EXT-X-DATERANGE line of `event` as known now."""
    return str(m3u8.model.DateRange(**fields(event)).dumps())


def fields(event: TimedEvent) -> dict[str, object]:
    """The attributes of `event`'s tag, as m3u8's DateRange (and Segment(dateranges=…)) takes them."""
    start = _ms(event.start)
    out: dict[str, object] = {"id": event.id, "start_date": iso_date(start), "class": CLASSES[event.kind]}
    if event.kind is EventKind.CHAPTER:
        out["end_on_next"] = "YES"
    elif event.kind is EventKind.TEXT:
        out["end_date"] = iso_date(start)  # an instant: END-DATE = START-DATE, duration 0
    elif event.end is not None:
        end = max(start, _ms(event.end))
        out["end_date"] = iso_date(end)
        out["duration"] = (end - start) / 1000  # m3u8 leaves out a duration of 0; END-DATE says it
    attr, key = _VALUE_ATTRS[event.kind]
    out[attr] = _quoted(str(getattr(event, key)))
    return out


def _effective_end(event: TimedEvent, next_chapter: Mapping[str, float]) -> float:
    if event.kind is EventKind.TEXT:
        return event.start
    if event.kind is EventKind.CHAPTER:
        return next_chapter.get(event.id, float("inf"))
    return float("inf") if event.end is None else event.end


def window_tags(timeline: Timeline, segments: Sequence[tuple[int, float, float]]) -> dict[int, str]:
    """Tag lines to put before each segment of a live window, by media sequence.

    `segments`: (media sequence, PDT start, PDT end) in playlist order."""
    by_msn = window_fields(timeline, segments)
    return {msn: "".join(str(m3u8.model.DateRange(**f).dumps()) + "\n" for f in found) for msn, found in by_msn.items()}


Attrs = dict[str, object]


def window_fields(timeline: Timeline, segments: Sequence[tuple[int, float, float]]) -> dict[int, list[Attrs]]:
    """`window_tags` as attributes (the low-latency renderer builds its segments with the m3u8 library)."""
    if not segments or not timeline.events:
        return {}
    first, last_end = segments[0][1], segments[-1][2]
    ends = [s[2] for s in segments]
    chapters = timeline.chapters()
    next_chapter = {a.id: b.start for a, b in itertools.pairwise(chapters)}
    out: dict[int, list[Attrs]] = {}
    for event in timeline.events.values():
        if event.start >= last_end or _effective_end(event, next_chapter) < first:
            continue
        msn = segments[min(bisect.bisect_right(ends, event.start), len(segments) - 1)][0]
        out.setdefault(msn, []).append(fields(event))
    return out


class DvrTags:
    """One rendition's DATERANGE lines for the append-only DVR body: fed cues, asked before each segment."""

    def __init__(self) -> None:
        self._latest: dict[str, TimedEvent] = {}
        self._waiting: list[str] = []  # ids whose start tag is not written yet, in record order
        self._started: set[str] = set()
        self._closed: set[str] = set()
        self._to_close: list[str] = []

    def feed(self, cues: Iterable[Cue]) -> None:
        for cue in cues:
            event = cue.event
            self._latest[event.id] = event
            if cue.edge == "start" and event.id not in self._started and event.id not in self._waiting:
                self._waiting.append(event.id)
            elif cue.edge == "end" and event.id in self._started and event.id not in self._closed:
                self._to_close.append(event.id)

    def before(self, segment_end: float) -> str:
        """Lines for events that begin before `segment_end` (PDT) and for turns that ended, not written yet."""
        lines: list[str] = []
        for ident in self._to_close:
            lines.append(tag(self._latest[ident]))
            self._closed.add(ident)
        self._to_close.clear()
        keep: list[str] = []
        for ident in self._waiting:
            event = self._latest[ident]
            if event.start >= segment_end:
                keep.append(ident)
                continue
            lines.append(tag(event))
            self._started.add(ident)
            if event.kind is not EventKind.SPEAKER or event.end is not None:
                self._closed.add(ident)
        self._waiting = keep
        return "".join(line + "\n" for line in lines)
