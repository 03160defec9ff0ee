"""Fixtures for admission tests: a manual clock, a real redis-server, both backends behind one fixture."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from origin.admission.backend import AdmissionBackend
from origin.admission.redis_backend import RedisAdmission, RedisRoomRegistry
from origin.admission.sqlite_backend import SqliteAdmission, SqliteRoomRegistry
from origin.rooms import RoomRegistry
from tests.origin.admission.backends import BackendSpec
from tests.support.net import free_port, wait_for_port
from tests.support.process import stop

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


@dataclass(frozen=True, kw_only=True)
class RedisServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]

    def client(self) -> redis.Redis[bytes]:
        return redis.Redis.from_url(self.url)


def _redis_binary() -> str:
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()), None
    )
    if found is None:
        raise RuntimeError("redis-server not found: `make test` installs it (Debian package redis-server)")
    return found


@contextlib.contextmanager
def run_redis(directory: Path) -> Iterator[RedisServer]:
    """A private redis-server on a free loopback port, no persistence; stopped (and waited for) after."""
    port = free_port()
    argv = [
        _redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(directory), "--protected-mode", "yes", "--loglevel", "warning", "--daemonize", "no",
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=directory)
    try:
        wait_for_port(port, timeout_s=10)
        server = RedisServer(url=f"redis://127.0.0.1:{port}/0", port=port, process=process)
        with server.client() as client:
            client.ping()
        yield server
    finally:
        stop(process)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with run_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


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
