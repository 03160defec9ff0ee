"""The one place admission reads the clock. Everything else takes `now` (Unix seconds, float).

Leases are shared across origin instances (Redis), so they are wall-clock times: keep origin hosts on NTP;
a host whose clock is off by `s` seconds expires leases `s` seconds early or late.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


def system_clock() -> float:
    return time.time()
