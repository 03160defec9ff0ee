"""Timed events of a broadcast (pure): who is speaking, chapter/topic markers and free text, in PDT terms.

An event is stamped with the wall clock when it happened, the clock EXT-X-PROGRAM-DATE-TIME uses (a session's
anchor is the wall clock at its first publish). A speaker turn runs from "on" to "off" (`end` is None while it
lasts); a chapter lasts until the next chapter (EXT-X-DATERANGE END-ON-NEXT); a text is an instant.

Each journal record `TimedEventRecorded` either opens an event or, with the same id and `end` set, closes a
turn. `fold` keeps them in record order, and the edges (a start, an end) as `Cue`s: what the in-band emsg/ID3
carries, one tag each, in the next segment of every rendition (inband.py). `plan_event` is the one check every
source goes through (the admin API, the Janus talk watcher): bounded, rate-limited, never back in time.
"""

from __future__ import annotations

import dataclasses
import enum
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from origin.errors import RateLimitedError, StateError, ValidationError

MAX_NAME_CHARS = 64  # a speaker's display name
MAX_TITLE_CHARS = 120  # a chapter/topic title
MAX_TEXT_CHARS = 500  # free text
MAX_EVENTS = 5_000  # per broadcast: bounds the journal, every worker's folded state and the chapters
EDGES_PER_MINUTE = 240  # per room: speaker on/off, chapters, texts (a lively room changes speaker every few s)
BACKDATE_MAX_S = 30.0  # how far in the past a caller may stamp an event (`at`)
AHEAD_MAX_S = 2.0  # ... and how far in the future (clock skew between the caller and the origin)


class EventKind(enum.StrEnum):
    SPEAKER = "speaker"
    CHAPTER = "chapter"
    TEXT = "text"


@dataclass(frozen=True, kw_only=True)
class TimedEvent:
    kind: EventKind
    id: str  # unique in the broadcast: the EXT-X-DATERANGE ID
    start: float  # epoch seconds (PDT terms)
    end: float | None = None  # speaker turns, once over; None for chapters and texts
    speaker: str = ""
    title: str = ""
    text: str = ""

    @property
    def label(self) -> str:
        return self.speaker or self.title or self.text


@dataclass(frozen=True, kw_only=True)
class Cue:
    """One edge of an event, as the in-band metadata carries it."""

    index: int  # position in the broadcast's cue list: the emsg id
    event: TimedEvent  # as known when the edge was recorded (an end cue carries the closed turn)
    edge: Literal["start", "end"]

    @property
    def at(self) -> float:
        if self.edge == "end" and self.event.end is not None:
            return self.event.end
        return self.event.start


@dataclass(kw_only=True)
class Timeline:
    """A broadcast's timed events as the journal folds them (RoomState.timed)."""

    events: dict[str, TimedEvent] = field(default_factory=dict)  # in record order
    cues: list[Cue] = field(default_factory=list)  # append-only, in record order
    open_turns: dict[str, str] = field(default_factory=dict)  # speaker -> id of the turn under way
    last_chapter_start: float | None = None

    def chapters(self) -> list[TimedEvent]:
        return [e for e in self.events.values() if e.kind is EventKind.CHAPTER]


def fold(timeline: Timeline, event: TimedEvent) -> None:
    """Apply one recorded event (in place). A repeat of an open or closed event changes nothing."""
    prior = timeline.events.get(event.id)
    if prior is None:
        if len(timeline.events) >= MAX_EVENTS:
            return  # plan_event refuses first; a journal written by hand stays bounded too
        timeline.events[event.id] = event
        timeline.cues.append(Cue(index=len(timeline.cues), event=event, edge="start"))
        if event.kind is EventKind.CHAPTER:
            last = timeline.last_chapter_start
            timeline.last_chapter_start = event.start if last is None else max(last, event.start)
        elif event.kind is EventKind.SPEAKER:
            if event.end is None:
                timeline.open_turns[event.speaker] = event.id
            else:
                timeline.cues.append(Cue(index=len(timeline.cues), event=event, edge="end"))
        return
    if prior.kind is EventKind.SPEAKER and prior.end is None and event.end is not None:
        closed = dataclasses.replace(prior, end=max(event.end, prior.start))
        timeline.events[event.id] = closed
        timeline.cues.append(Cue(index=len(timeline.cues), event=closed, edge="end"))
        if timeline.open_turns.get(prior.speaker) == prior.id:
            del timeline.open_turns[prior.speaker]


