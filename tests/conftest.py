"""Suite-wide clean-up: every origin a test starts gets a fresh state directory, and with it scratch directories
on tmpfs (/dev/shm/spillway-ll-* and spillway-stats-*, origin/coordination.py scratch_dir) that outlive their
process by design (a host's workers share them). The ones this run created are removed when it ends."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from origin.coordination import SHM


def _boards() -> set[Path]:
    try:
        return set(SHM.glob("spillway-ll-*")) | set(SHM.glob("spillway-stats-*"))
    except OSError:
        return set()


@pytest.fixture(scope="session", autouse=True)
def _remove_new_ll_boards() -> Iterator[None]:
    before = _boards()
    yield
    for board in _boards() - before:
        shutil.rmtree(board, ignore_errors=True)
