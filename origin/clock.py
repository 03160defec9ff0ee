"""The one place the origin reads the wall clock; everything else takes `now` as an argument."""

from __future__ import annotations

import time


def wall_clock() -> float:
    """Seconds since the epoch (PROGRAM-DATE-TIME, leases, timeouts)."""
    return time.time()
