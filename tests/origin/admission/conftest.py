"""Fixtures for admission tests: a manual clock, both backends behind one fixture (redis_server: tests/origin)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from origin.admission.backend import AdmissionBackend
from origin.admission.redis_backend import RedisAdmission, RedisRoomRegistry
from origin.admission.sqlite_backend import SqliteAdmission, SqliteRoomRegistry
from origin.rooms import RoomRegistry
from tests.origin.admission.backends import BackendSpec
from tests.support.redis_server import RedisServer

START = 1_790_000_000.0  # a fixed wall-clock origin for injected clocks


class ManualClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@dataclass(kw_only=True)
class BackendUnderTest:
    name: str
    backend: AdmissionBackend
    rooms: RoomRegistry
    spec: BackendSpec  # opens another backend object on the same state (another worker or instance)


def _sqlite(tmp_path: Path) -> BackendUnderTest:
    backend = SqliteAdmission.open(tmp_path)
    spec = BackendSpec(kind="sqlite", location=str(tmp_path))
    return BackendUnderTest(name="sqlite", backend=backend, rooms=SqliteRoomRegistry(backend.db), spec=spec)


def _redis(server: RedisServer) -> BackendUnderTest:
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    client = server.client()
    spec = BackendSpec(kind="redis", location=server.url, prefix=prefix)
    return BackendUnderTest(
        name="redis",
        backend=RedisAdmission(client, prefix=prefix),
        rooms=RedisRoomRegistry(client, prefix=prefix),
        spec=spec,
    )


@pytest.fixture(params=["sqlite", "redis"])
def under_test(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendUnderTest]:
    but = _sqlite(tmp_path) if request.param == "sqlite" else _redis(request.getfixturevalue("redis_server"))
    try:
        yield but
    finally:
        but.backend.close()
