"""The supervisor: one ingest session per ffmpeg run, restarts with backoff, clean stop (I/O around pure parts).

    loop:  new session id → POST start → ffmpeg (command.build_argv) → wait / forward stop
           → the uploads' (or streams') last answers → POST end(eos | signal | crash)
           → policy.decide(live=source.is_live) → finish | sleep and again

A live source never finishes by itself (policy.py): its restarts are logged at INFO when routine, WARNING
when they back off, ERROR on every attempt while a fault (crash loop, origin unreachable) lasts.
"""

from __future__ import annotations

import logging
import shlex
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transcoder.clock import SYSTEM_CLOCK, Clock
from transcoder.command import build_argv
from transcoder.errors import CrashLoopError, FfmpegError, IngestError, IngestRejectedError, OriginUnavailableError
from transcoder.ffmpeg_log import LogLine, is_command_error, is_config_error
from transcoder.ingest import IngestClient
from transcoder.policy import Attempt, Fault, Finish, Outcome, Restart, decide, restarts_at_eos
from transcoder.process import FfmpegProcess
from transcoder.session import random_hex, session_id
from transcoder.settings import TranscodeSettings
from transcoder.source import describe, is_live
from transcoder.status import StatusCallback, TranscodeStatus
from transcoder.streams import StreamRelay
from transcoder.tail import report_tails
from transcoder.uploads import Uploads

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # how often a running session checks the stop request (ffmpeg's exit wakes it at once)
END_REASON = {
    Outcome.EOS: "eos", Outcome.SIGNAL: "signal", Outcome.CRASH: "crash", Outcome.FATAL: "crash",
    Outcome.BAD_INPUT: "crash",
}  # fmt: skip
# Attempts the policy sees: far more than any of its rules needs at sane settings (a crash loop retries every
# 30 s), and a bound on a live source's memory over weeks of listening again.
HISTORY_LIMIT = 1000
# After ffmpeg exits, how long the files still due (its tail, or a backlog from an origin outage, retried) may
# hold the session's end before they are given up (logged).
UPLOAD_GRACE_SECONDS = 5.0


@dataclass(frozen=True, kw_only=True)
class _Run:
    outcome: Outcome
    exit_code: int | None
    stderr_tail: str
    segments: int
    last_index: dict[str, int]  # rendition -> the last segment ffmpeg reported written


