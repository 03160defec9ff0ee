"""The doorbell: a worker that recorded something for a room tells the host's other workers at once.

Every worker binds a Unix datagram socket `{state_dir}/workers/{pid}.sock`; `ring(room)` sends the room id
to each of them (and to itself, directly). Only the room's owner acts on it; the others may take the room
if nobody owns it. A ring is a hint: the journal is the truth, and the owner also passes every second.
A ring carries the start time of the durability barrier its sender waited for (`{room} {unix time}`), so
the owner knows the records up to it are durable without running a barrier of its own, and for a segment its
rendition (`{room} {unix time} seg:{rendition}`): the owner passes once the segment's whole ladder rang.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from origin.contract import ids

if TYPE_CHECKING:
    from origin.coordination import RingHandler

log = logging.getLogger(__name__)

PEER_REFRESH_S = 2.0
MAX_DATAGRAM = 256


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
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def ring(self, room: str, durable_before: float = 0.0, rendition: str | None = None) -> None:
        """Tell every worker of this host (this one included) that `room` has new journal records."""
        self.on_ring(room, rendition)
        self._send(ring_message(room, durable_before, rendition))

    def ring_playlist(self, room: str) -> None:
        """Tell every worker that the room's low-latency playlists moved (blocked reloads re-check)."""
        self.on_playlist(room)
        self._send(f"{room} 0 playlist".encode())

    def _send(self, data: bytes) -> None:
        if self._sock is None:
            return
        for peer in self._peer_paths():
            try:
                self._sock.sendto(data, peer)
            except (ConnectionRefusedError, FileNotFoundError):
                self._drop_dead(peer)
            except BlockingIOError:
                log.debug("doorbell of %s is full (%r); it will pass within a second anyway", peer, data[:80])
            except OSError as exc:
                if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                    log.warning("doorbell to %s failed (%r): %s", peer, data[:80], exc)

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
            ring = parse_ring(data)
            if ring is None:
                continue
            room, durable, kind = ring
            if kind == "playlist":
                self.on_playlist(room)
                continue
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
