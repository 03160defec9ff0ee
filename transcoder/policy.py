"""Restart policy of the supervisor: a pure function of (this attempt's outcome, earlier attempts, now).

Capped exponential backoff; a run that stayed up `healthy_after_seconds` resets the backoff; more than
`crash_limit` crashes within `crash_window_seconds` is a crash loop and gives up, and so does an origin that
stays unreachable for `origin_give_up_seconds`.
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
    FATAL = "fatal"  # ffmpeg refused the command or input before pushing anything: retrying cannot help


@dataclass(frozen=True, kw_only=True)
class Attempt:
    outcome: Outcome
    started_at: float  # monotonic seconds
    ended_at: float
    exit_code: int | None = None

    @property
    def failed(self) -> bool:
        return self.outcome in (Outcome.CRASH, Outcome.ORIGIN_DOWN)

    @property
    def duration(self) -> float:
        return self.ended_at - self.started_at


@dataclass(frozen=True, kw_only=True)
class RestartPolicy:
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    crash_limit: int = 5  # this many crashes within the window is a crash loop
    crash_window_seconds: float = 60.0
    healthy_after_seconds: float = 30.0  # a run this long resets the backoff
    origin_give_up_seconds: float = 300.0  # origin unreachable for this long: give up
    restart_on_eos: bool = False  # live listener inputs: when the publisher leaves, listen again (new session)


@dataclass(frozen=True, kw_only=True)
class Restart:
    delay_seconds: float
    reason: str


@dataclass(frozen=True, kw_only=True)
class Finish:
    """Stop supervising; exit_status 0 is a clean end, anything else a failure described by reason."""

    exit_status: int
    reason: str


Decision = Restart | Finish


def consecutive_failures(attempts: Sequence[Attempt], policy: RestartPolicy) -> int:
    """Failures at the end of `attempts` since the last healthy (long enough) or successful run."""
    count = 0
    for attempt in reversed(attempts):
        if not attempt.failed or attempt.duration >= policy.healthy_after_seconds:
            break
        count += 1
    return count


def backoff_seconds(failures: int, policy: RestartPolicy) -> float:
    """Delay before the next attempt after `failures` consecutive failures (≥1): base · 2^(n−1), capped."""
    if failures <= 0:
        return 0.0
    return float(min(policy.max_delay_seconds, policy.base_delay_seconds * 2 ** min(failures - 1, 32)))


def decide(policy: RestartPolicy, attempt: Attempt, history: Sequence[Attempt], now: float) -> Decision:
    """What to do after `attempt` ended; `history` holds the earlier attempts, oldest first."""
    if attempt.outcome is Outcome.EOS:
        if policy.restart_on_eos:
            return Restart(delay_seconds=policy.base_delay_seconds, reason="input ended; listening again")
        return Finish(exit_status=0, reason="input ended")
    if attempt.outcome is Outcome.SIGNAL:
        return Finish(exit_status=0, reason="stopped")
    if attempt.outcome is Outcome.REJECTED:
        return Finish(exit_status=1, reason="the origin rejected the session")
    if attempt.outcome is Outcome.FATAL:
        return Finish(exit_status=1, reason="ffmpeg refused the input or an option")

    attempts = [*history, attempt]
    recent_crashes = [
        a for a in attempts if a.outcome is Outcome.CRASH and now - a.ended_at <= policy.crash_window_seconds
    ]
    if len(recent_crashes) >= policy.crash_limit:
        return Finish(
            exit_status=1,
            reason=(
                f"crash loop: ffmpeg crashed {len(recent_crashes)} times within "
                f"{policy.crash_window_seconds:g} s (limit {policy.crash_limit})"
            ),
        )
    if attempt.outcome is Outcome.ORIGIN_DOWN:
        down_since = attempt.started_at
        for earlier in reversed(history):
            if earlier.outcome is not Outcome.ORIGIN_DOWN:
                break
            down_since = earlier.started_at
        if now - down_since >= policy.origin_give_up_seconds:
            return Finish(
                exit_status=1,
                reason=f"the origin stayed unreachable for {now - down_since:.0f} s "
                f"(limit {policy.origin_give_up_seconds:g} s)",
            )

    failures = consecutive_failures(attempts, policy)
    delay = backoff_seconds(failures, policy)
    what = "ffmpeg crashed" if attempt.outcome is Outcome.CRASH else "the origin is unreachable"
    return Restart(delay_seconds=delay, reason=f"{what} ({failures} in a row); retrying in {delay:.2f} s")
