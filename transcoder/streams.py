"""Low latency: relaying each rendition's fragmented-MP4 stream from ffmpeg to the origin (I/O edge).

ffmpeg writes each rendition to a pipe (`pipe:N`, command.build_stream_argv) and this relay PUTs what it reads
as one chunked body per rendition (docs/ingest.md), each fragment on the wire as soon as ffmpeg flushed it. So
the ingest token is never in ffmpeg's argv, and the origin's answer is read when the stream ends. Until
2026-12-08 ffmpeg PUT the streams itself, with the token in a `-headers` option.

A stream that fails (the origin unreachable, a 5xx or a refusal) cannot be resumed mid-fragment: `failure` is
set, and the supervisor stops ffmpeg and starts a new session, as it did when ffmpeg's own PUT failed. The pipe
is read to its end whatever happens, so ffmpeg never blocks on a full pipe.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence

from transcoder.command import STREAM_NAME
from transcoder.errors import IngestError
from transcoder.ingest import IngestClient

log = logging.getLogger(__name__)

READ_BYTES = 65536


class StreamRelay:
    def __init__(self, ingest: IngestClient, *, session: str, renditions: Sequence[str]) -> None:
        self.ingest = ingest
        self.session = session
        self.failure: str | None = None  # why the first stream failed
        self._pipes = {name: os.pipe() for name in renditions}  # rendition -> (read end, write end)
        self._threads = [
            threading.Thread(target=self._relay, args=(name, read), name=f"stream-{session}-{name}", daemon=True)
            for name, (read, _) in self._pipes.items()
        ]
        self._lock = threading.Lock()

    @property
    def write_fds(self) -> list[int]:
        """The pipes' write ends, in rendition order: ffmpeg's outputs (`pipe:N`, passed to the child)."""
        return [write for _, write in self._pipes.values()]

    def __enter__(self) -> StreamRelay:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close(0.0)

    def child_started(self) -> None:
        """ffmpeg holds the write ends now: close ours, so each stream ends when ffmpeg exits, and start sending
        (not before: an ffmpeg that could not be spawned sends the origin nothing)."""
        for _, write in self._pipes.values():
            os.close(write)
        self._pipes = {name: (read, -1) for name, (read, _) in self._pipes.items()}
        for thread in self._threads:
            thread.start()

    def close(self, timeout_s: float) -> None:
        """After ffmpeg exited: wait up to `timeout_s` for the origin's answers."""
        started = [thread for thread in self._threads if thread.ident is not None]
        if not started:  # ffmpeg never started: nothing was sent, nothing will be
            for read, write in self._pipes.values():
                for fd in (read, write):
                    if fd >= 0:
                        os.close(fd)
            self._pipes = {}
            return
        for thread in started:
            thread.join(timeout_s)
        if any(thread.is_alive() for thread in started):
            log.error("session %s: a stream's answer did not come within %.1f s", self.session, timeout_s)

    def _relay(self, rendition: str, read: int) -> None:
        chunks = _chunks(read)
        try:
            self.ingest.object_sender().stream(self.session, rendition, STREAM_NAME, chunks)
        except IngestError as exc:
            with self._lock:
                if self.failure is None:
                    self.failure = exc.message
            log.error("session %s: %s: stream failed: %s", self.session, rendition, exc.message)
        finally:
            for _ in chunks:  # drain: ffmpeg must never block writing to a pipe nobody reads
                pass
            os.close(read)


def _chunks(fd: int) -> Iterator[bytes]:
    while data := os.read(fd, READ_BYTES):
        yield data
