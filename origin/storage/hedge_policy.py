"""When to hedge a storage write, and when a mutable object needs a repair write (pure: time is an argument).

A write that has not answered after `hedge_delay` gets a second concurrent attempt (and, still slow, a
third): the first success wins ("The Tail at Scale", Dean & Barroso 2013: hedge after a high percentile of
recent latency, so only the tail pays for the extra load). The delay is `factor` × the `quantile` of the
latencies of recent successful attempts, clamped to [min_delay_s, max_delay_s]; until enough samples exist
it is `initial_delay_s`. A budget keeps hedges to a share of recent writes, so a store that is slow for
everyone is not sent twice the load.

Mutable objects (playlists, status.json) are hedged only with the same bytes of one version, and a version
never overtakes a newer one: `Lane` numbers the versions of a key; the attempts of a superseded version stop
retrying, and an attempt of an older version that ends after a newer version was stored (it may have landed
last) calls for a repair write of the newest version.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class HedgePolicy:
    quantile: float = 0.9
    factor: float = 2.0
    min_delay_s: float = 0.05
    max_delay_s: float = 0.5  # a live segment is 1 s: a hedge must start well inside it
    initial_delay_s: float = 0.25
    min_samples: int = 20
    horizon_s: float = 60.0  # latencies older than this are forgotten
    max_samples: int = 512
    max_attempts: int = 3  # concurrent attempts of one write, the first included
    budget: float = 0.5  # hedges at most this share of the writes within the horizon ...
    burst: int = 10  # ... plus this many (a quiet store's first slow writes)
    repair_delay_s: float = 0.3  # after an older attempt ends late: let a request the store still holds land

    def __post_init__(self) -> None:
        if not 0.0 < self.quantile <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {self.quantile}")
        if not 0.0 <= self.min_delay_s <= self.initial_delay_s <= self.max_delay_s:
            raise ValueError("delays must satisfy 0 <= min_delay_s <= initial_delay_s <= max_delay_s")
        if self.max_attempts < 1 or self.factor <= 0 or not 0.0 <= self.budget <= 1.0:
            raise ValueError("max_attempts >= 1, factor > 0 and budget in [0, 1] are required")


@dataclass(frozen=True, kw_only=True)
class Sample:
    at: float  # when the attempt ended (seconds, any monotonic clock)
    latency_s: float


def recent(samples: Sequence[Sample], now: float, policy: HedgePolicy) -> list[Sample]:
    """The samples within the horizon, newest last, at most `max_samples`."""
    kept = [s for s in samples if now - s.at <= policy.horizon_s]
    return kept[-policy.max_samples :]


def quantile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q` quantile of `values` (not empty)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def hedge_delay(samples: Sequence[Sample], now: float, policy: HedgePolicy) -> float:
    """Seconds to wait for an attempt before starting the next one."""
    latencies = [s.latency_s for s in recent(samples, now, policy)]
    if len(latencies) < policy.min_samples:
        return policy.initial_delay_s
    return min(policy.max_delay_s, max(policy.min_delay_s, policy.factor * quantile(latencies, policy.quantile)))


def may_hedge(*, writes: int, hedges: int, policy: HedgePolicy) -> bool:
    """Whether the budget allows one more hedge, given the writes and hedges within the horizon."""
    return hedges < policy.budget * writes + policy.burst


@dataclass(kw_only=True)
class Lane:
    """The versions of one mutable key: issued (handed to the store) and stored (known to have landed)."""

    issued: int = 0
    stored: int = 0
    in_flight: int = 0  # attempts of any version still running

    def issue(self) -> int:
        self.issued += 1
        return self.issued

    def superseded(self, version: int) -> bool:
        """A newer version was issued: the attempts of `version` must not be sent again (no retry)."""
        return version < self.issued

    def landed(self, version: int) -> None:
        self.stored = max(self.stored, version)

    def needs_repair(self, version: int) -> bool:
        """An attempt of `version` ended after a newer version was stored: it may have landed last."""
        return version < self.stored
