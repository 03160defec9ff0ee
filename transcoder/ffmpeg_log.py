"""Reading ffmpeg's stderr (run with `-loglevel repeat+level+verbose`): pure parsing and push accounting.

Lines that matter:
    [hls @ 0x…] [info] Opening '/tmp/…/a48/000012.m4s' for writing         a segment is being written
    [AVIOContext @ 0x…] [verbose] Statistics: 6568 bytes written, …        the file just written is closed
    [info] size=N/A time=00:00:24.02 bitrate=N/A speed=1x                  encoding progress
    [error] / [fatal] / [warning] …                                        kept for error messages
The hls muxer writes one file at a time, so the first "bytes written" after a segment's "Opening" is that
segment's size and says the file is complete (`Closed`: uploads.py sends it then). Init segments are opened
early and closed late, so they are not sized this way.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from origin.contract.ids import INIT_NAME_PATTERN, SEGMENT_NAME_PATTERN

_PREFIX = re.compile(r"^(?:\[(?P<ctx>[^\]@]+?) @ [^\]]+\] )?(?:\[(?P<level>[a-z]+)\] )?(?P<msg>.*)$")
_OPENING = re.compile(r"^Opening '(?P<url>[^']+)' for writing$")
_WRITTEN = re.compile(r"^Statistics: (?P<bytes>\d+) bytes written")
_PROGRESS = re.compile(r"time=(?P<time>-?\d+:\d\d:\d\d(?:\.\d+)?).*?speed=\s*(?P<speed>[\d.]+|N/A)x?")
_LEVELS = ("quiet", "panic", "fatal", "error", "warning", "info", "verbose", "debug", "trace")
IMPORTANT_LEVELS = frozenset({"panic", "fatal", "error", "warning"})
# A live input that delivered nothing before it ended (an idle RTP session) still makes ffmpeg write each
# rendition's 000000.m4s, as a bare styp box: 24 bytes, no moof/mdat (the origin refuses it). Not a segment.
EMPTY_SEGMENT_BYTES = 24
# ffmpeg messages that mean its command is wrong: the same argv fails the same way every time.
COMMAND_ERROR_MARKERS = (
    "Unrecognized option",
    "Option not found",
    "Error splitting the argument list",
    "Protocol not found",
    "Unknown input format",
    "Unknown encoder",
    "Error initializing filter",
    "Error parsing",
    "Error setting option",
    "Unable to find a suitable output format",
    "not in whitelist",
)
# ffmpeg messages that mean the input's data is wrong: final for a file, not for a live source (the next
# publisher may send something valid, e.g. audio after a video-only stream).
INPUT_ERROR_MARKERS = (
    "Invalid data found when processing input",
    "No such file or directory",
    "Permission denied",
    "Unknown decoder",
    "matches no streams",
    "does not contain any stream",
)
CONFIG_ERROR_MARKERS = COMMAND_ERROR_MARKERS + INPUT_ERROR_MARKERS


@dataclass(frozen=True, kw_only=True)
class LogLine:
    level: str | None  # None: ffmpeg printed it without a level (or it is not ffmpeg)
    context: str | None  # "hls", "AVIOContext", "aac", …
    message: str

    @property
    def important(self) -> bool:
        return self.level is None or self.level in IMPORTANT_LEVELS


@dataclass(frozen=True, kw_only=True)
class Opened:
    rendition: str
    name: str
    kind: str  # "segment" | "init" | "playlist"
    index: int | None = None


@dataclass(frozen=True, kw_only=True)
class Written:
    nbytes: int


@dataclass(frozen=True, kw_only=True)
class Closed:
    """A media segment ffmpeg finished writing (its "Opening" line, then its "bytes written" line)."""

    rendition: str
    name: str
    index: int
    nbytes: int


@dataclass(frozen=True, kw_only=True)
class Progress:
    media_seconds: float
    speed: float | None


Event = Opened | Written | Closed | Progress


def parse_line(line: str) -> LogLine:
    match = _PREFIX.match(line.rstrip("\r\n"))
    assert match is not None  # the pattern matches any string
    level = match.group("level")
    if level not in _LEVELS:
        return LogLine(level=None, context=None, message=line.rstrip("\r\n"))
    return LogLine(level=level, context=match.group("ctx"), message=match.group("msg"))


def is_config_error(text: str) -> bool:
    """True when an (important) stderr line says the command or input is wrong, not that something broke."""
    return any(marker in text for marker in CONFIG_ERROR_MARKERS)


def is_command_error(text: str) -> bool:
    """True when an (important) stderr line says ffmpeg's command itself is wrong (see is_config_error)."""
    return any(marker in text for marker in COMMAND_ERROR_MARKERS)