class Supervisor:
    def __init__(
        self,
        settings: TranscodeSettings,
        *,
        ingest: IngestClient,
        clock: Clock = SYSTEM_CLOCK,
        stop: threading.Event | None = None,
        status: StatusCallback | None = None,
        new_session_id: Callable[[], str] | None = None,
        on_line: Callable[[LogLine], None] | None = None,
    ) -> None:
        self.settings = settings
        self.ingest = ingest
        self.clock = clock
        self.stop = stop if stop is not None else threading.Event()
        self._status = status
        self._new_session_id = new_session_id or (lambda: session_id(self.clock.wall(), random_hex()))
        self._on_line = on_line
        self.sessions: list[str] = []
        self.restarts = 0
        self.segments_pushed = 0
        self._started_at = 0.0
        self._last_status_at = float("-inf")
        self._last_bitrate = 0.0
        self._last_media = 0.0
        self._proc: FfmpegProcess | None = None
        self._uploads: Uploads | None = None
        self.live = is_live(settings.source)
        self.fault: Fault | None = None  # the live source's lasting failure, until a healthy run

    @property
    def room(self) -> str:
        return self.settings.room

    def run(self) -> int:
        """Supervise until `stop` is set or a file input ends (→ 0); raise TranscoderError when giving up."""
        self._started_at = self.clock.monotonic()
        log.info(
            "room %s: source %s is %s; %s", self.room, describe(self.settings.source),
            "live" if self.live else "a file",
            "a new session starts whenever it ends" if restarts_at_eos(self.settings.policy, self.live)
            else "the run ends when it ends",
        )  # fmt: skip
        history: list[Attempt] = []
        last_tail = ""
        last_code: int | None = None
        while not self.stop.is_set():
            session = self._new_session_id()
            started = self.clock.monotonic()
            self._emit("starting", session=session, force=True)
            try:
                self.ingest.start(session, self.settings.ladder, self.settings.segment_seconds,
                                  self.settings.part_seconds)  # fmt: skip
            except OriginUnavailableError as exc:
                log.warning("room %s: session %s: %s", self.room, session, exc.message)
                last_tail, last_code = exc.message, None
                attempt = Attempt(outcome=Outcome.ORIGIN_DOWN, started_at=started, ended_at=self.clock.monotonic())
            except IngestRejectedError as exc:
                exc.room, exc.session = self.room, session
                raise
            else:
                self.sessions.append(session)
                if self.fault is Fault.ORIGIN_UNREACHABLE:
                    self._clear_fault(session, "the origin answered")
                if self.stop.is_set():  # asked to stop while the start call was in flight
                    self._end(session, "signal")
                    break
                try:
                    run = self._run_session(session)
                except BaseException:
                    self._end(session, "crash")  # e.g. ffmpeg vanished since startup: never leave a session open
                    raise
                last_tail, last_code = run.stderr_tail, run.exit_code
                self._end(session, END_REASON[run.outcome])
                attempt = Attempt(
                    outcome=run.outcome, started_at=started, ended_at=self.clock.monotonic(), exit_code=run.exit_code
                )
            decision = decide(self.settings.policy, attempt, history, self.clock.monotonic(), live=self.live)
            history.append(attempt)
            del history[: -max(HISTORY_LIMIT, self.settings.policy.crash_limit)]
            if isinstance(decision, Finish):
                self._emit("finished", session=session, force=True)
                if decision.exit_status == 0:
                    log.info("room %s: %s", self.room, decision.reason)
                    return 0
                raise _give_up_error(self.room, session, decision, attempt, history, last_code, last_tail)
            self.fault = decision.fault
            log.log(_level(decision), "room %s: %s", self.room, _restart_message(decision, last_code, last_tail))
            self.restarts += 1
            self._emit("backoff", session=None, force=True)
            if self.clock.sleep(decision.delay_seconds, self.stop):
                break
        self._emit("finished", session=None, force=True)
        return 0

    def _run_session(self, session: str) -> _Run:
        low_latency = self.settings.part_seconds is not None
        renditions = [r.name for r in self.settings.ladder]
        with tempfile.TemporaryDirectory(prefix=f"spillway-{self.room}-") as local_dir, Uploads(
            self.ingest, session=session, local_dir=Path(local_dir), renditions=renditions, clock=self.clock
        ) as uploads, StreamRelay(self.ingest, session=session,
                                  renditions=renditions if low_latency else []) as streams:  # fmt: skip
            argv = build_argv(self.settings, local_dir=local_dir, stream_fds=streams.write_fds)
            self._uploads = uploads
            try:
                run = self._run_ffmpeg(session, argv, uploads, streams)
            finally:
                uploads.close(UPLOAD_GRACE_SECONDS)
                streams.close(UPLOAD_GRACE_SECONDS)
                self._uploads = None
            if not low_latency:  # low latency writes no playlists
                report_tails(self.room, session, local_dir, renditions, run.last_index)
            return run

    def _run_ffmpeg(self, session: str, argv: list[str], uploads: Uploads, streams: StreamRelay) -> _Run:
        log.debug("room %s: session %s: %s", self.room, session, shlex.join(argv))
        proc = FfmpegProcess(
            argv, room=self.room, session=session, segment_seconds=self.settings.segment_seconds,
            on_line=self._on_line, on_event=uploads.feed, pass_fds=streams.write_fds,
        )
        proc.start()
        streams.child_started()
        self._proc = proc
        started = self.clock.monotonic()
        stopping = refused = False
        try:
            while True:
                code = proc.wait(POLL_SECONDS)
                if code is not None:
                    break
                if uploads.refusal is not None or streams.failure is not None:  # this session can go no further
                    refused = True
                    why = f"HTTP {uploads.refusal}" if uploads.refusal is not None else streams.failure
                    log.warning("room %s: session %s: the origin refused the session or a stream failed (%s); "
                                "starting a new one", self.room, session, why)  # fmt: skip
                    code = proc.stop(self.settings.stop_timeout_seconds)
                    break
                if self.stop.is_set():
                    stopping = True
                    self._emit("stopping", session=session, force=True)
                    log.info("room %s: session %s: stopping ffmpeg (SIGINT)", self.room, session)
                    code = proc.stop(self.settings.stop_timeout_seconds)
                    break
                self._clear_fault_when_healthy(session, started)
                self._emit("running", session=session)
        finally:
            if proc.poll() is None:  # an exception on the way: never leave ffmpeg behind
                proc.stop(self.settings.stop_timeout_seconds)
            proc.join_reader()
            self._proc = None
        with proc.lock:
            segments = proc.tracker.segments_pushed
            last_index = dict(proc.tracker.last_index)
            self._last_bitrate = proc.tracker.bitrate_bps()
            self._last_media = proc.tracker.media_seconds
            command_error = any(is_command_error(line) for line in proc.tail.important)
            config_error = any(is_config_error(line) for line in proc.tail.important)
        self.segments_pushed += segments
        tail = proc.stderr_tail()
        if stopping:
            outcome = Outcome.SIGNAL
        elif refused:
            outcome = Outcome.CRASH  # a failure for the backoff: a new session at once, then slower if refused again
        elif code == 0:
            outcome = Outcome.EOS
        elif config_error and segments == 0:
            outcome = Outcome.FATAL if command_error else Outcome.BAD_INPUT
        else:
            outcome = Outcome.CRASH
        log.log(
            logging.INFO if outcome in (Outcome.SIGNAL, Outcome.EOS) else logging.WARNING,
            "room %s: session %s: ffmpeg exited with code %s (%s) after %d segments",
            self.room, session, code, outcome.value, segments,
        )
        return _Run(outcome=outcome, exit_code=code, stderr_tail=tail, segments=segments, last_index=last_index)

    def _clear_fault_when_healthy(self, session: str, started: float) -> None:
        healthy = self.settings.policy.healthy_after_seconds
        if self.fault is not None and self.clock.monotonic() - started >= healthy:
            self._clear_fault(session, f"up for {healthy:g} s")

    def _clear_fault(self, session: str, why: str) -> None:
        assert self.fault is not None
        log.info("room %s: session %s: %s; %s is over", self.room, session, why, self.fault.value)
        self.fault = None

    def _end(self, session: str, reason: str) -> None:
        try:
            self.ingest.end(session, reason)
        except IngestError as exc:
            # Not fatal: the origin ends a silent session by itself (SPILLWAY_SESSION_TIMEOUT_SECONDS).
            log.warning("room %s: session %s: end call failed: %s", self.room, session, exc.message)

    def _emit(self, state: str, *, session: str | None, force: bool = False) -> None:
        if self._status is None:
            return
        now = self.clock.monotonic()
        if not force and now - self._last_status_at < self.settings.status_interval_seconds:
            return
        self._last_status_at = now
        proc = self._proc
        session_segments, bitrate, media, speed = 0, self._last_bitrate, self._last_media, None
        if proc is not None:
            with proc.lock:
                session_segments = proc.tracker.segments_pushed
                bitrate = proc.tracker.bitrate_bps()
                media, speed = proc.tracker.media_seconds, proc.tracker.speed
        self._status(
            TranscodeStatus(
                room=self.room,
                state=state,
                session=session,
                ffmpeg_pid=proc.pid if proc is not None else None,
                segments_pushed=self.segments_pushed + session_segments,
                session_segments=session_segments,
                bitrate_bps=bitrate,
                restarts=self.restarts,
                media_seconds=media,
                speed=speed,
                uptime_seconds=now - self._started_at,
                fault=self.fault.value if self.fault is not None else None,
                upload_backlog=uploads.backlog if (uploads := self._uploads) is not None else 0,
            )
        )


