"""Restart policy: pure, time injected as `now` (seconds on a monotonic scale)."""

from __future__ import annotations

import dataclasses

from transcoder.policy import (
    Attempt,
    Fault,
    Finish,
    OnEos,
    Outcome,
    Restart,
    RestartPolicy,
    backoff_seconds,
    decide,
    failure_streak,
    origin_down_since,
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


def eos(start: float, end: float) -> Attempt:
    return Attempt(outcome=Outcome.EOS, started_at=start, ended_at=end, exit_code=0)


def down(start: float) -> Attempt:
    return Attempt(outcome=Outcome.ORIGIN_DOWN, started_at=start, ended_at=start + 0.01)


def test_eos_of_a_file_finishes_and_of_a_live_source_listens_again() -> None:
    ended = eos(0, 5)
    finished = decide(POLICY, ended, [], now=5, live=False)
    assert isinstance(finished, Finish) and finished.exit_status == 0 and finished.reason == "input ended"
    again = decide(POLICY, ended, [], now=5, live=True)
    assert isinstance(again, Restart) and again.delay_seconds == 0.5
    assert not again.failure and again.fault is None and "listening again" in again.reason
    # a live source waiting on its input (an RTP idle timeout, a listener) is not a failure: it never backs off
    idle = [eos(t, t + 4.5) for t in range(0, 500, 5)]
    again = decide(POLICY, idle[-1], idle[:-1], now=500, live=True)
    assert isinstance(again, Restart) and again.delay_seconds == 0.5 and not again.failure


def test_on_eos_overrides_the_source_kind() -> None:
    ended = eos(0, 5)
    restart = RestartPolicy(on_eos=OnEos.RESTART)
    exit_ = RestartPolicy(on_eos=OnEos.EXIT)
    for live in (False, True):
        assert isinstance(decide(restart, ended, [], now=5, live=live), Restart)  # --restart-on-eos: files too
        finished = decide(exit_, ended, [], now=5, live=live)  # --exit-on-eos: live sources too
        assert isinstance(finished, Finish) and finished.exit_status == 0


def test_a_live_source_that_ends_at_once_backs_off_instead_of_spinning() -> None:
    history: list[Attempt] = []
    now, delays = 0.0, []
    for _ in range(8):
        attempt = eos(now, now + 0.4)  # ended 0.4 s after the start: less than quick_eos_seconds
        now += 0.4
        decision = decide(POLICY, attempt, history, now, live=True)
        assert isinstance(decision, Restart) and decision.failure and decision.fault is None
        delays.append(decision.delay_seconds)
        history.append(attempt)
        now += decision.delay_seconds
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]  # capped, never gives up
    assert "0.4 s after the start" in decision.reason
    # one input that lasted (a publisher came) resets it
    decision = decide(POLICY, eos(now, now + 60), history, now + 60, live=True)
    assert isinstance(decision, Restart) and decision.delay_seconds == 0.5 and not decision.failure


def test_a_crash_loop_ends_a_file_and_alarms_for_a_live_source() -> None:
    history = [crash(t, t + 1) for t in (0, 2, 5, 9)]
    decision = decide(POLICY, crash(14, 15), history, now=15, live=True)
    assert isinstance(decision, Restart)
    assert decision.fault is Fault.CRASH_LOOP and decision.delay_seconds == POLICY.max_delay_seconds
    assert "crash loop" in decision.reason and "5 times within 60 s" in decision.reason and "live" in decision.reason


