"""Restart policy of the supervisor: a pure function of (this attempt's outcome, earlier attempts, now, live).

Capped exponential backoff; a run that stayed up `healthy_after_seconds` resets the backoff. A *file* input
(source.is_live is False) may end: at its end (eos), after a crash loop (`crash_limit` crashes within
`crash_window_seconds`) and when the origin stays unreachable for `origin_give_up_seconds`. A *live* source
never ends by itself: its end means "listen again" (a new session), and the two give-up limits become alarms
(retry every `max_delay_seconds`, an ERROR per attempt, the fault in the status) that last until a healthy
run. What ends any run: an operator stop, a 4xx from the origin, or ffmpeg refusing its own command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """How one attempt (one ingest session) ended; the values are the `end` call's reasons where they apply."""

    EOS = "eos"  # ffmpeg exited 0 on its own: the input ended
    SIGNAL = "signal"  # we were asked to stop and ffmpeg wrote its tail
    CRASH = "crash"  # ffmpeg died (non-zero exit, killed) without being asked
    ORIGIN_DOWN = "origin-down"  # the start call could not reach the origin; no session was opened
    REJECTED = "rejected"  # the origin refused the session (4xx): fatal
    FATAL = "fatal"  # ffmpeg refused its command (option, format, encoder, filter) before pushing anything
    BAD_INPUT = "bad-input"  # ffmpeg refused the input's data before pushing anything: fatal for a file only


class OnEos(StrEnum):
    """What the end of the input means (`--restart-on-eos` / `--exit-on-eos`; AUTO is the default)."""

    AUTO = "auto"  # live sources listen again, file inputs finish
    RESTART = "restart"  # every source starts a new session, files too (a file plays again)
    EXIT = "exit"  # every source finishes, live ones too (the behaviour before live sources restarted)


class Fault(StrEnum):
    """A lasting failure of a live source that would have ended a file input's run (shown in the status)."""

    CRASH_LOOP = "crash-loop"
    ORIGIN_UNREACHABLE = "origin-unreachable"


@dataclass(frozen=True, kw_only=True)
class Attempt:
    outcome: Outcome
    started_at: float  # monotonic seconds
    ended_at: float
    exit_code: int | None = None

    @property
    def failed(self) -> bool:
        return self.outcome in (Outcome.CRASH, Outcome.BAD_INPUT, Outcome.ORIGIN_DOWN)

    @property
    def crashed(self) -> bool:
        return self.outcome in (Outcome.CRASH, Outcome.BAD_INPUT)

    @property
    def duration(self) -> float:
        return self.ended_at - self.started_at


@dataclass(frozen=True, kw_only=True)
class RestartPolicy:
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    crash_limit: int = 5  # this many crashes within the window is a crash loop
    crash_window_seconds: float = 60.0
    healthy_after_seconds: float = 30.0  # a run this long resets the backoff (and ends a live source's fault)
    origin_give_up_seconds: float = 300.0  # origin unreachable this long: a file gives up, a live source alarms
    # An input that ends this soon after its attempt started counts as a failure for the backoff, so a live
    # source that ends at once (an empty stream) does not spin; waiting for a publisher takes longer.
    quick_eos_seconds: float = 2.0
    on_eos: OnEos = OnEos.AUTO


@dataclass(frozen=True, kw_only=True)
class Restart:
    delay_seconds: float
    reason: str
    failure: bool = True  # False: a routine restart (a live input ended and is listened to again)
    fault: Fault | None = None  # set: an alarm (ERROR log, status), not a retry like any other


@dataclass(frozen=True, kw_only=True)
class Finish:
    """Stop supervising; exit_status 0 is a clean end, anything else a failure described by reason."""

    exit_status: int
    reason: str


Decision = Restart | Finish


def counts_as_failure(attempt: Attempt, policy: RestartPolicy) -> bool:
    """A crash, an unreachable origin, or an input that ended within `quick_eos_seconds`."""
    return attempt.failed or (attempt.outcome is Outcome.EOS and attempt.duration < policy.quick_eos_seconds)


def failure_streak(attempts: Sequence[Attempt], policy: RestartPolicy) -> list[Attempt]:
    """The failures at the end of `attempts` since the last healthy (long enough) or successful run."""
    streak: list[Attempt] = []
    for attempt in reversed(attempts):
        if not counts_as_failure(attempt, policy) or attempt.duration >= policy.healthy_after_seconds:
            break
        streak.append(attempt)
    streak.reverse()
    return streak


def consecutive_failures(attempts: Sequence[Attempt], policy: RestartPolicy) -> int:
    return len(failure_streak(attempts, policy))


def backoff_seconds(failures: int, policy: RestartPolicy) -> float:
    """Delay before the next attempt after `failures` consecutive failures (≥1): base · 2^(n−1), capped."""
    if failures <= 0:
        return 0.0
    return float(min(policy.max_delay_seconds, policy.base_delay_seconds * 2 ** min(failures - 1, 32)))


