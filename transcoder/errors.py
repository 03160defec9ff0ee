"""Exception hierarchy of the transcoder.

TranscoderError                 root; carries room and session when known
├── ConfigError                 bad settings, CLI arguments or ladder (exit status 2)
│   └── FfmpegNotFoundError     the ffmpeg binary is missing or not executable
├── SourceError                 the input cannot be opened (missing file, unreadable SDP)
├── IngestError                 an ingest call to the origin failed; carries status code and URL
│   ├── OriginUnavailableError  connection refused, timeout or 5xx: retried by the supervisor's backoff
│   └── IngestRejectedError     4xx (409 room ended / session reused, 401/403 token): fatal
└── FfmpegError                 ffmpeg exited with an error; carries exit code and stderr tail
    └── CrashLoopError          the supervisor gave up restarting; also carries the failure count
"""

from __future__ import annotations

from typing import NotRequired, TypedDict, Unpack


class TranscoderError(Exception):
    """Root of every error the transcoder raises on purpose."""

    exit_status = 1

    def __init__(self, message: str, *, room: str | None = None, session: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.room = room
        self.session = session


class ConfigError(TranscoderError):
    exit_status = 2


class FfmpegNotFoundError(ConfigError):
    def __init__(self, binary: str, *, room: str | None = None) -> None:
        super().__init__(
            f"ffmpeg not found: {binary!r} is not an executable on PATH (install ffmpeg or pass --ffmpeg)",
            room=room,
        )
        self.binary = binary


class SourceError(TranscoderError):
    def __init__(self, message: str, *, source: str, room: str | None = None) -> None:
        super().__init__(message, room=room)
        self.source = source


class IngestError(TranscoderError):
    def __init__(
        self,
        message: str,
        *,
        url: str,
        status_code: int | None = None,
        room: str | None = None,
        session: str | None = None,
    ) -> None:
        super().__init__(message, room=room, session=session)
        self.url = url
        self.status_code = status_code


class OriginUnavailableError(IngestError):
    """The origin could not be reached or failed (5xx); worth retrying after a backoff."""


class IngestRejectedError(IngestError):
    """The origin refused the call (4xx); retrying cannot help."""


class FfmpegFailure(TypedDict):
    exit_code: int | None
    stderr_tail: NotRequired[str]
    room: NotRequired[str | None]
    session: NotRequired[str | None]


class FfmpegError(TranscoderError):
    def __init__(
        self,
        message: str,
        *,
        exit_code: int | None,
        stderr_tail: str = "",
        room: str | None = None,
        session: str | None = None,
    ) -> None:
        super().__init__(message, room=room, session=session)
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail


class CrashLoopError(FfmpegError):
    """The supervisor gave up restarting (too many crashes in the window, or the origin stayed down)."""

    def __init__(self, message: str, *, failures: int = 0, **ffmpeg: Unpack[FfmpegFailure]) -> None:
        super().__init__(message, **ffmpeg)
        self.failures = failures
