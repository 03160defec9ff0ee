"""The doorbell: a worker that recorded something for a room tells the host's other workers at once.

Every worker binds a Unix datagram socket `{state_dir}/workers/{pid}.sock`; `ring(room)` sends the room id
to each of them (and to itself, directly). Only the room's owner acts on it; the others may take the room
if nobody owns it. A ring is a hint: the journal is the truth, and the owner also passes every second.
A ring carries the start time of the durability barrier its sender waited for (`{room} {unix time}`), so
the owner knows the records up to it are durable without running a barrier of its own, and for a segment its
rendition (`{room} {unix time} seg:{rendition}`): the owner passes once the segment's whole ladder rang.

Rings are batched: those of one event-loop turn go out together, one per line, in as few datagrams as fit. A
Unix datagram socket queues only `net.unix.max_dgram_qlen` datagrams (10 by default; a sysctl, root only), and a
worker whose loop is busy for a few ms used to find its peer's queue full and drop the ring: at 200 rooms of
waves 2,522 of ~12,000 rings were lost and those segments waited for the owner's next second (publish p99
0.9-1.7 s). Rings a peer cannot take yet wait for it in a bounded queue and go out once it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from origin.contract import ids

if TYPE_CHECKING:
    from origin.coordination import RingHandler

log = logging.getLogger(__name__)

PEER_REFRESH_S = 2.0
MAX_DATAGRAM = 8192  # a batch of rings (≤ ~120 B each), one per line
RETRY_S, RETRY_MAX_S = 0.002, 0.1  # a peer's queue was full: try again this soon, backing off (a stopped peer)
BACKLOG_MAX = 20_000  # rings waiting for one peer; past this the oldest go (the owner passes every second)


class PeerQueue:
    """Rings waiting for one peer, oldest first, sent as datagrams of whole lines; bounded (pure)."""

    def __init__(self, limit: int = BACKLOG_MAX) -> None:
        self.limit = limit
        self.dropped = 0  # rings dropped for the bound since the last report
        self._lines: deque[bytes] = deque()
        self._taken = 0

    def __len__(self) -> int:
        return len(self._lines)

    def extend(self, lines: list[bytes]) -> None:
        self._lines.extend(lines)
        while len(self._lines) > self.limit:
            self._lines.popleft()
            self.dropped += 1

    def next_datagram(self) -> bytes | None:
        """The oldest rings that fit one datagram (None when empty); `sent` removes them once they went out."""
        size, self._taken = 0, 0
        for line in self._lines:
            if self._taken and size + len(line) + 1 > MAX_DATAGRAM:
                break
            size += len(line) + 1
            self._taken += 1
        return b"\n".join(itertools.islice(self._lines, self._taken)) if self._taken else None

    def sent(self) -> None:
        for _ in range(self._taken):
            self._lines.popleft()
        self._taken = 0


class Doorbell:
    def __init__(
        self,
        directory: Path,
        on_ring: RingHandler,
        on_durable: Callable[[float], None] = lambda t: None,
        on_playlist: Callable[[str], None] = lambda room: None,
    ) -> None:
        self.directory = Path(directory)
        self.on_ring = on_ring
        self.on_durable = on_durable
        self.on_playlist = on_playlist  # a new low-latency playlist version is on the board
        self.path = self.directory / f"{os.getpid()}.sock"
        self._sock: socket.socket | None = None
        self._peers: list[str] = []
        self._peers_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: list[bytes] = []  # this loop turn's rings
        self._queues: dict[str, PeerQueue] = {}  # peer -> rings it has not taken yet
        self._flush: asyncio.Handle | None = None
        self._retry_s = RETRY_S

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a previous process with our pid
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        sock.bind(str(self.path))
        self._sock = sock
        self._loop = loop
        loop.add_reader(sock.fileno(), self._read)

    def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def ring(self, room: str, durable_before: float = 0.0, rendition: str | None = None) -> None:
        """Tell every worker of this host (this one included) that `room` has new journal records. Any thread:
        the scheduler and the batch are the event loop's."""
        if self._hop(self.ring, room, durable_before, rendition):
            return
        self.on_ring(room, rendition)
        self._send(ring_message(room, durable_before, rendition))

    def ring_playlist(self, room: str) -> None:
        """Tell every worker that the room's low-latency playlists moved (blocked reloads re-check)."""
        if self._hop(self.ring_playlist, room):
            return
        self.on_playlist(room)
        self._send(f"{room} 0 playlist".encode())

    def _hop(self, fn: Callable[..., None], *args: object) -> bool:
        """Called off the event loop (a blocking service in a thread): run `fn` there instead (True)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return False
        loop.call_soon_threadsafe(fn, *args)
        return True

    def _send(self, data: bytes) -> None:
        if self._sock is None or self._loop is None:
            return
        self._outbox.append(data)
        if self._flush is None:
            self._flush = self._loop.call_soon(self._send_batch)

    def _send_batch(self) -> None:
        """This turn's rings to every peer, after what each has not taken yet; a full peer is retried soon."""
        self._flush = None
        if self._sock is None or self._loop is None:
            return
        lines, self._outbox = self._outbox, []
        if lines:
            for peer in self._peer_paths():
                self._queues.setdefault(peer, PeerQueue()).extend(lines)
        blocked = False
        for peer, queue in list(self._queues.items()):
            blocked |= self._drain(peer, queue)
            if queue.dropped:
                log.warning("doorbell of %s stayed full: %d rings dropped (its rooms pass every second anyway)",
                            peer, queue.dropped)  # fmt: skip
                queue.dropped = 0
            if not queue:
                self._queues.pop(peer, None)
        if blocked:
            self._flush = self._loop.call_later(self._retry_s, self._send_batch)
            self._retry_s = min(2 * self._retry_s, RETRY_MAX_S)
        else:
            self._retry_s = RETRY_S

    def _drain(self, peer: str, queue: PeerQueue) -> bool:
        """Send `queue` to `peer` until it is empty (False) or the peer's socket is full (True)."""
        assert self._sock is not None
        while (datagram := queue.next_datagram()) is not None:
            try:
                self._sock.sendto(datagram, peer)
            except BlockingIOError:
                return True
            except (ConnectionRefusedError, FileNotFoundError):
                self._queues.pop(peer, None)
                self._drop_dead(peer)
                return False
            except OSError as exc:
                if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                    log.warning("doorbell to %s failed (%d rings dropped): %s", peer, len(queue), exc)
                self._queues.pop(peer, None)
                return False
            queue.sent()
        return False

    def _peer_paths(self) -> list[str]:
        now = time.monotonic()
        if now - self._peers_at >= PEER_REFRESH_S:
            try:
                self._peers = [str(p) for p in self.directory.glob("*.sock") if p != self.path]
            except OSError:
                self._peers = []
            self._peers_at = now
        return self._peers

    def _drop_dead(self, peer: str) -> None:
        """A socket file nobody listens on (its worker died): remove it so rings stop trying it."""
        with contextlib.suppress(OSError):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                probe.connect(peer)
            except ConnectionRefusedError:
                os.unlink(peer)
            finally:
                probe.close()
        self._peers_at = 0.0

    def _read(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return
            except OSError as exc:
                log.warning("doorbell read failed: %s", exc)
                return
            for line in data.split(b"\n"):
                self._handle(line)

    def _handle(self, line: bytes) -> None:
        ring = parse_ring(line)
        if ring is None:
            return
        room, durable, kind = ring
        if kind == "playlist":
            self.on_playlist(room)
            return
        if durable > 0:
            self.on_durable(durable)
        self.on_ring(room, segment_rendition(kind))


def ring_message(room: str, durable_before: float, rendition: str | None) -> bytes:
    return f"{room} {durable_before:.6f}{f' seg:{rendition}' if rendition else ''}".encode()


def segment_rendition(kind: str) -> str | None:
    """The rendition a ring's kind `seg:{rendition}` names (None for any other kind, or a malformed name)."""
    name = kind.removeprefix("seg:")
    return name if name != kind and ids.RENDITION_PATTERN.fullmatch(name) else None


def parse_ring(data: bytes) -> tuple[str, float, str] | None:
    """`{room} {durable_before}[ {kind}]` → (room, durable_before: 0 when absent or not a number, kind), None
    without a room id."""
    room, _, rest = data.decode("ascii", errors="replace").partition(" ")
    stamp, _, kind = rest.partition(" ")
    if not ids.ROOM_ID_PATTERN.fullmatch(room):
        return None
    try:
        durable = float(stamp)
    except ValueError:
        durable = 0.0
    return room, durable if durable == durable else 0.0, kind  # NaN: none
