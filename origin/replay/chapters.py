"""The replay's chapters (pure): speaker turns and topic markers merged into a list a page can navigate.

    events (PDT) + the replay's segments (PDT, duration) → chapters on the replay's media timeline →
    WebVTT (`kind="chapters"` track) and JSON (`rooms/{room}/chapters.json`, linked from the replay master by
    EXT-X-SESSION-DATA "org.spillway.chapters")

Readable rather than exact: a speaker's turns less than MERGE_GAP_S apart are one run; a run shorter than
MIN_CHAPTER_S (an interjection, a "yes") starts no chapter; two chapters in a row of the same speaker are
one; a topic/chapter marker always starts a chapter (titled by the topic, listing who spoke in it). The first
chapter starts at 0, the last ends with the replay. Times outside the segments (a gap between sessions) map
to the next segment's start.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from origin.broadcast.timed import EventKind, TimedEvent

MERGE_GAP_S = 4.0
MIN_CHAPTER_S = 5.0
SESSION_DATA_ID = "org.spillway.chapters"


@dataclass(frozen=True, kw_only=True)
class Chapter:
    start_s: float
    end_s: float
    title: str
    kind: str  # "topic" | "speaker"
    speakers: tuple[str, ...] = ()
    topic: str = ""


class MediaClock:
    """PDT → seconds into the replay, from the replay's segments in playlist order."""

    def __init__(self, segments: Sequence[tuple[float, float]]) -> None:
        self._starts = [pdt for pdt, _ in segments]
        self._durations = [d for _, d in segments]
        self._offsets = [0.0, *itertools.accumulate(self._durations)]

    @property
    def duration_s(self) -> float:
        return self._offsets[-1]

    def media_s(self, pdt: float) -> float:
        i = bisect.bisect_right(self._starts, pdt) - 1
        if i < 0:
            return 0.0
        return self._offsets[i] + min(pdt - self._starts[i], self._durations[i])


@dataclass(kw_only=True)
class _Run:
    speaker: str
    start: float
    end: float


def _runs(turns: Sequence[tuple[float, float, str]]) -> list[_Run]:
    """Merged runs of one speaker each, in start order; interjections dropped."""
    runs: list[_Run] = []
    for start, end, speaker in sorted(turns):
        last = runs[-1] if runs else None
        if last is not None and last.speaker == speaker and start - last.end < MERGE_GAP_S:
            last.end = max(last.end, end)
        else:
            runs.append(_Run(speaker=speaker, start=start, end=end))
    kept: list[_Run] = []
    for run in runs:
        if run.end - run.start < MIN_CHAPTER_S:
            continue
        if kept and kept[-1].speaker == run.speaker:
            kept[-1].end = max(kept[-1].end, run.end)
        else:
            kept.append(run)
    return kept


def build(events: Iterable[TimedEvent], clock: MediaClock) -> list[Chapter]:
    total = clock.duration_s
    if total <= 0:
        return []
    events = list(events)
    turns = [(clock.media_s(e.start), total if e.end is None else clock.media_s(e.end), e.speaker)
             for e in events if e.kind is EventKind.SPEAKER]  # fmt: skip
    topics = sorted((clock.media_s(e.start), e.title) for e in events if e.kind is EventKind.CHAPTER)
    marks: list[tuple[float, int, str]] = [(t, 0, title) for t, title in topics]  # topics first at a tie
    marks += [(run.start, 1, run.speaker) for run in _runs(turns)]
    marks.sort()
    chapters: list[Chapter] = []
    topic = ""
    for t, rank, label in marks:
        if rank == 0:
            topic = label
            chapters.append(Chapter(start_s=t, end_s=total, title=label, kind="topic", topic=label))
            continue
        last = chapters[-1] if chapters else None
        if last is not None and ((t - last.start_s < MIN_CHAPTER_S and last.kind == "topic") or last.title == label):
            continue  # the topic's first speaker, or the same speaker again: no new chapter
        chapters.append(Chapter(start_s=t, end_s=total, title=label, kind="speaker", topic=topic))
    if not chapters:
        return []
    chapters[0] = replace(chapters[0], start_s=0.0)
    out = []
    for i, cur in enumerate(chapters):
        end = chapters[i + 1].start_s if i + 1 < len(chapters) else total
        first: dict[str, float] = {}  # who spoke in the chapter, in the order they first did
        for a, b, speaker in sorted(turns):
            if a < end and b > cur.start_s:
                first.setdefault(speaker, a)
        heard = list(first)
        if cur.kind == "speaker":
            heard = [cur.title, *(s for s in heard if s != cur.title)]
        out.append(replace(cur, end_s=end, speakers=tuple(heard)))
    return [c for c in out if c.end_s > c.start_s]


def _vtt_time(s: float) -> str:
    ms = round(s * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _vtt_text(text: str) -> str:
    # WebVTT §4.4 cue text: & and < escaped; "-->" cannot appear; a cue is one line here.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def to_webvtt(chapters: Sequence[Chapter]) -> str:
    lines = ["WEBVTT", ""]
    for i, c in enumerate(chapters, 1):
        title = c.title if c.kind == "topic" or not c.topic else f"{c.title} ({c.topic})"
        lines += [f"chapter-{i}", f"{_vtt_time(c.start_s)} --> {_vtt_time(c.end_s)}", _vtt_text(title), ""]
    return "\n".join(lines)


def to_json(chapters: Sequence[Chapter], *, duration_s: float) -> dict[str, object]:
    return {
        "version": 1,
        "duration": round(duration_s, 3),
        "chapters": [
            {"start": round(c.start_s, 3), "end": round(c.end_s, 3), "title": c.title, "kind": c.kind,
             "speakers": list(c.speakers), "topic": c.topic}
            for c in chapters
        ],
    }  # fmt: skip
