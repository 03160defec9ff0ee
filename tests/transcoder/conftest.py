from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.transcoder.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(token="tok") as rx:
        yield rx
