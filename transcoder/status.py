"""The live status of a transcoder: a value, its one-line text (pure) and a printer for the CLI."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TranscodeStatus:
    room: str
    state: str  # "starting" | "running" | "stopping" | "backoff" | "finished"
    session: str | None = None
    ffmpeg_pid: int | None = None
    segments_pushed: int = 0  # every rendition, every session of this run
    session_segments: int = 0
    bitrate_bps: float = 0.0  # recent payload bitrate of the whole ladder
    restarts: int = 0
    media_seconds: float = 0.0  # ffmpeg's position in the current session
    speed: float | None = None
    uptime_seconds: float = 0.0
    fault: str | None = None  # a live source's lasting failure (policy.Fault: "crash-loop", "origin-unreachable")
    upload_backlog: int = 0  # files ffmpeg wrote that the origin has not taken yet (uploads.py)


StatusCallback = Callable[[TranscodeStatus], None]


def _clock(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def format_status(status: TranscodeStatus) -> str:
    speed = f"{status.speed:.2f}x" if status.speed is not None else "-"
    fault = f"FAULT {status.fault} " if status.fault else ""
    backlog = f" (backlog {status.upload_backlog})" if status.upload_backlog else ""
    return (
        f"room {status.room} {status.state:<8} {fault}session {status.session or '-'} "
        f"segments {status.segments_pushed}{backlog} bitrate {status.bitrate_bps / 1000:.0f} kb/s "
        f"restarts {status.restarts} media {_clock(status.media_seconds)} speed {speed} "
        f"up {_clock(status.uptime_seconds)}"
    )


class StatusPrinter:
    """`\\r`-rewrites one line on a TTY; logs a line every `log_interval_seconds` (by uptime) otherwise."""

    def __init__(self, stream: TextIO, *, tty: bool, log_interval_seconds: float = 10.0) -> None:
        self._stream = stream
        self._tty = tty
        self._interval = log_interval_seconds
        self._next_log_at = 0.0
        self._width = 0

    def __call__(self, status: TranscodeStatus) -> None:
        text = format_status(status)
        if self._tty:
            pad = max(0, self._width - len(text))
            self._width = len(text)
            self._stream.write("\r" + text + " " * pad)
            if status.state == "finished":
                self._stream.write("\n")
            self._stream.flush()
        elif status.uptime_seconds >= self._next_log_at or status.state == "finished":
            self._next_log_at = status.uptime_seconds + self._interval
            log.info("%s", text)
