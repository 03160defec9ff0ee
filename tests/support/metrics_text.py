"""Read counters off a Prometheus text exposition (the origin's /metrics) in benches and tests."""

from __future__ import annotations

import re


def counter_total(metrics: str, name: str, labels: str = "") -> float:
    """The sum of the series of `name` whose labels contain `labels` (every series when `labels` is empty)."""
    pattern = (rf"^{name}\{{[^}}]*{labels}[^}}]*\}} ([0-9.e+]+)$" if labels
               else rf"^{name}(?:\{{[^}}]*\}})? ([0-9.e+]+)$")  # fmt: skip
    return sum(float(v) for v in re.findall(pattern, metrics, re.M))
