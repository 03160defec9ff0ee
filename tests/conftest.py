"""Suite-wide clean-up: every origin a test starts gets a fresh state directory, and with it scratch directories
on tmpfs (/dev/shm/spillway-ll-* and spillway-stats-*, origin/coordination.py scratch_dir) that outlive their
process by design (a host's workers share them). The ones this run created are removed when it ends.

`make test` runs the suite in two pytest-xdist workers, then the `serial` tests alone: the clean-up belongs to the
controlling process (the only one without `workerinput`), which starts before and ends after every worker — a
worker that finished early must not remove the boards of the other worker's live origins.

`serial`: the real-time system tests and the browser tests with timing bounds. Beside another heavy test on 2
cores they measure the neighbour and make it late: in parallel runs never-dead-air's listener fell 16 s behind,
the browser's playback and the SFU room's WebRTC promotion missed their bounds, and the edge's collapse test
(parallel) served a 2.8 s old playlist (bound 2.5 s) beside the fleet and reliability tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from origin.coordination import SHM

_BEFORE = pytest.StashKey[set[Path]]()
SERIAL = ("system/", "cdn_config/test_edge_low_latency.py", "origin/player/test_browser.py")


def _boards() -> set[Path]:
    try:
        return set(SHM.glob("spillway-ll-*")) | set(SHM.glob("spillway-stats-*"))
    except OSError:
        return set()


def _controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if _controller(session.config):
        session.config.stash[_BEFORE] = _boards()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        if item.path.relative_to(root).as_posix().startswith(SERIAL):
            item.add_marker(pytest.mark.serial)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_BEFORE, None)
    if _controller(session.config) and before is not None:
        for board in _boards() - before:
            shutil.rmtree(board, ignore_errors=True)
