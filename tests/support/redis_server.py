"""A private redis-server on a free loopback port, for tests and benchmarks (stopped and waited for after).

`durable=True` runs it as a fleet needs it (origin/fleet/durability.py): append-only file, fsync before every
reply. `port` reuses a port, to restart a server on its own data (`directory`); `replica_of` makes it a
replica of the server on that port.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.net import free_port, wait_for_port
from tests.support.process import stop


@dataclass(frozen=True, kw_only=True)
class RedisServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]

    def client(self) -> redis.Redis[bytes]:
        return redis.Redis.from_url(self.url)


def redis_binary() -> str:
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()), None
    )
    if found is None:
        raise RuntimeError("redis-server not found: `make test` installs it (Debian package redis-server)")
    return found


@contextlib.contextmanager
def run_redis(directory: Path, *, durable: bool = False, port: int | None = None, replica_of: int | None = None
              ) -> Iterator[RedisServer]:  # fmt: skip
    port = port or free_port()
    persistence = ["--appendonly", "yes", "--appendfsync", "always"] if durable else ["--appendonly", "no"]
    if replica_of is not None:
        persistence += ["--replicaof", "127.0.0.1", str(replica_of)]
    argv = [
        redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", *persistence,
        "--dir", str(directory), "--protected-mode", "yes", "--loglevel", "warning", "--daemonize", "no",
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=directory)
    try:
        wait_for_port(port, timeout_s=10)
        server = RedisServer(url=f"redis://127.0.0.1:{port}/0", port=port, process=process)
        with server.client() as client:
            for _ in range(100):  # an append-only file is loaded before commands are served
                try:
                    client.ping()
                    break
                except redis.BusyLoadingError:
                    time.sleep(0.05)
        yield server
    finally:
        stop(process)
