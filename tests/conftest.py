"""Suite-wide clean-up: every origin a test starts gets a fresh state directory, and with it a low-latency board
on tmpfs (/dev/shm/spillway-ll-*, origin/coordination.py board_dir) that outlives its process by design (a host's
workers share it). The boards this run created are removed when it ends."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from origin.coordination import SHM


def _boards() -> set[Path]:
    try:
        return set(SHM.glob("spillway-ll-*"))
    except OSError:
        return set()


@pytest.fixture(scope="session", autouse=True)
def _remove_new_ll_boards() -> Iterator[None]:
    before = _boards()
    yield
    for board in _boards() - before:
        shutil.rmtree(board, ignore_errors=True)