# -- the one check --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EventRequest:
    """What a source asks for; `at` None means now."""

    kind: EventKind
    on: bool = True  # speaker: on (a turn starts) or off (it ends)
    speaker: str = ""
    title: str = ""
    text: str = ""
    at: float | None = None


def _clean(value: str, limit: int, what: str, room: str) -> str:
    if not value.strip():
        raise ValidationError(f"{what} is empty", room=room)
    if len(value) > limit:
        raise ValidationError(f"{what} is longer than {limit} characters", room=room)
    # Controls, format characters (bidi overrides, zero-width), line/paragraph separators: as the HTTP edge.
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in value):
        raise ValidationError(f"{what} contains control or format characters", room=room)
    return value


def plan_event(timeline: Timeline, request: EventRequest, *, now: float, room: str) -> TimedEvent | None:
    """The event to record for `request`, or None when it changes nothing (a repeated "on" of an open turn).

    Raises ValidationError (400), StateError (409: nothing to end, a chapter before the last one, too many
    events) or RateLimitedError (429). The caller has checked that the broadcast is on air.
    """
    at = now if request.at is None else request.at
    if not (now - BACKDATE_MAX_S <= at <= now + AHEAD_MAX_S):
        raise ValidationError(f"`at` must be within {BACKDATE_MAX_S:g} s before and {AHEAD_MAX_S:g} s after the"
                              " origin's clock", room=room)  # fmt: skip
    recent = 0
    for cue in reversed(timeline.cues):  # cues are recorded about in time order: stop at the first old one
        if cue.at < now - 60.0:
            break
        recent += 1
    if recent >= EDGES_PER_MINUTE:
        raise RateLimitedError(f"more than {EDGES_PER_MINUTE} timed events in the last minute", retry_after_s=5.0,
                               room=room)  # fmt: skip
    if request.kind is EventKind.SPEAKER:
        speaker = _clean(request.speaker, MAX_NAME_CHARS, "speaker", room)
        open_id = timeline.open_turns.get(speaker)
        if not request.on:
            if open_id is None:
                raise StateError(f"{speaker!r} has no turn under way", room=room)
            prior = timeline.events[open_id]
            return dataclasses.replace(prior, end=max(at, prior.start))
        if open_id is not None:
            return None
        return _new(timeline, TimedEvent(kind=request.kind, id="", start=at, speaker=speaker), room)
    if request.kind is EventKind.CHAPTER:
        title = _clean(request.title, MAX_TITLE_CHARS, "title", room)
        last = timeline.last_chapter_start
        if last is not None and at <= last:
            # RFC 8216bis §6.2.1: no new END-ON-NEXT range between a chapter and the one that follows it.
            raise StateError("a chapter must start after the previous chapter", room=room)
        return _new(timeline, TimedEvent(kind=request.kind, id="", start=at, title=title), room)
    text = _clean(request.text, MAX_TEXT_CHARS, "text", room)
    return _new(timeline, TimedEvent(kind=request.kind, id="", start=at, text=text), room)


def _new(timeline: Timeline, event: TimedEvent, room: str) -> TimedEvent:
    if len(timeline.events) >= MAX_EVENTS:
        raise StateError(f"the broadcast already has {MAX_EVENTS} timed events", room=room)
    return dataclasses.replace(event, id=f"{event.kind.value}-{len(timeline.events) + 1}")