def recent_crashes(attempts: Sequence[Attempt], policy: RestartPolicy, now: float) -> int:
    return sum(1 for a in attempts if a.crashed and now - a.ended_at <= policy.crash_window_seconds)


def origin_down_since(attempts: Sequence[Attempt]) -> float | None:
    """When the trailing run of origin-down attempts began (None: the last attempt reached the origin)."""
    since = None
    for attempt in reversed(attempts):
        if attempt.outcome is not Outcome.ORIGIN_DOWN:
            break
        since = attempt.started_at
    return since


def restarts_at_eos(policy: RestartPolicy, live: bool) -> bool:
    """Whether the end of the input starts a new session (OnEos, and for AUTO the kind of source)."""
    return policy.on_eos is OnEos.RESTART or (policy.on_eos is OnEos.AUTO and live)


def decide(
    policy: RestartPolicy, attempt: Attempt, history: Sequence[Attempt], now: float, *, live: bool = False
) -> Decision:
    """What to do after `attempt` ended; `history` holds the earlier attempts, oldest first; `live` is
    source.is_live of the input (a live source never finishes by itself)."""
    attempts = [*history, attempt]
    failures = consecutive_failures(attempts, policy)
    delay = backoff_seconds(failures, policy)
    match attempt.outcome:
        case Outcome.SIGNAL:
            return Finish(exit_status=0, reason="stopped")
        case Outcome.REJECTED:
            return Finish(exit_status=1, reason="the origin rejected the session")
        case Outcome.FATAL:
            return Finish(exit_status=1, reason="ffmpeg refused its command (an option, format or filter)")
        case Outcome.BAD_INPUT if not live:
            return Finish(exit_status=1, reason="ffmpeg refused the input")
        case Outcome.EOS if not restarts_at_eos(policy, live):
            return Finish(exit_status=0, reason="input ended")
        case Outcome.EOS if failures == 0:
            return Restart(
                delay_seconds=policy.base_delay_seconds, failure=False,
                reason=f"input ended; listening again in {policy.base_delay_seconds:.2f} s (new session)",
            )  # fmt: skip
        case Outcome.EOS:
            return Restart(
                delay_seconds=delay,
                reason=f"input ended {attempt.duration:.1f} s after the start ({failures} in a row); "
                f"listening again in {delay:.2f} s",
            )
    return _after_failure(policy, attempt, attempts, now, live=live, failures=failures, delay=delay)


def _after_failure(
    policy: RestartPolicy, attempt: Attempt, attempts: list[Attempt], now: float, *, live: bool, failures: int,
    delay: float,
) -> Decision:  # fmt: skip
    """A crash (or bad input of a live source) or an unreachable origin: back off, give up or alarm."""
    crashes = recent_crashes(attempts, policy, now)
    if crashes >= policy.crash_limit or (live and _streak_crash_loop(attempts, policy)):
        loop = (
            f"crash loop: ffmpeg crashed {crashes} times within {policy.crash_window_seconds:g} s "
            f"(limit {policy.crash_limit})"
            if crashes >= policy.crash_limit
            else f"crash loop: ffmpeg keeps crashing ({failures} failures in a row, no run of "
            f"{policy.healthy_after_seconds:g} s since)"
        )
        if not live:
            return Finish(exit_status=1, reason=loop)
        return _alarm(policy, Fault.CRASH_LOOP, loop)
    down_since = origin_down_since(attempts) if attempt.outcome is Outcome.ORIGIN_DOWN else None
    if down_since is not None and now - down_since >= policy.origin_give_up_seconds:
        down = (
            f"the origin stayed unreachable for {now - down_since:.0f} s (limit {policy.origin_give_up_seconds:g} s)"
        )
        if not live:
            return Finish(exit_status=1, reason=down)
        return _alarm(policy, Fault.ORIGIN_UNREACHABLE, down)
    what = "the origin is unreachable" if attempt.outcome is Outcome.ORIGIN_DOWN else "ffmpeg crashed"
    if attempt.outcome is Outcome.BAD_INPUT:
        what = "ffmpeg refused the live input"
    return Restart(delay_seconds=delay, reason=f"{what} ({failures} in a row); retrying in {delay:.2f} s")


def _streak_crash_loop(attempts: Sequence[Attempt], policy: RestartPolicy) -> bool:
    """A live source stays in its crash loop until a healthy run: the current failure streak holds as many
    crashes as the loop's limit (the window alone would let it lapse once retries are `max_delay` apart)."""
    return sum(1 for a in failure_streak(attempts, policy) if a.crashed) >= policy.crash_limit


def _alarm(policy: RestartPolicy, fault: Fault, why: str) -> Restart:
    delay = policy.max_delay_seconds
    return Restart(
        delay_seconds=delay, fault=fault,
        reason=f"{why}; the source is live, so retrying every {delay:g} s until an operator stops it",
    )  # fmt: skip
