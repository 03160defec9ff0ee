"""The body of `POST /v1/rooms/{room}/events` (docs/metadata.md): a speaker turn on/off, a chapter, a text.

Strict pydantic at the HTTP edge, one schema per kind (a `oneOf` on `kind`), every string bounded and free of
control, format and separator characters. What no schema can say is checked by `timed.plan_event`: `at` near
the origin's clock, a chapter after the previous one, an "off" for a turn under way, the per-room rate.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from origin.admission.models import Text
from origin.broadcast.timed import MAX_NAME_CHARS, MAX_TEXT_CHARS, MAX_TITLE_CHARS, EventKind, EventRequest

BODY_MAX_BYTES = 4 * 1024
LATEST_AT = 4_102_444_800.0  # 2100-01-01: a bound for the schema; plan_event checks `at` against the clock

At = Annotated[float | None, Field(None, ge=0, le=LATEST_AT, description="epoch seconds; default: now")]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SpeakerEvent(_Event):
    kind: Literal["speaker"]
    speaker: Text = Field(min_length=1, max_length=MAX_NAME_CHARS, description="display name")
    state: Literal["on", "off"]
    at: At = None


class ChapterEvent(_Event):
    kind: Literal["chapter"]
    title: Text = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    at: At = None


class TextEvent(_Event):
    kind: Literal["text"]
    text: Text = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    at: At = None


class EventBody(RootModel[Annotated[SpeakerEvent | ChapterEvent | TextEvent, Field(discriminator="kind")]]):
    def request(self) -> EventRequest:
        e = self.root
        if isinstance(e, SpeakerEvent):
            return EventRequest(kind=EventKind.SPEAKER, on=e.state == "on", speaker=e.speaker, at=e.at)
        if isinstance(e, ChapterEvent):
            return EventRequest(kind=EventKind.CHAPTER, title=e.title, at=e.at)
        return EventRequest(kind=EventKind.TEXT, text=e.text, at=e.at)