def test_a_live_crash_loop_lasts_until_a_healthy_run() -> None:
    # Retries every max_delay (30 s by default): soon fewer than 5 crashes fall within the 60 s window, yet
    # the loop goes on (a file input would have given up at the fifth crash).
    policy = dataclasses.replace(POLICY, max_delay_seconds=30.0)
    history = [crash(t, t + 1) for t in (0, 2, 5, 9, 14)]
    now = 15.0
    for _ in range(20):
        now += policy.max_delay_seconds
        attempt = crash(now, now + 1)
        now += 1
        decision = decide(policy, attempt, history, now, live=True)
        assert isinstance(decision, Restart) and decision.fault is Fault.CRASH_LOOP
        assert decision.delay_seconds == policy.max_delay_seconds
        history.append(attempt)
    assert "keeps crashing" in decision.reason  # the window no longer holds 5 crashes; the streak does
    # a run of healthy_after_seconds ends the loop: restart at once, and the next crash backs off afresh
    healthy = crash(now, now + 31)
    decision = decide(policy, healthy, history, now + 31, live=True)
    assert isinstance(decision, Restart) and decision.fault is None and decision.delay_seconds == 0.0
    decision = decide(policy, crash(now + 31, now + 32), [*history, healthy], now + 32, live=True)
    assert isinstance(decision, Restart) and decision.fault is None and decision.delay_seconds == 0.5
    # and so does a session that ended cleanly (a publisher came and left)
    back = decide(policy, crash(now + 40, now + 41), [*history, eos(now + 5, now + 39)], now + 41, live=True)
    assert isinstance(back, Restart) and back.fault is None and back.delay_seconds == 0.5


def test_the_origin_unreachable_ends_a_file_and_alarms_for_a_live_source() -> None:
    outage = [down(t) for t in (0, 1, 3, 7, 15, 31, 63, 95)]
    late = down(120)
    finished = decide(POLICY, late, outage, now=120.01, live=False)
    assert isinstance(finished, Finish) and finished.exit_status == 1 and "unreachable" in finished.reason
    for t in (120.0, 600.0, 86_400.0):  # minutes, then a day: still retrying, still loud
        decision = decide(POLICY, down(t), outage, now=t + 0.01, live=True)
        assert isinstance(decision, Restart) and decision.fault is Fault.ORIGIN_UNREACHABLE
        assert decision.delay_seconds == POLICY.max_delay_seconds
        assert f"unreachable for {t:.0f} s" in decision.reason
    # before the limit it is an ordinary retry for both kinds of source
    for live in (False, True):
        early = decide(POLICY, down(63), outage[:-2], now=63.01, live=live)
        assert isinstance(early, Restart) and early.fault is None and early.delay_seconds == 8.0
    # reaching the origin again ends the outage: the next failure is counted afresh
    assert origin_down_since([*outage, crash(121, 122)]) is None


def test_bad_input_ends_a_file_and_is_a_crash_for_a_live_source() -> None:
    bad = Attempt(outcome=Outcome.BAD_INPUT, started_at=0, ended_at=0.3, exit_code=1)
    finished = decide(POLICY, bad, [], now=0.3, live=False)
    assert isinstance(finished, Finish) and finished.exit_status == 1 and "refused the input" in finished.reason
    retried = decide(POLICY, bad, [], now=0.3, live=True)
    assert isinstance(retried, Restart) and retried.delay_seconds == 0.5 and "live input" in retried.reason
    # it counts toward the crash loop like a crash
    history = [crash(t, t + 1) for t in (0, 2, 5, 9)]
    looped = decide(POLICY, Attempt(outcome=Outcome.BAD_INPUT, started_at=14, ended_at=15), history, 15, live=True)
    assert isinstance(looped, Restart) and looped.fault is Fault.CRASH_LOOP


def test_only_a_stop_a_rejection_or_a_refused_command_ends_a_live_source() -> None:
    ends = {
        Outcome.SIGNAL: 0,  # an operator stop
        Outcome.REJECTED: 1,  # a 4xx from the origin: broadcast ended, bad token
        Outcome.FATAL: 1,  # ffmpeg refused its own command: the same argv fails the same way every time
    }
    for outcome in Outcome:
        decision = decide(POLICY, Attempt(outcome=outcome, started_at=0, ended_at=5), [], now=5, live=True)
        if outcome in ends:
            assert isinstance(decision, Finish) and decision.exit_status == ends[outcome], outcome
        else:
            assert isinstance(decision, Restart), outcome


def test_failure_streak_stops_at_a_healthy_or_successful_run() -> None:
    attempts = [crash(0, 1), eos(2, 40), crash(41, 42), eos(43, 43.5), down(44)]
    assert failure_streak(attempts, POLICY) == attempts[2:]
    assert failure_streak([*attempts, crash(45, 90)], POLICY) == []  # the last run was healthy
