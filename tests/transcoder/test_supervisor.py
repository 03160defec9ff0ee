"""Supervisor with real ffmpeg (restart after SIGKILL, clean stop delivering the tail) and scripted fakes
(crash loop, a child that ignores SIGINT/SIGTERM, a live source that never gives up), against the test receiver."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.transcoder.contract import assert_session_contract
from tests.transcoder.fakes import BAD_INPUT, BAD_OPTION, CRASH, CRASH_THEN_RUN, STUBBORN, fake_ffmpeg
from tests.transcoder.receiver import Call, Receiver
from transcoder.errors import CrashLoopError, FfmpegError, IngestRejectedError
from transcoder.ingest import IngestClient
from transcoder.policy import RestartPolicy
from transcoder.runner import run_transcoder
from transcoder.settings import TranscodeSettings
from transcoder.source import SdpSource, UrlSource
from transcoder.status import TranscodeStatus
from transcoder.supervisor import Supervisor

LIVE = UrlSource(url="anoisesrc=r=48000:a=0.1:c=pink", format="lavfi", realtime=True)  # endless, real time
NAMES = ["a48", "a64", "a128"]
FAST = RestartPolicy(base_delay_seconds=0.05, max_delay_seconds=0.2, crash_limit=3, crash_window_seconds=30)


def _settings(rx: Receiver, **kwargs: object) -> TranscodeSettings:
    values: dict[str, object] = {"source": LIVE, "segment_seconds": 1.0, "policy": FAST, **kwargs}
    return TranscodeSettings(room="r1", origin_url=rx.url, token="tok", **values)  # type: ignore[arg-type]


class Background:
    """run_transcoder in a thread, with its statuses and its result."""

    def __init__(self, settings: TranscodeSettings) -> None:
        self.stop = threading.Event()
        self.statuses: list[TranscodeStatus] = []
        self.result: int | BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(settings,), daemon=True)

    def _run(self, settings: TranscodeSettings) -> None:
        try:
            self.result = run_transcoder(settings, stop=self.stop, status=self.statuses.append)
        except BaseException as exc:
            self.result = exc

    def pid(self, session: str) -> int:
        pids = [s.ffmpeg_pid for s in self.statuses if s.session == session and s.ffmpeg_pid]
        assert pids, f"no status with an ffmpeg pid for {session}"
        return pids[-1]


@contextmanager
def background(settings: TranscodeSettings) -> Iterator[Background]:
    bg = Background(settings)
    bg.thread.start()
    try:
        yield bg
    finally:
        bg.stop.set()
        bg.thread.join(60)
        assert not bg.thread.is_alive(), "the supervisor did not stop"


def _has_segments(rx: Receiver, session_index: int, count: int = 1) -> bool:
    sessions = rx.sessions()
    if len(sessions) <= session_index:
        return False
    return all(len(rx.segments(sessions[session_index], n)) >= count for n in NAMES)


def test_sigkill_of_ffmpeg_restarts_with_a_new_session(receiver: Receiver) -> None:
    with background(_settings(receiver)) as bg:
        receiver.wait_for(lambda: _has_segments(receiver, 0), 20, "segments of the first session")
        first = receiver.sessions()[0]
        pid = bg.pid(first)
        os.kill(pid, signal.SIGKILL)
        receiver.wait_for(lambda: _has_segments(receiver, 1), 20, "segments of the second session")
    assert bg.result == 0
    first, second = receiver.sessions()
    assert first != second
    end_first, start_second = receiver.call(first, "end"), receiver.call(second, "start")
    assert end_first is not None and end_first.body == {"reason": "crash"}
    assert start_second is not None and end_first.seq < start_second.seq
    assert_session_contract(receiver, second, renditions=NAMES, end_reason="signal", segment_seconds=1.0)
    assert bg.statuses[-1].restarts == 1
    assert bg.statuses[-1].state == "finished"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_ffmpeg_runs_without_the_token_and_a_refused_session_is_replaced(receiver: Receiver) -> None:
    """ffmpeg writes locally, so its argv (readable by anyone on the host) holds no token; when the origin refuses
    the session mid-way (409: it ended it), the supervisor starts a new one instead of feeding a dead session."""
    with background(_settings(receiver)) as bg:
        receiver.wait_for(lambda: _has_segments(receiver, 0, 2), 20, "segments of the first session")
        first = receiver.sessions()[0]
        cmdline = Path(f"/proc/{bg.pid(first)}/cmdline").read_bytes()
        assert b"ffmpeg" in cmdline and b"tok" not in cmdline and b"http" not in cmdline
        with receiver.lock:
            receiver.put_statuses.append(409)
        receiver.wait_for(lambda: _has_segments(receiver, 1, 2), 20, "segments of a second session")
    assert bg.result == 0
    first, second = receiver.sessions()[:2]
    assert len({p.seq for p in receiver.session_puts(first) if p.status == 409}) == 1  # one request: a wave
    end_first = receiver.call(first, "end")
    assert end_first is not None and end_first.body == {"reason": "crash"}
    assert_session_contract(receiver, second, renditions=NAMES, end_reason="signal", segment_seconds=1.0)


def test_low_latency_streams_are_relayed_without_the_token_in_ffmpeg_and_a_failed_one_restarts(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Low latency: ffmpeg writes each rendition to a pipe and the transcoder PUTs it as one chunked stream; a
    stream the origin refuses mid-way ends the session (its answer read, though it hung up) and a new one starts."""
    receiver.stream_refusals.append(503)
    with background(_settings(receiver, part_seconds=0.2)) as bg:
        receiver.wait_for(lambda: len(receiver.sessions()) >= 2, 20, "a second session after the refused stream")
        second = receiver.sessions()[1]
        receiver.wait_for(lambda: any(s.session == second and s.ffmpeg_pid for s in bg.statuses), 10, "ffmpeg")
        cmdline = Path(f"/proc/{bg.pid(second)}/cmdline").read_bytes()
        assert b"pipe:" in cmdline and b"tok" not in cmdline and b"http" not in cmdline
        time.sleep(1.5)
    assert bg.result == 0
    assert any("stream failed" in r.getMessage() and "origin error 503" in r.getMessage() for r in caplog.records)
    first = receiver.sessions()[0]
    end_first = receiver.call(first, "end")
    assert end_first is not None and end_first.body == {"reason": "crash"}
    streams = receiver.session_puts(second)
    assert sorted(p.rendition for p in streams) == sorted(NAMES) and all(p.name == "stream.mp4" for p in streams)
    for put in streams:
        assert put.chunked and put.complete and put.status == 201
        assert b"ftyp" in put.body[:64] and put.body.count(b"moof") >= 5  # parts of 0.2 s
    end_second = receiver.call(second, "end")
    assert end_second is not None and end_second.seq > max(p.done_seq for p in streams)


