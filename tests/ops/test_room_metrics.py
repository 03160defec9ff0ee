"""Per-room series at scrape time: live rooms reported, ended rooms gone after the grace, bounded per scrape."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from origin.broadcast.journal.memory import MemoryJournal
from origin.broadcast.model import BroadcastState, EndReason, Publication
from origin.broadcast.records import Published, SessionEnded, StateChanged
from origin.broadcast.states import RoomStates
from origin.errors import StorageError
from origin.ops.room_metrics import RoomCollector, RoomSampler, Seats
from origin.ops.room_stats import MemoryStatsStore, PublishStats
from tests.origin.broadcast.factory import S1, started


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeSeats:
    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    def seats(self, room: str, now: float) -> Seats | None:
        self.calls += 1
        if self.down:
            raise StorageError("connection refused", key=room, backend="redis")
        return Seats(taken=3, cap=5, hls_recent=40)


def publication(msn: int, *, at: float) -> Publication:
    return Publication(rendition="a64", msn=msn, session=S1, idx=msn, duration_s=1.0, pdt=1000.0 + msn,
                       discontinuity=False, size=8000, received_at=at)


def scrape(sampler: RoomSampler) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(RoomCollector(sampler))
    out = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def setup(n_live: int = 1) -> tuple[MemoryJournal, MemoryStatsStore, FakeSeats, Clock, RoomSampler]:
    journal, stats, seats, clock = MemoryJournal(), MemoryStatsStore(), FakeSeats(), Clock(2000.0)
    for i in range(n_live):
        journal.append(f"live{i}", [started(S1, 1000.0), Published(publications=(publication(0, at=1001.0),
                                                                                 publication(1, at=1002.0)))])
    sampler = RoomSampler(states=RoomStates(journal), stats=stats, seats=seats, clock=clock, max_rooms=3,
                          recent_ended_s=300.0)
    return journal, stats, seats, clock, sampler


def test_a_live_room_has_its_series() -> None:
    _journal, stats, _seats, _clock, sampler = setup()
    stats.write("live0", PublishStats(at=1999.0, live_edge_at=1998.5, p50_s=0.01, p99_s=0.12, samples=10,
                                      window_s=60.0, owner_pid=1))
    got = scrape(sampler)
    r = '{room="live0"}'
    assert got['spillway_room_state{room="live0",state="live"}'] == 1
    assert got[f"spillway_room_live_edge_timestamp_seconds{r}"] == 1998.5
    assert got[f"spillway_room_live_edge_pdt_seconds{r}"] == 1002.0  # end of segment msn 1
    assert got[f"spillway_room_segment_seconds{r}"] == 1.0
    assert got[f"spillway_room_publish_latency_p99_seconds{r}"] == 0.12
    assert got[f"spillway_room_segments_published_total{r}"] == 2
    assert got[f"spillway_room_sessions_total{r}"] == 1
    assert got[f"spillway_room_source_connected{r}"] == 1
    assert (got[f"spillway_room_seats_taken{r}"], got[f"spillway_room_seats_cap{r}"]) == (3, 5)
    assert got[f"spillway_room_hls_listeners_recent{r}"] == 40
    assert got['spillway_rooms{state="live"}'] == 1 and got["spillway_rooms_omitted"] == 0
    assert sum(1 for k in got if "live0" in k) == 13  # the documented per-room series count


def test_before_the_first_advance_the_edge_is_the_broadcast_start() -> None:
    *_, sampler = setup()
    assert scrape(sampler)['spillway_room_live_edge_timestamp_seconds{room="live0"}'] == 1000.0


def test_an_ended_room_stays_for_the_grace_then_is_never_read_again() -> None:
    journal, _stats, _seats, clock, sampler = setup()
    journal.append("live0", [SessionEnded(session=S1, at=1500.0, reason=EndReason.EOS),
                             StateChanged(state=BroadcastState.ENDED, at=1900.0)])
    got = scrape(sampler)
    assert got['spillway_room_state{room="live0",state="ended"}'] == 1
    assert got['spillway_rooms{state="ended"}'] == 1
    clock.now = 2201.0  # 301 s after the end
    got = scrape(sampler)
    assert not any("live0" in k for k in got) and got['spillway_rooms{state="ended"}'] == 0
    journal.data.pop("live0")  # deleted: forgotten by the sampler too
    scrape(sampler)
    assert sampler._done == {}


def test_rooms_past_the_limit_are_counted_not_reported_live_first() -> None:
    journal, _stats, _seats, _clock, sampler = setup(n_live=4)
    journal.append("aaa-ended", [started(S1, 1000.0), StateChanged(state=BroadcastState.ENDED, at=1990.0)])
    got = scrape(sampler)
    reported = {k.split('"')[1] for k in got if k.startswith("spillway_room_state{")}
    assert reported == {"live0", "live1", "live2"}  # live rooms before the (alphabetically first) ended one
    assert got["spillway_rooms_omitted"] == 2
    assert got['spillway_rooms{state="live"}'] == 4 and got['spillway_rooms{state="ended"}'] == 1


def test_a_down_admission_backend_costs_one_call_per_scrape_and_drops_only_seats() -> None:
    _journal, _stats, seats, _clock, sampler = setup(n_live=3)
    seats.down = True
    got = scrape(sampler)
    assert seats.calls == 1
    assert not any(k.startswith("spillway_room_seats_taken") for k in got)
    assert got['spillway_room_state{room="live2",state="live"}'] == 1
