"""The host doorbell: its rings (room, durability stamp, and for a segment its rendition), batched into
datagrams that wait for a busy peer, and rung from any thread."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

from origin.broadcast.publish.doorbell import (
    MAX_DATAGRAM,
    Doorbell,
    PeerQueue,
    parse_ring,
    ring_message,
    segment_rendition,
)


def test_a_segment_ring_names_its_rendition_and_others_do_not() -> None:
    seg = parse_ring(ring_message("launch", 1234.5, "a64"))
    assert seg is not None and seg[:2] == ("launch", 1234.5) and segment_rendition(seg[2]) == "a64"
    plain = parse_ring(ring_message("launch", 0.0, None))
    assert plain == ("launch", 0.0, "") and segment_rendition(plain[2]) is None
    assert segment_rendition("playlist") is None


def test_malformed_rings_are_dropped_or_carry_nothing() -> None:
    assert parse_ring(b"../etc 1.0 seg:a64") is None  # not a room id
    bad = parse_ring(b"launch nan seg:A/../x")
    assert bad is not None and bad[1] == 0.0 and segment_rendition(bad[2]) is None


def test_a_peer_queue_sends_whole_lines_in_bounded_datagrams_and_drops_the_oldest_past_its_bound() -> None:
    queue = PeerQueue(limit=1000)
    lines = [ring_message(f"room-{i:04d}", 1234.5, "a64") for i in range(300)]
    queue.extend(lines)
    got: list[bytes] = []
    while (datagram := queue.next_datagram()) is not None:
        assert len(datagram) <= MAX_DATAGRAM
        got.extend(datagram.split(b"\n"))
        queue.sent()
    assert got == lines and len(queue) == 0
    queue.extend(lines * 4)
    assert len(queue) == 1000 and queue.dropped == 200
    first = queue.next_datagram()
    assert first is not None and first.split(b"\n")[0] == lines[200]  # the oldest went
    assert len(queue) == 1000  # nothing leaves until it was sent


def test_rings_wait_for_a_busy_peer_instead_of_being_lost(tmp_path: Path) -> None:
    """A peer whose loop does not read for a while (its socket queues only net.unix.max_dgram_qlen datagrams,
    10 by default): every ring reaches it once it reads. Before batching and queueing, all but ~10 were lost."""
    got: list[tuple[str, str | None]] = []
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    peer.bind(str(tmp_path / "peer.sock"))
    peer.setblocking(False)

    async def main() -> None:
        bell = Doorbell(tmp_path, on_ring=lambda room, rendition=None: None)
        bell.open(asyncio.get_running_loop())
        try:
            for i in range(600):  # one ring per loop turn: the worst case for batching
                bell.ring(f"room-{i % 50}", 1.0, f"a{i}")
                await asyncio.sleep(0)
            await asyncio.sleep(0.05)
            for _ in range(200):  # the peer reads, as its loop would once free
                try:
                    data = peer.recv(MAX_DATAGRAM)
                except BlockingIOError:
                    await asyncio.sleep(0.01)
                    continue
                for line in data.split(b"\n"):
                    ring = parse_ring(line)
                    assert ring is not None
                    got.append((ring[0], segment_rendition(ring[2])))
                if len(got) == 600:
                    break
        finally:
            bell.close()

    asyncio.run(main())
    peer.close()
    assert got == [(f"room-{i % 50}", f"a{i}") for i in range(600)]


def test_a_ring_from_another_thread_runs_on_the_loop(tmp_path: Path) -> None:
    seen: list[tuple[str, bool]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def on_ring(room: str, rendition: str | None = None) -> None:
            seen.append((room, threading.current_thread() is threading.main_thread()))

        bell = Doorbell(tmp_path, on_ring=on_ring)
        bell.open(loop)
        try:
            await asyncio.to_thread(bell.ring, "launch")  # an event recorded by a blocking service
            await asyncio.sleep(0.05)
        finally:
            bell.close()

    asyncio.run(main())
    assert seen == [("launch", True)]
