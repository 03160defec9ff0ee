"""Forwarding each rendition's init segment to the origin (I/O edge): read the answer, retry, report refusals.

ffmpeg's playlists stay on local disk (command.py), and its hls muxer writes each init beside them, so the
init reaches the origin from here. The cue is in ffmpeg's log (the events FfmpegProcess parsed): a rendition's
init is written and closed just before that rendition's first segment is opened ("Opening '…/000000.m4s' for
writing"), so at that line the file is complete. The PUT runs on this class's own thread (the stderr reader
must not wait on the network); a 5xx or an unreachable origin is retried with backoff until `close` (the origin
takes a session's first segments before their init, docs/ingest.md); a 4xx is final and counted in `rejected`.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

from transcoder.clock import SYSTEM_CLOCK, Clock
from transcoder.command import INIT_FILENAME, local_init_path
from transcoder.errors import IngestRejectedError, OriginUnavailableError
from transcoder.ffmpeg_log import Event, Opened
from transcoder.ingest import IngestClient

log = logging.getLogger(__name__)

RETRY_FIRST_S, RETRY_MAX_S = 0.1, 2.0


class InitForwarder:
    def __init__(self, ingest: IngestClient, *, session: str, local_dir: Path, clock: Clock = SYSTEM_CLOCK) -> None:
        self.ingest = ingest
        self.session = session
        self.local_dir = local_dir
        self.clock = clock
        self.sent: list[str] = []  # renditions whose init the origin took
        self.rejected: list[str] = []  # renditions whose init the origin refused (4xx)
        self._seen: set[str] = set()
        self._todo: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._abandon = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"inits-{session}", daemon=True)

    def __enter__(self) -> InitForwarder:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close(0.0)

    def feed(self, event: Event) -> None:
        """What a line of ffmpeg's stderr said (the reader thread): a rendition's first segment opened → its init
        is due."""
        if isinstance(event, Opened) and event.kind == "segment" and event.rendition not in self._seen:
            self._seen.add(event.rendition)
            self._todo.put(event.rendition)

    def close(self, timeout_s: float) -> None:
        """Send what is due, for up to `timeout_s` more; then give up on the rest (logged)."""
        self._todo.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._abandon.set()
            self._thread.join()

    def _run(self) -> None:
        while (rendition := self._todo.get()) is not None:
            if self._abandon.is_set():
                log.error("session %s: %s: init not sent: the session ended first", self.session, rendition)
            else:
                self._forward(rendition)

    def _forward(self, rendition: str) -> None:
        path = Path(local_init_path(str(self.local_dir), rendition))
        try:
            body = path.read_bytes()
        except OSError as exc:
            log.error("session %s: %s: ffmpeg's init is unreadable: %s", self.session, rendition, exc)
            return
        delay = RETRY_FIRST_S
        while True:
            try:
                self.ingest.put_object(self.session, rendition, INIT_FILENAME, body)
            except OriginUnavailableError as exc:
                if self._abandon.is_set() or self.clock.sleep(delay, self._abandon):
                    log.error("session %s: %s: init not sent before the session ended: %s", self.session, rendition,
                              exc.message)  # fmt: skip
                    return
                log.warning("session %s: %s: init PUT failed, retrying in %.1f s: %s", self.session, rendition, delay,
                            exc.message)  # fmt: skip
                delay = min(delay * 2, RETRY_MAX_S)
            except IngestRejectedError as exc:
                log.error("session %s: %s: the origin refused the init: %s", self.session, rendition, exc.message)
                self.rejected.append(rendition)
                return
            else:
                self.sent.append(rendition)
                return
