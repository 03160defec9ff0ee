"""Running one ffmpeg child: spawn, read its stderr into a PushTracker, stop it gracefully (I/O edge).

Stopping: SIGINT first (ffmpeg finishes the segment in progress, PUTs it and the ENDLIST playlist, then
exits), SIGTERM after `timeout`, SIGKILL after another `timeout`.

ffmpeg gets exactly one SIGINT, from us: a second signal makes ffmpeg's interrupt callback abort every I/O,
including the final segment's PUT. So the child runs in its own process group (a terminal's Ctrl-C or a
parent's `killpg` reaches only the supervisor, which forwards it once), and on Linux it asks the kernel for
SIGTERM when the supervisor thread that started it dies (PR_SET_PDEATHSIG), so it is never orphaned.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

from transcoder.errors import FfmpegNotFoundError
from transcoder.ffmpeg_log import Event, LogLine, PushTracker, StderrTail, parse_line

log = logging.getLogger(__name__)

_LINE_END = re.compile(rb"[\r\n]")
READ_CHUNK_BYTES = 65536
# ffmpeg writes a log line in several small writes; reading at most this often batches them (the pipe
# buffer holds 64 KiB, ~25 s of verbose output), which keeps the supervisor's CPU per room small.
READ_BATCH_SECONDS = 0.1


PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def _child_setup(parent_pid: int) -> Callable[[], None] | None:
    """preexec_fn: SIGTERM ffmpeg when the thread that spawned it dies (resolved before fork; no locks)."""
    prctl = _PRCTL
    if prctl is None:
        return None

    def setup() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return setup


def resolve_ffmpeg(binary: str, *, room: str | None = None) -> str:
    """The executable path of `binary` (a name on PATH or a path); FfmpegNotFoundError otherwise."""
    found = shutil.which(binary)
    if found is None:
        raise FfmpegNotFoundError(binary, room=room)
    return found


class FfmpegProcess:
    def __init__(
        self,
        argv: Sequence[str],
        *,
        room: str,
        session: str,
        segment_seconds: float,
        on_line: Callable[[LogLine], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.argv = list(argv)
        self.pass_fds = tuple(pass_fds)  # low latency: the pipes ffmpeg writes its streams to
        self.room = room
        self.session = session
        self.tracker = PushTracker(segment_seconds=segment_seconds)
        self.tail = StderrTail()
        self.lock = threading.Lock()  # guards tracker and tail
        self._on_line = on_line
        self._on_event = on_event  # what the tracker parsed from a line (parsed once, here)
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._exited = threading.Event()
        self.signals_sent: list[int] = []

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                process_group=0,
                pass_fds=self.pass_fds,
                preexec_fn=_child_setup(os.getpid()),  # one prctl call in the child, see _child_setup
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise FfmpegNotFoundError(self.argv[0], room=self.room) from exc
        self._reader = threading.Thread(
            target=self._read_stderr, name=f"ffmpeg-stderr-{self._proc.pid}", daemon=True
        )
        self._reader.start()
        threading.Thread(target=self._wait_exit, name=f"ffmpeg-wait-{self._proc.pid}", daemon=True).start()
        log.info("room %s: session %s: ffmpeg started (pid %d)", self.room, self.session, self._proc.pid)

    def _wait_exit(self) -> None:
        assert self._proc is not None
        self._proc.wait()  # a blocking waitpid: no polling while ffmpeg runs
        self._exited.set()

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        fd = self._proc.stderr.fileno()
        buffer = b""
        while True:
            chunk = os.read(fd, READ_CHUNK_BYTES)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = _LINE_END.split(buffer)
            for raw in lines:
                if raw:
                    self._handle(raw.decode("utf-8", errors="replace"))
            if not self._exited.is_set():
                self._exited.wait(READ_BATCH_SECONDS)
        if buffer:
            self._handle(buffer.decode("utf-8", errors="replace"))
        self._proc.stderr.close()

    def _handle(self, raw: str) -> None:
        line = parse_line(raw)
        with self.lock:
            event = self.tracker.feed(line)
            self.tail.add(raw, line)
        if event is not None and self._on_event is not None:
            self._on_event(event)
        if line.level in ("error", "fatal", "panic"):
            log.warning("room %s: session %s: ffmpeg: %s", self.room, self.session, line.message)
        if self._on_line is not None:
            self._on_line(line)

    def poll(self) -> int | None:
        assert self._proc is not None
        return self._proc.returncode if self._exited.is_set() else None

    def wait(self, timeout: float | None) -> int | None:
        """Exit code, or None if still running after `timeout` seconds."""
        assert self._proc is not None
        if not self._exited.wait(timeout):
            return None
        return self._proc.returncode

    def send(self, sig: int) -> None:
        assert self._proc is not None
        if not self._exited.is_set():
            self.signals_sent.append(sig)
            self._proc.send_signal(sig)

    def stop(self, timeout: float) -> int:
        """SIGINT, then SIGTERM after `timeout`, then SIGKILL after `timeout`; returns the exit code."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.send(sig)
            code = self.wait(timeout)
            if code is not None:
                return code
            log.warning(
                "room %s: session %s: ffmpeg still running %.1f s after %s; escalating",
                self.room, self.session, timeout, signal.Signals(sig).name,
            )
        self.send(signal.SIGKILL)
        code = self.wait(None)
        assert code is not None
        return code

    def join_reader(self, timeout: float = 5.0) -> None:
        """Wait until stderr is read to its end, so the tracker holds every segment ffmpeg reported."""
        if self._reader is not None:
            self._reader.join(timeout)

    def stderr_tail(self, max_lines: int = 10) -> str:
        with self.lock:
            return self.tail.text(max_lines)
