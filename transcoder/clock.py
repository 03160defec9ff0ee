"""The only module of the transcoder that reads the clock.

Everything else takes `now` as an argument (policy, status) or a `Clock` (supervisor), so tests inject time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a monotonic scale: durations, deadlines, backoff."""
        ...

    def wall(self) -> datetime:
        """Aware UTC wall-clock time: session ids, log lines."""
        ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Sleep up to `seconds`; return True early if `stop` gets set."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is None:
            time.sleep(max(0.0, seconds))
            return False
        return stop.wait(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()
