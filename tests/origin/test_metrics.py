"""The origin's own series: a fixed set whatever the number of rooms (docs/operations.md, Cardinality)."""

from __future__ import annotations

from prometheus_client.metrics import MetricWrapperBase

from origin import metrics
from origin.ops.room_stats import MemoryStatsStore, RoomStatsTracker


def recorded_metrics() -> list[MetricWrapperBase]:
    return [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]


def test_no_recorded_metric_carries_a_room_label() -> None:
    found = recorded_metrics()
    assert len(found) >= 15
    for metric in found:
        assert "room" not in metric._labelnames, metric._name


def test_series_do_not_grow_with_rooms() -> None:
    m = metrics.Metrics(stats=RoomStatsTracker(MemoryStatsStore()), storage_backend="filesystem")

    def series() -> int:
        body, _ = metrics.render()
        return sum(1 for line in body.decode().splitlines() if line.startswith("spillway_"))

    def broadcast(room: str) -> None:
        m.session_started(room)
        m.received(room)
        m.published(room, 0.05, 100.0)
        m.live_edge(room, 100.0)
        m.filler(room, 1)
        m.quarantined(room)
        m.storage_error("filesystem", "put")
        m.room_state(room, "ended", 101.0)

    broadcast("warm-up")  # every series exists after one broadcast
    before = series()
    for i in range(200):
        broadcast(f"room{i}")
    assert series() == before
    assert m.stats is not None and m.stats.rooms() == 0  # ended rooms leave the owner's memory too


def test_label_values_are_created_up_front_and_bounded() -> None:
    m = metrics.Metrics(storage_backend="s3")
    body = metrics.render()[0].decode()
    assert 'spillway_joins_total{answer="error",reason="rate_limited"}' in body
    assert 'spillway_ingest_rejected_total{reason="forbidden"}' in body
    assert 'spillway_storage_errors_total{backend="s3",op="put"}' in body
    m.join("error", "teapot")  # an unexpected code is counted as internal, never as a new label value
    m.rejected("teapot")
    assert 'reason="teapot"' not in metrics.render()[0].decode()


def test_render_adds_scrape_time_collectors() -> None:
    class One:
        def collect(self):  # type: ignore[no-untyped-def]
            from prometheus_client.core import GaugeMetricFamily

            g = GaugeMetricFamily("spillway_test_extra", "x")
            g.add_metric([], 7)
            yield g

    assert b"spillway_test_extra 7.0" in metrics.render([One()])[0]  # type: ignore[list-item]
