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
import hashlib
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
from origin.broadcast.journal.files import JOURNAL_NAME, FileJournal
from origin.broadcast.publish.claims import Claims
from origin.broadcast.publish.doorbell import Doorbell
from origin.broadcast.publish.lowlatency import Board, PlaylistBoard
from origin.broadcast.spool import Spool, SpoolStore
from origin.clock import wall_clock
from origin.contract import ids
from origin.replay.download import REMUX_TIMEOUT_S
from origin.settings import Settings
from origin.storage.base import Storage
from origin.storage.filesystem import FilesystemStorage
from origin.storage.group_commit import GroupCommit

COMMIT_LINGER_S = 0.004  # one host: a 201 waits this much longer, so concurrent PUTs share one syncfs
FLEET_CLAIM_BACKOFF_S = 0.1  # the Redis journal itself skips claims while an owner's lease runs
DOWNLOAD_CLAIM_WAIT_S = 10.0  # the room's publisher releases its lease right after the end


class RingHandler(Protocol):
    def __call__(self, room: str, rendition: str | None = None) -> None:
        """A room has new records; `rendition`: a segment of it (the owner gathers a segment's renditions)."""


class Bell(Protocol):
    def open(self, loop: asyncio.AbstractEventLoop) -> None: ...

    def close(self) -> None: ...

    def ring(self, room: str, durable_before: float = 0.0, rendition: str | None = None) -> None: ...

    def ring_playlist(self, room: str) -> None: ...


@dataclass(frozen=True, kw_only=True)
class BellHandlers:
    on_ring: RingHandler  # the scheduler: a room has new records
    on_durable: Callable[[float], None]  # the group commit: records before this time are durable
    on_playlist: Callable[[str], None]  # the held low-latency reloads: a room's LL playlists moved
    owns: Callable[[str], bool]  # whether this worker publishes the room


@dataclass(kw_only=True)
class Coordination:
    journal: Journal
    spool: SpoolStore
    commit: GroupCommit
    room_dir: Callable[[str], Path]  # a room's local files (DVR bodies): a cache a new owner rebuilds
    claims: Claims
    publisher_storage: Callable[[Ownership], Storage]  # what a room's owner writes through
    make_bell: Callable[[BellHandlers], Bell]
    signature: Callable[[str], object]  # changes when a room is deleted and broadcast anew (per-room metrics)
    board: PlaylistBoard  # the low-latency playlists: the host's files, or Redis in a fleet
    download_claim: Callable[[str, bool], AbstractContextManager[bool]] | None = None  # None: a host flock
    checks: list[Callable[[], None]] = field(default_factory=list)  # readiness, besides storage
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


def local_room_dir(settings: Settings) -> Callable[[str], Path]:
    """A room's directory on this host: its journal (one host) or its caches (a fleet)."""
    root = Path(settings.state_dir) / "rooms"
    return lambda room: root / ids.room_id(room)


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

    def bell(h: BellHandlers) -> Bell:
        return Doorbell(workers, on_ring=h.on_ring, on_durable=h.on_durable, on_playlist=h.on_playlist)

    def signature(room: str) -> object:
        """The journal's inode: a room deleted and broadcast anew gets a new one."""
        try:
            return os.stat(journal.room_dir(room) / JOURNAL_NAME).st_ino
        except OSError:
            return None

    return Coordination(
        journal=journal, spool=Spool(Path(settings.state_dir) / "spool"), commit=commit, room_dir=journal.room_dir,
        claims=Claims(journal, wall_clock), publisher_storage=lambda ownership: storage, make_bell=bell,
        signature=signature, board=Board(board_dir(settings.state_dir)), closers=[commit.close],
    )  # fmt: skip


SHM = Path("/dev/shm")


def scratch_dir(state_dir: str | Path, kind: str) -> Path:
    """A host's files that are rewritten all the time and never need to survive a reboot: tmpfs when there is
    one (a rewrite on this ext4 cost 0.11 ms of CPU, on tmpfs 0.02; a replace freed an inode every time, and
    ext4's inode allocator then skips every recently freed one at each new segment). Named after the state
    directory, so origins on one host with their own state never share one."""
    if SHM.is_dir() and os.access(SHM, os.W_OK):
        digest = hashlib.sha256(os.path.realpath(state_dir).encode()).hexdigest()[:16]
        return SHM / f"spillway-{kind}-{digest}"
    return Path(state_dir) / kind


def board_dir(state_dir: str | Path) -> Path:
    """Where one host's LL playlists live (rewritten every part, ~15 times a second per room)."""
    return scratch_dir(state_dir, "ll")


def stats_dir(state_dir: str | Path) -> Path:
    """Where the owners' per-room figures live (origin/ops/room_stats.py: replaced up to twice a second per room)."""
    return scratch_dir(state_dir, "stats")


def worker_name() -> str:
    """This process in lease values and ring channels: host, pid and a nonce (pids repeat across restarts)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _fleet(settings: Settings, storage: Storage) -> Coordination:
    from origin.admission.redis_backend import connect
    from origin.fleet.board import RedisBoard
    from origin.fleet.doorbell import RedisDoorbell
    from origin.fleet.durability import RedisDurability
    from origin.fleet.fencing import FencedStorage
    from origin.fleet.journal import RedisJournal
    from origin.fleet.keys import DEFAULT_PREFIX, redis_errors
    from origin.fleet.lease import RedisOwnership
    from origin.fleet.spool import RedisSpool
    from origin.storage.hedge import HedgedStorage
    from origin.storage.s3 import S3Storage

    # Playlists go through conditional PUTs on S3 itself: their ETag chain keeps an older version from landing
    # after a newer one (what hedging's repairs do for unconditional writes); everything else may be hedged.
    s3 = storage.below if isinstance(storage, HedgedStorage) else storage
    if not isinstance(s3, S3Storage):
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
        return FencedStorage(s3, ownership, others=storage)

    def ping() -> None:
        with redis_errors("ping", "(readiness)"):
            client.ping()

    def bell(h: BellHandlers) -> Bell:
        return RedisDoorbell(client, prefix=DEFAULT_PREFIX, worker=worker, on_ring=h.on_ring, on_durable=h.on_durable,
                             on_playlist=h.on_playlist, owns=h.owns)  # fmt: skip

    return Coordination(
        journal=journal, spool=RedisSpool(client, max_bytes=settings.redis_spool_max_bytes), commit=commit,
        room_dir=local_room_dir(settings), publisher_storage=fenced, make_bell=bell, signature=journal.signature,
        board=RedisBoard(client, prefix=DEFAULT_PREFIX),
        claims=Claims(journal, wall_clock, in_thread=True, backoff_s=FLEET_CLAIM_BACKOFF_S, hints=journal),
        download_claim=lambda room, wait: _lease_claim(journal, room, wait_s=REMUX_TIMEOUT_S if wait
                                                       else DOWNLOAD_CLAIM_WAIT_S), checks=[ping],
        closers=[commit.close, journal.close, client.close],
    )  # fmt: skip


@contextlib.contextmanager
def _lease_claim(journal: Journal, room: str, wait_s: float) -> Iterator[bool]:
    """The room's lease for a job only one instance may run at a time (the replay download, a deletion)."""
    deadline = time.monotonic() + wait_s
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
