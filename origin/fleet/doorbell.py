"""RedisDoorbell: a worker that recorded something for a room rings the room's owner, on whichever instance.

Every worker subscribes to its own channel (`{prefix}ring:{worker}`). `ring(room)` tells this worker at once
(it may take the room if nobody owns it), then — unless this worker owns the room — hands the ring to a
sender thread, which asks Redis, in one Lua call per room, to PUBLISH it to the channel named by the room's
current owner lease: no owner cache to go stale at a takeover, and never a blocking call on the event loop.
A ring is a hint, as on one host: the owner also passes every second, and a lost ring costs at most that.
It carries the ringer's durability stamp (durability.py) like the Unix doorbell's. `ring_playlist` (the
owner's low-latency playlists moved, fleet/board.py) wakes this worker's held reloads at once and every other
worker's through one fleet-wide channel: a listener's blocking reload may be held on any instance. Every
worker hears every room's part (~5 messages a second per LL room): cheap next to the reloads they wake.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import redis

from origin.broadcast.publish.doorbell import parse_ring, ring_message, segment_rendition
from origin.contract import ids
from origin.fleet.keys import FleetMember, fleet_keys, room_keys

if TYPE_CHECKING:
    from origin.coordination import RingHandler

log = logging.getLogger(__name__)

BATCH = 256  # rings sent in one pipelined round trip
RETRY_S = 0.5
T = TypeVar("T")

# KEYS: owner. ARGV: channel prefix, message, this worker. PUBLISHes to the owner's channel; 0 if none/us.
_RING = """
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local owner = string.match(cur, '^[^|]*|([^|]*)')
if owner == nil or owner == ARGV[3] then return 0 end
return redis.call('PUBLISH', ARGV[1] .. owner, ARGV[2])
"""


@dataclass(eq=False, kw_only=True)
class RedisDoorbell(FleetMember):
    on_ring: RingHandler
    on_durable: Callable[[float], None]
    owns: Callable[[str], bool]
    on_playlist: Callable[[str], None] = lambda room: None

    def __post_init__(self) -> None:
        self.ring_prefix = fleet_keys(self.prefix).ring_prefix
        self.channel = self.ring_prefix + self.worker
        self.playlist_channel = fleet_keys(self.prefix).playlist_channel
        self._moved: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._ring = self.client.register_script(_RING)
        self._outbox: queue.SimpleQueue[tuple[str, float, str | None] | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for target, name in ((self._listen, "doorbell-in"), (self._send, "doorbell-out"),
                             (self._send_moved, "doorbell-ll")):  # fmt: skip
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        self._stop.set()
        self._outbox.put(None)
        self._moved.put(None)
        for thread in self._threads:
            thread.join(timeout=2)

    def ring(self, room: str, durable_before: float = 0.0, rendition: str | None = None) -> None:
        """Event loop: tell this worker now, the room's owner (elsewhere) soon."""
        self.on_ring(room, rendition)
        if not self.owns(room):
            self._outbox.put((room, durable_before, rendition))

    def ring_playlist(self, room: str) -> None:
        """Event loop: this worker's held reloads now, every other worker's soon."""
        self.on_playlist(room)
        self._moved.put(room)

    def _send_moved(self) -> None:
        while (rooms := set(self._take(self._moved))):
            pipe = self.client.pipeline(transaction=False)
            for room in rooms:
                pipe.publish(self.playlist_channel, f"{room} {self.worker}")
            try:
                pipe.execute()
            except redis.RedisError as exc:  # held reloads re-check every 0.5 s anyway
                log.debug("playlist rings of %d room(s) not sent: %s", len(rooms), exc)

    # -- sending ------------------------------------------------------------------------------------------

    def _take(self, box: queue.SimpleQueue[T | None]) -> list[T]:
        """Block for one item, then take what else is queued (up to BATCH); [] once closing."""
        items: list[T] = []
        while not self._stop.is_set() and len(items) < BATCH:
            try:
                item = box.get() if not items else box.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._stop.set()
                break
            items.append(item)
        return items

    def _send(self) -> None:
        while items := self._take(self._outbox):
            batch: dict[tuple[str, str | None], float] = {}
            for room, stamp, rendition in items:
                batch[room, rendition] = max(batch.get((room, rendition), 0.0), stamp)
            self._publish(batch)

    def _publish(self, batch: dict[tuple[str, str | None], float]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for (room, rendition), stamp in batch.items():
            message = ring_message(room, stamp, rendition)
            self._ring(keys=[room_keys(self.prefix, room).owner], args=[self.ring_prefix, message, self.worker],
                       client=pipe)  # fmt: skip
        try:
            pipe.execute()
        except redis.RedisError as exc:  # a hint: the owners pass every second anyway
            log.debug("rings to %d room(s) not sent: %s", len(batch), exc)

    # -- receiving ----------------------------------------------------------------------------------------

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel, self.playlist_channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=RETRY_S)
                    if message is None or not isinstance(message.get("data"), bytes):
                        continue
                    if message.get("channel") == self.playlist_channel.encode():
                        self._deliver_moved(message["data"])
                    else:
                        self._deliver(message["data"])
            except redis.RedisError as exc:
                log.warning("doorbell subscription lost (%s); resubscribing", exc)
                time.sleep(RETRY_S)
            finally:
                pubsub.close()

    def _deliver_moved(self, data: bytes) -> None:
        room, _, sender = data.decode(errors="replace").partition(" ")
        if self._loop is None or sender == self.worker or not ids.ROOM_ID_PATTERN.fullmatch(room):
            return  # our own ring: this worker was told at once
        self._loop.call_soon_threadsafe(self.on_playlist, room)

    def _deliver(self, data: bytes) -> None:
        ring = parse_ring(data)
        if ring is None or self._loop is None:
            return
        room, durable, kind = ring
        if durable > 0:
            self._loop.call_soon_threadsafe(self.on_durable, durable)
        self._loop.call_soon_threadsafe(self.on_ring, room, segment_rendition(kind))