def test_crash_loop_gives_up_with_the_stderr_tail(receiver: Receiver, tmp_path: Path) -> None:
    ffmpeg = fake_ffmpeg(tmp_path, CRASH)
    with pytest.raises(CrashLoopError) as info:
        run_transcoder(_settings(receiver, ffmpeg_bin=str(ffmpeg)))
    err = info.value
    assert "crash loop" in err.message and "3 times" in err.message
    assert "out of cheese" in err.message and "out of cheese" in err.stderr_tail
    assert err.exit_code == 1 and err.room == "r1"
    sessions = receiver.sessions()
    assert len(sessions) == 3 and len(set(sessions)) == 3
    for session in sessions:
        end = receiver.call(session, "end")
        assert end is not None and end.body == {"reason": "crash"}


def test_stop_escalates_when_ffmpeg_ignores_sigint_and_sigterm(receiver: Receiver, tmp_path: Path) -> None:
    ffmpeg = fake_ffmpeg(tmp_path, STUBBORN)
    with background(_settings(receiver, ffmpeg_bin=str(ffmpeg), stop_timeout_seconds=0.3)) as bg:
        receiver.wait_for(lambda: any(s.ffmpeg_pid for s in bg.statuses), 10, "the fake ffmpeg")
        started = time.monotonic()
        bg.stop.set()
        bg.thread.join(10)
        assert time.monotonic() - started < 5
    assert bg.result == 0
    (session,) = receiver.sessions()
    end = receiver.call(session, "end")
    assert end is not None and end.body == {"reason": "signal"}


