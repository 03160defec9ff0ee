"""The clock type admission components take. Reading the clock itself is origin/clock.py's job."""

from __future__ import annotations

from collections.abc import Callable

from origin.clock import wall_clock

Clock = Callable[[], float]  # Unix seconds; tests inject a manual clock

__all__ = ["Clock", "wall_clock"]
