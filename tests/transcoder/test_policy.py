"""Restart policy: pure, time injected as `now` (seconds on a monotonic scale)."""

from __future__ import annotations

from transcoder.policy import (
    Attempt,
    Finish,
    Outcome,
    Restart,
    RestartPolicy,
    backoff_seconds,
    decide,
)

POLICY = RestartPolicy(
    base_delay_seconds=0.5, max_delay_seconds=8.0, crash_limit=5, crash_window_seconds=60.0,
    healthy_after_seconds=30.0, origin_give_up_seconds=120.0,
)  # fmt: skip


def crash(start: float, end: float, code: int = 1) -> Attempt:
    return Attempt(outcome=Outcome.CRASH, started_at=start, ended_at=end, exit_code=code)


def test_clean_ends_finish_with_zero() -> None:
    for outcome in (Outcome.EOS, Outcome.SIGNAL):
        decision = decide(POLICY, Attempt(outcome=outcome, started_at=0, ended_at=5), [], now=5)
        assert isinstance(decision, Finish) and decision.exit_status == 0


def test_rejected_and_fatal_give_up_at_once() -> None:
    for outcome in (Outcome.REJECTED, Outcome.FATAL):
        decision = decide(POLICY, Attempt(outcome=outcome, started_at=0, ended_at=0.1), [], now=0.1)
        assert isinstance(decision, Finish) and decision.exit_status == 1


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_seconds(n, POLICY) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff_seconds(0, POLICY) == 0.0
    assert backoff_seconds(10_000, POLICY) == 8.0


def test_consecutive_crashes_back_off_exponentially() -> None:
    history: list[Attempt] = []
    now = 0.0
    delays = []
    for _ in range(4):
        attempt = crash(now, now + 1)
        now += 1
        decision = decide(POLICY, attempt, history, now)
        assert isinstance(decision, Restart)
        delays.append(decision.delay_seconds)
        history.append(attempt)
        now += decision.delay_seconds
    assert delays == [0.5, 1.0, 2.0, 4.0]


def test_crash_loop_gives_up_with_a_reason() -> None:
    history = [crash(t, t + 1) for t in (0, 2, 5, 9)]
    decision = decide(POLICY, crash(14, 15), history, now=15)
    assert isinstance(decision, Finish)
    assert decision.exit_status == 1
    assert "crash loop" in decision.reason and "5 times within 60 s" in decision.reason


def test_crashes_outside_the_window_do_not_count() -> None:
    # Four old crashes (long ago), then one more: not a loop. The old ones are also separated by healthy runs.
    history = [crash(t, t + 1) for t in (0, 2, 5, 9)]
    healthy = crash(20, 200)  # ran 180 s before crashing: resets the backoff
    decision = decide(POLICY, crash(201, 202), [*history, healthy], now=202)
    assert isinstance(decision, Restart)
    assert decision.delay_seconds == 0.5


def test_healthy_run_resets_backoff() -> None:
    history = [crash(0, 1), crash(2, 3), crash(4, 100)]
    decision = decide(POLICY, crash(101, 102), history, now=102)
    assert isinstance(decision, Restart) and decision.delay_seconds == 0.5


def test_origin_down_retries_then_gives_up_after_its_limit() -> None:
    down = [Attempt(outcome=Outcome.ORIGIN_DOWN, started_at=t, ended_at=t + 0.01) for t in (0, 1, 3, 7, 15, 31)]
    decision = decide(POLICY, down[-1], down[:-1], now=31.01)
    assert isinstance(decision, Restart) and decision.delay_seconds == 8.0
    late = Attempt(outcome=Outcome.ORIGIN_DOWN, started_at=120, ended_at=120.01)
    decision = decide(POLICY, late, down, now=120.01)
    assert isinstance(decision, Finish) and "unreachable" in decision.reason
    # ffmpeg crashes do not count toward the origin limit, and origin outages not toward the crash loop
    assert isinstance(decide(POLICY, down[0], [crash(0, 1)] * 3, now=2), Restart)


def test_live_inputs_can_listen_again_after_eos() -> None:
    policy = RestartPolicy(restart_on_eos=True, base_delay_seconds=0.5)
    eos = Attempt(outcome=Outcome.EOS, started_at=0, ended_at=5)
    decision = decide(policy, eos, [eos] * 10, now=5)
    assert isinstance(decision, Restart) and decision.delay_seconds == 0.5
    stopped = decide(policy, Attempt(outcome=Outcome.SIGNAL, started_at=0, ended_at=5), [], now=5)
    assert isinstance(stopped, Finish) and stopped.exit_status == 0
