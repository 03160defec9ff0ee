"""Supervisor with real ffmpeg (restart after SIGKILL, clean stop delivering the tail) and scripted fakes
(crash loop, a child that ignores SIGINT/SIGTERM), against the test receiver."""

from __future__ import annotations

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
from tests.transcoder.fakes import CRASH, STUBBORN, fake_ffmpeg
from tests.transcoder.receiver import Receiver
from transcoder.errors import CrashLoopError, IngestRejectedError
from transcoder.ingest import IngestClient
from transcoder.policy import RestartPolicy
from transcoder.runner import run_transcoder
from transcoder.settings import TranscodeSettings
from transcoder.source import UrlSource
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


def test_backoff_and_settle_delays_come_from_the_injected_clock(receiver: Receiver, tmp_path: Path) -> None:
    ffmpeg = fake_ffmpeg(tmp_path, CRASH)
    clock = FakeClock()
    policy = RestartPolicy(base_delay_seconds=7.0, max_delay_seconds=20.0, crash_limit=4, crash_window_seconds=3600)
    settings = _settings(receiver, ffmpeg_bin=str(ffmpeg), policy=policy, end_settle_seconds=0.25)
    with IngestClient(origin_url=receiver.url, room="r1", token="tok") as ingest:
        supervisor = Supervisor(settings, ingest=ingest, clock=clock)
        started = time.monotonic()
        with pytest.raises(CrashLoopError):
            supervisor.run()
    assert time.monotonic() - started < 10  # 7 + 14 + 20 s of backoff were never really slept
    # per crash: settle before the end call; between crashes: 7, 14, then capped at 20 s of backoff
    assert clock.sleeps == [0.25, 7.0, 0.25, 14.0, 0.25, 20.0, 0.25]
    assert supervisor.restarts == 3
    assert all(s.startswith("20261126t090301z-") for s in supervisor.sessions)
    assert len(set(supervisor.sessions)) == 4


def test_a_session_is_ended_even_when_ffmpeg_cannot_be_spawned(receiver: Receiver, tmp_path: Path) -> None:
    from transcoder.errors import FfmpegNotFoundError

    ffmpeg = fake_ffmpeg(tmp_path, CRASH)
    settings = _settings(receiver, ffmpeg_bin=str(ffmpeg))
    ffmpeg.chmod(0o644)  # found at startup by the runner's check, not executable when the supervisor spawns it
    with (
        IngestClient(origin_url=receiver.url, room="r1", token="tok") as ingest,
        pytest.raises(FfmpegNotFoundError),
    ):
        Supervisor(settings, ingest=ingest).run()
    (session,) = receiver.sessions()
    end = receiver.call(session, "end")
    assert end is not None and end.body == {"reason": "crash"}