def _seconds(clock: str) -> float:
    sign = -1.0 if clock.startswith("-") else 1.0
    h, m, s = clock.lstrip("-").split(":")
    return sign * (int(h) * 3600 + int(m) * 60 + float(s))


def event_of(line: LogLine) -> Event | None:
    if (opening := _OPENING.match(line.message)) is not None:
        parts = urlsplit(opening.group("url")).path.rsplit("/", 2)
        if len(parts) != 3:
            return None
        rendition, name = parts[1], parts[2]
        if (segment := SEGMENT_NAME_PATTERN.fullmatch(name)) is not None:
            return Opened(rendition=rendition, name=name, kind="segment", index=int(segment.group(1)))
        if INIT_NAME_PATTERN.fullmatch(name):
            return Opened(rendition=rendition, name=name, kind="init")
        return Opened(rendition=rendition, name=name, kind="playlist")
    if (written := _WRITTEN.match(line.message)) is not None:
        return Written(nbytes=int(written.group("bytes")))
    if line.message.startswith("size=") and (progress := _PROGRESS.search(line.message)) is not None:
        speed = progress.group("speed")
        return Progress(media_seconds=_seconds(progress.group("time")), speed=None if speed == "N/A" else float(speed))
    return None


@dataclass(kw_only=True)
class PushTracker:
    """What ffmpeg has pushed in one session: segments per rendition, their sizes, progress.

    Fed line by line (`feed`), read by the status line; no I/O, no clock.
    """

    segment_seconds: float
    window_segments: int = 5
    segments: dict[str, int] = field(default_factory=dict)  # rendition → segments written (closed)
    last_index: dict[str, int] = field(default_factory=dict)
    media_seconds: float = 0.0
    speed: float | None = None
    _sizes: dict[str, deque[int]] = field(default_factory=dict)
    _pending: Opened | None = None

    def feed(self, line: LogLine) -> Event | None:
        event = event_of(line)
        match event:
            case Opened(kind="segment"):
                self._pending = event
            case Opened():
                self._pending = None
            case Written(nbytes=nbytes) if self._pending is not None:
                seg = self._pending
                self._pending = None
                if nbytes <= EMPTY_SEGMENT_BYTES:
                    return event
                self.segments[seg.rendition] = self.segments.get(seg.rendition, 0) + 1
                assert seg.index is not None  # event_of gives every segment its index
                self.last_index[seg.rendition] = seg.index
                self._sizes.setdefault(seg.rendition, deque(maxlen=self.window_segments)).append(nbytes)
                return Closed(rendition=seg.rendition, name=seg.name, index=seg.index, nbytes=nbytes)
            case Progress(media_seconds=media_seconds, speed=speed):
                self.media_seconds = max(self.media_seconds, media_seconds)
                self.speed = speed
        return event

    @property
    def segments_pushed(self) -> int:
        return sum(self.segments.values())

    def bitrate_bps(self, rendition: str | None = None) -> float:
        """Recent payload bitrate: bytes of the last segments over their nominal duration, summed."""
        names = [rendition] if rendition is not None else list(self._sizes)
        total = 0.0
        for name in names:
            sizes = self._sizes.get(name)
            if sizes:
                total += sum(sizes) * 8 / (len(sizes) * self.segment_seconds)
        return total


@dataclass(kw_only=True)
class StderrTail:
    """The last lines of ffmpeg's stderr, with the warnings and errors kept apart (for error messages)."""

    max_lines: int = 20
    lines: deque[str] = field(default_factory=deque)
    important: deque[str] = field(default_factory=deque)

    def add(self, raw: str, line: LogLine) -> None:
        text = raw.rstrip("\r\n")
        if not text.strip():
            return
        self.lines.append(text)
        while len(self.lines) > self.max_lines:
            self.lines.popleft()
        if line.important:
            self.important.append(text)
            while len(self.important) > self.max_lines:
                self.important.popleft()

    def text(self, max_lines: int = 10) -> str:
        source = self.important if self.important else self.lines
        return "\n".join(list(source)[-max_lines:])
