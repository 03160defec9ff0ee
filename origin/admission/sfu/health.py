"""Is the SFU usable? (pure; time passed in)

A failed SFU call marks it down for `retry_s`: joins in that window are sent to HLS at once (reason
`sfu_unavailable`) without a lease and without waiting on a dead SFU. After the window one join (or one
reconcile pass) tries again; a success marks it up. Transitions are returned so the caller logs them once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

RETRY_S = 2.0  # how long a failed SFU is not even tried by joins


class Transition(enum.Enum):
    NONE = "none"
    WENT_DOWN = "went_down"
    CAME_BACK = "came_back"


@dataclass(kw_only=True)
class SfuHealth:
    retry_s: float = RETRY_S
    up: bool = True
    down_since: float | None = None
    retry_at: float = 0.0
    last_error: str = ""

    def usable(self, now: float) -> bool:
        """True when a join may try the SFU: it is up, or the retry window has passed."""
        return self.up or now >= self.retry_at

    def failed(self, now: float, error: str) -> Transition:
        was_up = self.up
        self.up = False
        self.retry_at = now + self.retry_s
        self.last_error = error
        if was_up:
            self.down_since = now
            return Transition.WENT_DOWN
        return Transition.NONE

    def succeeded(self) -> Transition:
        if self.up:
            return Transition.NONE
        self.up = True
        self.down_since = None
        self.last_error = ""
        return Transition.CAME_BACK
