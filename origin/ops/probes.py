"""Probes that turn a dependency's health into a metric, for alerts that must not wait for traffic."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger(__name__)

BACKEND_PROBE_INTERVAL_S = 2.0


class Checkable(Protocol):
    name: str

    def check(self) -> None:
        """Raise when the dependency cannot be used."""
        ...


class BackendReport(Protocol):
    def admission_backend(self, backend: str, up: bool) -> None: ...


async def watch_backend(backend: Checkable, report: BackendReport, *, interval_s: float = BACKEND_PROBE_INTERVAL_S,
                        timeout_s: float = 2.0) -> None:  # fmt: skip
    """Every `interval_s` until cancelled: `backend.check()` in a thread; up unless it raised or took too long."""
    was_up: bool | None = None
    while True:
        try:
            await asyncio.wait_for(asyncio.to_thread(backend.check), timeout=timeout_s)
            up = True
        except Exception as exc:  # any failure of the probe is "down": that is what it is for
            up = False
            if was_up is not False:
                log.error("admission backend %s unavailable: %s", backend.name, exc)
        if up and was_up is False:
            log.warning("admission backend %s answers again", backend.name)
        report.admission_backend(backend.name, up)
        was_up = up
        await asyncio.sleep(interval_s)