def test_origin_409_on_start_is_fatal(receiver: Receiver) -> None:
    receiver.start_status = 409
    with pytest.raises(IngestRejectedError) as info:
        run_transcoder(_settings(receiver))
    assert info.value.status_code == 409
    assert "ended" in info.value.message
    assert len(receiver.calls) == 1 and not receiver.puts


def test_origin_refusing_connections_is_retried_then_given_up(tmp_path: Path) -> None:
    nobody = Receiver(port=free_port())  # never started: connection refused
    policy = RestartPolicy(base_delay_seconds=0.05, max_delay_seconds=0.1, origin_give_up_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(CrashLoopError) as info:
        run_transcoder(_settings(nobody, policy=policy))
    assert "unreachable" in info.value.message and "cannot reach the origin" in info.value.message
    assert 0.5 <= time.monotonic() - started < 10
    assert info.value.failures >= 3  # retried with backoff before giving up


class FakeClock:
    """Injected time: sleeping advances it at once and is recorded; the wall clock is fixed."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return datetime(2026, 11, 26, 9, 3, 1, tzinfo=UTC)

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.sleeps.append(seconds)
        self.now += seconds
        return stop is not None and stop.is_set()


def test_backoff_delays_come_from_the_injected_clock(receiver: Receiver, tmp_path: Path) -> None:
    ffmpeg = fake_ffmpeg(tmp_path, CRASH)
    clock = FakeClock()
    policy = RestartPolicy(base_delay_seconds=7.0, max_delay_seconds=20.0, crash_limit=4, crash_window_seconds=3600)
    settings = _settings(receiver, ffmpeg_bin=str(ffmpeg), policy=policy)
    with IngestClient(origin_url=receiver.url, room="r1", token="tok") as ingest:
        supervisor = Supervisor(settings, ingest=ingest, clock=clock)
        started = time.monotonic()
        with pytest.raises(CrashLoopError):
            supervisor.run()
    assert time.monotonic() - started < 10  # 7 + 14 + 20 s of backoff were never really slept
    # between crashes: 7, 14, then capped at 20 s; nothing else sleeps (every upload's answer is read before the
    # end call, so there is no settle time to wait)
    assert clock.sleeps == [7.0, 14.0, 20.0]
    assert supervisor.restarts == 3
    assert all(s.startswith("20261126t090301z-") for s in supervisor.sessions)
    assert len(set(supervisor.sessions)) == 4


@pytest.mark.parametrize("part_seconds", [None, 0.2], ids=["segments", "low-latency"])
def test_a_session_is_ended_even_when_ffmpeg_cannot_be_spawned(
    receiver: Receiver, tmp_path: Path, part_seconds: float | None
) -> None:
    from transcoder.errors import FfmpegNotFoundError

    ffmpeg = fake_ffmpeg(tmp_path, CRASH)
    settings = _settings(receiver, ffmpeg_bin=str(ffmpeg), part_seconds=part_seconds)
    ffmpeg.chmod(0o644)  # found at startup by the runner's check, not executable when the supervisor spawns it
    with (
        IngestClient(origin_url=receiver.url, room="r1", token="tok") as ingest,
        pytest.raises(FfmpegNotFoundError),
    ):
        Supervisor(settings, ingest=ingest).run()
    (session,) = receiver.sessions()
    end = receiver.call(session, "end")
    assert end is not None and end.body == {"reason": "crash"}
    assert receiver.puts == []  # nothing was written, nothing was sent (no empty low-latency streams)


def _sdp(tmp_path: Path) -> SdpSource:
    """A live source; the fake ffmpeg children never read it."""
    path = tmp_path / "room.sdp"
    path.write_text("v=0\r\n")
    return SdpSource(path=path, idle_timeout_seconds=2.0)


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and r.name == "transcoder.supervisor"]


def test_a_live_crash_loop_retries_loudly_until_a_healthy_run(
    receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="transcoder")
    ffmpeg = fake_ffmpeg(tmp_path, CRASH_THEN_RUN.format(crashes=4))
    policy = RestartPolicy(
        base_delay_seconds=0.05, max_delay_seconds=0.2, crash_limit=3, crash_window_seconds=30,
        healthy_after_seconds=1.0,
    )  # fmt: skip
    settings = _settings(
        receiver, source=_sdp(tmp_path), ffmpeg_bin=str(ffmpeg), policy=policy, status_interval_seconds=0.1
    )
    with background(settings) as bg:
        receiver.wait_for(lambda: len(receiver.sessions()) == 5, 20, "four crashes, then a fifth session")
        receiver.wait_for(
            lambda: any(s.state == "running" and s.fault is None and s.restarts == 4 for s in bg.statuses), 10,
            "the fifth session to run healthy and clear the fault",
        )  # fmt: skip
    assert bg.result == 0  # a file input would have raised CrashLoopError at the third crash
    faults = [(s.state, s.fault) for s in bg.statuses if s.fault]
    assert ("backoff", "crash-loop") in faults and ("running", "crash-loop") in faults
    errors = _errors(caplog)
    assert len(errors) == 2  # crashes 3 and 4, one ERROR each, with what ffmpeg said
    assert all("crash loop" in e and "the source is live" in e and "out of cheese" in e for e in errors)
    assert any("crash-loop is over" in r.getMessage() for r in caplog.records)


def test_a_live_source_outlives_an_unreachable_origin(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="transcoder")
    origin = Receiver(port=free_port())  # not started yet: connection refused
    clock = FakeClock()
    statuses: list[TranscodeStatus] = []

    def status(s: TranscodeStatus) -> None:
        statuses.append(s)
        if s.state == "backoff" and clock.now > 1000 + 600 and origin._server is None:
            origin.__enter__()  # after ten minutes of injected time (twice a file input's limit) it is back

    ffmpeg = fake_ffmpeg(tmp_path, CRASH_THEN_RUN.format(crashes=0))  # runs until stopped
    settings = _settings(origin, source=_sdp(tmp_path), policy=RestartPolicy(), ffmpeg_bin=str(ffmpeg))
    with IngestClient(origin_url=origin.url, room="r1", token="tok") as ingest:
        supervisor = Supervisor(settings, ingest=ingest, clock=clock, status=status)
        thread = threading.Thread(target=supervisor.run, daemon=True)
        thread.start()
        try:
            origin.wait_for(lambda: origin._server is not None and bool(origin.sessions()), 20, "a session")
            origin.wait_for(lambda: supervisor.fault is None, 5, "the fault to clear once the origin answers")
        finally:
            supervisor.stop.set()
            thread.join(20)
            if origin._server is not None:
                origin.__exit__()
    assert not thread.is_alive()
    backoffs = [s for s in statuses if s.state == "backoff"]
    assert clock.sleeps[:7] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert set(clock.sleeps[7 : len(backoffs)]) == {30.0}  # at the cap, every 30 s, never giving up
    errors = _errors(caplog)
    assert len(errors) >= 9 and all("unreachable" in e and "cannot reach the origin" in e for e in errors)
    assert len(errors) == sum(1 for s in backoffs if s.fault == "origin-unreachable")
    assert backoffs[0].fault is None  # an ordinary retry before the limit
    assert statuses[-1].state == "finished" and statuses[-1].fault is None


def _ends(rx: Receiver) -> list[Call]:
    with rx.lock:
        return [c for c in rx.calls if c.call == "end"]


def test_a_live_source_retries_bad_input_but_not_a_refused_command(receiver: Receiver, tmp_path: Path) -> None:
    bad_input = fake_ffmpeg(tmp_path, BAD_INPUT, name="ffmpeg-bad-input")
    with background(_settings(receiver, source=_sdp(tmp_path), ffmpeg_bin=str(bad_input))):
        receiver.wait_for(lambda: len(_ends(receiver)) >= 3, 20, "three attempts on the bad live input")
    assert [end.body for end in _ends(receiver)[:3]] == [{"reason": "crash"}] * 3
    # the same input read as a file: ffmpeg said it is not audio, retrying cannot help
    with pytest.raises(FfmpegError, match="Invalid data found"):
        run_transcoder(_settings(receiver, source=UrlSource(url="http://127.0.0.1:9/live", realtime=True),
                                 ffmpeg_bin=str(bad_input)))  # fmt: skip
    bad_option = fake_ffmpeg(tmp_path, BAD_OPTION, name="ffmpeg-bad-option")
    before = len(receiver.sessions())
    with pytest.raises(FfmpegError, match="Unrecognized option"):
        run_transcoder(_settings(receiver, source=_sdp(tmp_path), ffmpeg_bin=str(bad_option)))
    assert len(receiver.sessions()) == before + 1
