"""SFU health (pure): down for a retry window after a failure, transitions reported once."""

from __future__ import annotations

from origin.admission.sfu.health import SfuHealth, Transition


def test_failure_closes_joins_for_the_retry_window_then_one_may_try() -> None:
    h = SfuHealth(retry_s=2.0)
    assert h.usable(0.0)
    assert h.failed(10.0, "refused") is Transition.WENT_DOWN
    assert not h.usable(11.9)
    assert h.usable(12.0)
    assert h.failed(12.0, "refused again") is Transition.NONE  # still down: no second "went down"
    assert not h.usable(13.0) and h.down_since == 10.0
    assert h.succeeded() is Transition.CAME_BACK
    assert h.usable(13.0) and h.succeeded() is Transition.NONE
