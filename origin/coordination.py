"""How the origin's processes agree about rooms: one host, or a fleet. Chosen by SPILLWAY_COORDINATION.

    local  the room journal in files under state_dir, owner flocks, syncfs group commit, the spool on disk,
           Unix-datagram rings between the host's workers (one host, any number of workers)
    redis  the journal, leases with fencing tokens, the spool and rings in Redis; playlist writes fenced by
           S3 conditional PUTs (origin/fleet/): any number of instances behind one load balancer

Both build the same parts for origin/web/app.py, which wires them without knowing which it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from origin.broadcast.journal.base import Journal, Ownership
from origin.broadcast.journal.files import FileJournal
from origin.broadcast.publish.claims import Claims
from origin.broadcast.publish.doorbell import Doorbell
from origin.broadcast.spool import Spool, SpoolStore
from origin.clock import wall_clock
from origin.settings import Settings
from origin.storage.base import Storage
from origin.storage.filesystem import FilesystemStorage
from origin.storage.group_commit import GroupCommit

COMMIT_LINGER_S = 0.004  # one host: a 201 waits this much longer, so concurrent PUTs share one syncfs
FLEET_CLAIM_BACKOFF_S = 0.1  # the Redis journal itself skips claims while an owner's lease runs
DOWNLOAD_CLAIM_WAIT_S = 10.0  # the room's publisher releases its lease right after the end


class Bell(Protocol):
    def open(self, loop: asyncio.AbstractEventLoop) -> None: ...

    def close(self) -> None: ...

    def ring(self, room: str, durable_before: float = 0.0) -> None: ...


BellFactory = Callable[[Callable[[str], None], Callable[[float], None], Callable[[str], bool]], Bell]


@dataclass(kw_only=True)
class Coordination:
    journal: Journal
    spool: SpoolStore
    commit: GroupCommit
    room_dir: Callable[[str], Path]  # a room's local files (DVR bodies): a cache a new owner rebuilds
    claims: Claims
    publisher_storage: Callable[[Ownership], Storage]  # what a room's owner writes through
    make_bell: BellFactory  # (on_ring, on_durable, owns) -> the doorbell
    download_claim: Callable[[str], AbstractContextManager[bool]] | None = None  # None: a host flock
    checks: list[Callable[[], None]] = field(default_factory=list)  # readiness, besides storage
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


def build_coordination(settings: Settings, storage: Storage) -> Coordination:
    if settings.coordination == "redis":
        return _fleet(settings, storage)
    return _host(settings, storage)


def _host(settings: Settings, storage: Storage) -> Coordination:
    journal = FileJournal(settings.state_dir)
    # One syncfs per filesystem involved (state and storage may share one).
    same_fs = isinstance(storage, FilesystemStorage) and os.stat(storage.root).st_dev == os.stat(journal.root).st_dev

    def sync() -> None:
        journal.sync()
        if not same_fs:
            storage.sync()

    commit = GroupCommit(sync, linger_s=COMMIT_LINGER_S)
    workers = Path(settings.state_dir) / "workers"
    return Coordination(
        journal=journal, spool=Spool(Path(settings.state_dir) / "spool"), commit=commit, room_dir=journal.room_dir,
        claims=Claims(journal, wall_clock), publisher_storage=lambda ownership: storage,
        make_bell=lambda on_ring, on_durable, owns: Doorbell(workers, on_ring=on_ring, on_durable=on_durable),
        closers=[commit.close],
    )  # fmt: skip


def worker_name() -> str:
    """This process in lease values and ring channels: host, pid and a nonce (pids repeat across restarts)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _fleet(settings: Settings, storage: Storage) -> Coordination:
    from origin.admission.redis_backend import connect
    from origin.fleet.doorbell import RedisDoorbell
    from origin.fleet.durability import RedisDurability
    from origin.fleet.fencing import FencedStorage
    from origin.fleet.journal import RedisJournal
    from origin.fleet.keys import DEFAULT_PREFIX, redis_errors
    from origin.fleet.lease import RedisOwnership
    from origin.fleet.spool import RedisSpool
    from origin.storage.s3 import S3Storage

    if not isinstance(storage, S3Storage):
        raise TypeError("a fleet publishes through S3 conditional writes: SPILLWAY_STORAGE=s3")
    client = connect(settings.redis_url)
    worker = worker_name()
    durability = RedisDurability(client, replicas=settings.redis_wait_replicas)
    durability.check()
    journal = RedisJournal(client, worker=worker, lease_s=settings.owner_lease_seconds, sync=durability.sync)
    commit = GroupCommit(durability.sync)  # no linger: the barrier is a no-op or one WAIT
    if durability.visible_is_durable:
        commit.note_durable(float("inf"))  # a record Redis lets anyone read is on its disk already

    def fenced(ownership: Ownership) -> Storage:
        assert isinstance(ownership, RedisOwnership)
        return FencedStorage(storage, ownership)

    def ping() -> None:
        with redis_errors("ping", "(readiness)"):
            client.ping()

    def bell(on_ring: Callable[[str], None], on_durable: Callable[[float], None], owns: Callable[[str], bool]) -> Bell:
        return RedisDoorbell(client, prefix=DEFAULT_PREFIX, worker=worker, on_ring=on_ring, on_durable=on_durable,
                             owns=owns)  # fmt: skip

    local = Path(settings.state_dir) / "rooms"
    return Coordination(
        journal=journal, spool=RedisSpool(client, max_bytes=settings.redis_spool_max_bytes), commit=commit,
        room_dir=lambda room: local / room, publisher_storage=fenced, make_bell=bell,
        claims=Claims(journal, wall_clock, in_thread=True, backoff_s=FLEET_CLAIM_BACKOFF_S, hints=journal),
        download_claim=lambda room: _lease_claim(journal, room), checks=[ping],
        closers=[commit.close, journal.close, client.close],
    )  # fmt: skip


@contextlib.contextmanager
def _lease_claim(journal: Journal, room: str) -> Iterator[bool]:
    """The room's lease for a job only one instance may run (the replay download), waited for a little."""
    deadline = time.monotonic() + DOWNLOAD_CLAIM_WAIT_S
    ownership = journal.try_own(room)
    while ownership is None and time.monotonic() < deadline:
        time.sleep(0.2)
        ownership = journal.try_own(room)
    if ownership is None:
        yield False
        return
    try:
        yield True
    finally:
        ownership.release()
