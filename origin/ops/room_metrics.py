"""Per-room Prometheus series, computed when /metrics is scraped from the state every worker shares.

Why at scrape time: under gunicorn, prometheus_client keeps each label set a worker ever used in that
worker's file until the master restarts (`remove()` is not implemented in multiprocess mode), so a `room`
label recorded on events grows with every room ever broadcast. Here a room's series come from its folded
journal (the truth, the same in every worker), the owner's figures file (origin/ops/room_stats.py) and the
admission backend, and exist while the room is on air and RECENT_ENDED_S after: a room that ended long
ago costs nothing. At most `max_rooms` rooms are reported (live ones first); `spillway_rooms_omitted`
counts the rest, and the fleet counts (`spillway_rooms{state}`) always cover every room.

Series per reported room: state, source_connected, segment_seconds, live_edge_timestamp_seconds,
live_edge_pdt_seconds, retry_backlog, segments_published_total, sessions_total, fillers_in_tail,
publish_latency_p99_seconds, seats_taken, seats_cap, hls_listeners_recent (13; fewer before data exists).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from origin.admission.backend import AdmissionBackend
from origin.broadcast.model import BroadcastState
from origin.broadcast.states import RoomStates
from origin.broadcast.view import BroadcastSummary, summarize
from origin.errors import OriginError
from origin.ops.room_stats import StatsStore
from origin.rooms import RoomRegistry

log = logging.getLogger(__name__)

RECENT_ENDED_S = 300.0  # an ended room keeps its series this long (the end is seen; alerts resolve)
MAX_ROOMS = 2000  # rooms with per-room series per scrape (SPILLWAY_METRICS_MAX_ROOMS)
_STATES = tuple(s.value for s in BroadcastState)


@dataclass(frozen=True, kw_only=True)
class Seats:
    taken: int
    cap: int
    hls_recent: int


class SeatsView(Protocol):
    """Admission's figures for a room (a backend read). Raises OriginError when the backend is down."""

    def seats(self, room: str, now: float) -> Seats | None: ...


class AdmissionSeats:
    """SeatsView over the room registry and the admission backend."""

    def __init__(self, rooms: RoomRegistry, backend: AdmissionBackend) -> None:
        self.rooms = rooms
        self.backend = backend

    def seats(self, room: str, now: float) -> Seats | None:
        config = self.rooms.get(room)
        if config is None:
            return None  # broadcast state without a room configuration (deleted meanwhile)
        return Seats(taken=self.backend.seats_taken(room, now=now), cap=config.realtime_cap,
                     hls_recent=self.backend.hls_recent(room, now=now))  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class RoomSample:
    room: str
    summary: BroadcastSummary
    seats: Seats | None


@dataclass(kw_only=True)
class RoomSampler:
    """Which rooms to report and their figures (blocking: journal reads, one small file, backend reads)."""

    states: RoomStates
    stats: StatsStore
    seats: SeatsView | None
    clock: Callable[[], float]
    signature: Callable[[str], object] = lambda room: None  # changes when a room's journal is replaced
    max_rooms: int = MAX_ROOMS
    recent_ended_s: float = RECENT_ENDED_S
    _done: dict[str, object] = field(default_factory=dict, init=False)  # rooms ended long ago -> signature then

    def sample(self) -> tuple[list[RoomSample], dict[str, int], int]:
        """(reported rooms, count of rooms per state, rooms omitted past max_rooms)."""
        now = self.clock()
        rooms = self.states.journal.rooms()
        known = set(rooms)
        for room in [r for r in self._done if r not in known]:
            del self._done[room]
        counts = dict.fromkeys(_STATES, 0)
        chosen: list[tuple[bool, str, BroadcastSummary]] = []
        for room in rooms:
            if room in self._done and self._done[room] == self.signature(room):
                continue
            figures = self.stats.read(room)
            with self.states.hold(room) as state:
                ended_at = state.ended_at if state.state is BroadcastState.ENDED else None
                summary = summarize(state, stats=figures, now=now)
            if ended_at is not None and now - ended_at > self.recent_ended_s:
                self._done[room] = self.signature(room)
                continue
            counts[summary.state.value] += 1
            chosen.append((summary.state is BroadcastState.ENDED, room, summary))
        chosen.sort(key=lambda c: (c[0], c[1]))  # live/ending/idle rooms before recently ended ones
        omitted = max(0, len(chosen) - self.max_rooms)
        samples: list[RoomSample] = []
        seats_ok = self.seats is not None
        for _ended, room, summary in chosen[: self.max_rooms]:
            seats: Seats | None = None
            if seats_ok and self.seats is not None:
                try:
                    seats = self.seats.seats(room, now)
                except OriginError as exc:  # backend down: skip seats for this scrape (its probe alerts)
                    log.warning("room=%s seats not reported: %s", room, exc)
                    seats_ok = False
            samples.append(RoomSample(room=room, summary=summary, seats=seats))
        return samples, counts, omitted