def _with_output(text: str, exit_code: int | None, tail: str) -> str:
    code = f" (last ffmpeg exit code {exit_code})" if exit_code is not None else ""
    if not tail:
        return f"{text}{code}"
    indented = "\n  ".join(tail.splitlines())
    return f"{text}{code}; last output:\n  {indented}"


def _give_up_message(room: str, reason: str, exit_code: int | None, tail: str) -> str:
    return _with_output(f"room {room}: giving up: {reason}", exit_code, tail)


def _give_up_error(
    room: str, session: str, decision: Finish, attempt: Attempt, history: list[Attempt], code: int | None, tail: str
) -> FfmpegError | CrashLoopError:
    message = _give_up_message(room, decision.reason, code, tail)
    if attempt.outcome in (Outcome.FATAL, Outcome.BAD_INPUT):
        return FfmpegError(message, exit_code=code, stderr_tail=tail, room=room, session=session)
    failures = sum(1 for a in history if a.failed)
    return CrashLoopError(message, exit_code=code, stderr_tail=tail, failures=failures, room=room, session=session)


def _level(decision: Restart) -> int:
    if decision.fault is not None:
        return logging.ERROR
    return logging.WARNING if decision.failure else logging.INFO


def _restart_message(decision: Restart, code: int | None, tail: str) -> str:
    """A fault's ERROR line carries what ffmpeg (or the origin call) said last, as a give-up message would."""
    return _with_output(decision.reason, code, tail) if decision.fault is not None else decision.reason
