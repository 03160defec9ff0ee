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


class ErrorContext(TypedDict, total=False):
    """Where an error happened, as far as the raiser knows (every error carries both, None when unknown)."""

    room: str | None
    session: str | None


class TranscoderError(Exception):
    """Root of every error the transcoder raises on purpose."""

    exit_status = 1

    def __init__(self, message: str, **context: Unpack[ErrorContext]) -> None:
        super().__init__(message)
        self.message = message
        self.room = context.get("room")
        self.session = context.get("session")


class ConfigError(TranscoderError):
    exit_status = 2


class FfmpegNotFoundError(ConfigError):
    def __init__(self, binary: str, **context: Unpack[ErrorContext]) -> None:
        super().__init__(
            f"ffmpeg not found: {binary!r} is not an executable on PATH (install ffmpeg or pass --ffmpeg)", **context
        )
        self.binary = binary


class SourceError(TranscoderError):
    def __init__(self, message: str, *, source: str, **context: Unpack[ErrorContext]) -> None:
        super().__init__(message, **context)
        self.source = source


class IngestError(TranscoderError):
    def __init__(
        self, message: str, *, url: str, status_code: int | None = None, **context: Unpack[ErrorContext]
    ) -> None:
        super().__init__(message, **context)
        self.url = url
        self.status_code = status_code


class OriginUnavailableError(IngestError):
    """The origin could not be reached or failed (5xx); worth retrying after a backoff."""


class IngestRejectedError(IngestError):
    """The origin refused the call (4xx); retrying cannot help."""


class FfmpegFailure(ErrorContext):
    exit_code: int | None
    stderr_tail: NotRequired[str]


class FfmpegError(TranscoderError):
    def __init__(
        self, message: str, *, exit_code: int | None, stderr_tail: str = "", **context: Unpack[ErrorContext]
    ) -> None:
        super().__init__(message, **context)
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail


class CrashLoopError(FfmpegError):
    """The supervisor gave up restarting (too many crashes in the window, or the origin stayed down)."""

    def __init__(self, message: str, *, failures: int = 0, **ffmpeg: Unpack[FfmpegFailure]) -> None:
        super().__init__(message, **ffmpeg)
        self.failures = failures