def room_families(samples: list[RoomSample], counts: dict[str, int], omitted: int) -> list[Metric]:
    """The exposition families for sampled rooms (pure)."""
    def gauge(name: str, doc: str, labels: tuple[str, ...] = ("room",)) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"spillway_{name}", doc, labels=list(labels))

    state = gauge("room_state", "1, labelled with the room's broadcast state", ("room", "state"))
    connected = gauge("room_source_connected", "1 while an ingest session is open")
    segment = gauge("room_segment_seconds", "Segment length the room's sessions declared")
    edge = gauge("room_live_edge_timestamp_seconds",
                 "When the live playlists last advanced in storage (the broadcast start before the first)")  # fmt: skip
    pdt = gauge("room_live_edge_pdt_seconds", "PROGRAM-DATE-TIME at the end of the newest published segment")
    backlog = gauge("room_retry_backlog", "Objects received but not yet durable in storage")
    fillers = gauge("room_fillers_in_tail", "Filler segments among each rendition's newest 6")
    p99 = gauge("room_publish_latency_p99_seconds", "Publish latency p99 over the owner's last minute")
    taken = gauge("room_seats_taken", "Real-time seats held")
    cap = gauge("room_seats_cap", "Real-time seat cap")
    hls = gauge("room_hls_listeners_recent", "HLS answers given in the last minute")
    published = CounterMetricFamily("spillway_room_segments_published", "Segments named in the room's playlists",
                                    labels=["room"])  # fmt: skip
    sessions = CounterMetricFamily("spillway_room_sessions", "Ingest sessions of the broadcast", labels=["room"])
    for s in samples:
        r, b = [s.room], s.summary
        state.add_metric([s.room, b.state.value], 1)
        connected.add_metric(r, 1 if b.session else 0)
        segment.add_metric(r, b.segment_s)
        edge_at = b.live_edge_at if b.live_edge_at is not None else b.started_at
        if edge_at is not None:
            edge.add_metric(r, edge_at)
        if b.edge_pdt is not None:
            pdt.add_metric(r, b.edge_pdt)
        backlog.add_metric(r, b.backlog)
        fillers.add_metric(r, b.fillers_in_tail)
        if b.publish_p99_s is not None:
            p99.add_metric(r, b.publish_p99_s)
        published.add_metric(r, b.published)
        sessions.add_metric(r, b.sessions)
        if s.seats is not None:
            taken.add_metric(r, s.seats.taken)
            cap.add_metric(r, s.seats.cap)
            hls.add_metric(r, s.seats.hls_recent)
    rooms = gauge("rooms", "Rooms by broadcast state (ended: in the last few minutes)", ("state",))
    for name, n in counts.items():
        rooms.add_metric([name], n)
    skipped = gauge("rooms_omitted", "Rooms without per-room series this scrape (over the room limit)", ())
    skipped.add_metric([], omitted)
    return [state, connected, segment, edge, pdt, backlog, fillers, p99, taken, cap, hls, published, sessions,
            rooms, skipped]  # fmt: skip


class RoomCollector(Collector):
    """A prometheus_client collector over a RoomSampler; add it to metrics.render(extra=...)."""

    def __init__(self, sampler: RoomSampler) -> None:
        self.sampler = sampler

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        samples, counts, omitted = self.sampler.sample()
        yield from room_families(samples, counts, omitted)
        took = GaugeMetricFamily("spillway_room_metrics_seconds", "Time this scrape spent on per-room series")
        took.add_metric([], time.monotonic() - started)
        yield took
