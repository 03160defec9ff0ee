"""Prometheus metrics, safe under several gunicorn workers (prometheus_client multiprocess mode).

gunicorn_conf.py sets PROMETHEUS_MULTIPROC_DIR before any worker imports prometheus_client.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

_STATES = ("idle", "live", "ending", "ended")

SEGMENTS_RECEIVED = Counter("spillway_segments_received", "Media segments received from transcoders", ["room"])
SEGMENTS_PUBLISHED = Counter("spillway_segments_published", "Media segments named in a published playlist", ["room"])
FILLER_SEGMENTS = Counter(
    "spillway_filler_segments", "Silence/slate segments published while a room's source was gone", ["room"]
)
INGEST_REJECTED = Counter("spillway_ingest_rejected", "Ingest requests refused", ["reason"])
STORAGE_ERRORS = Counter("spillway_storage_errors", "Storage operations that failed after retries", ["backend", "op"])
PUBLISH_LATENCY = Histogram(
    "spillway_publish_latency_seconds",
    "Segment received at the origin -> playlist naming it written to storage",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RETRY_BACKLOG = Gauge(
    "spillway_retry_backlog", "Objects received but not yet durable in storage", ["room"], multiprocess_mode="livemax"
)
LIVE_EDGE = Gauge(
    "spillway_live_edge_timestamp_seconds",
    "When the room's live playlists last advanced (Unix seconds); alert on time() minus this",
    ["room"],
    multiprocess_mode="max",
)
QUARANTINED = Counter("spillway_quarantined_objects", "Received objects the publisher refused to publish", ["room"])
SESSIONS_STARTED = Counter("spillway_ingest_sessions_started", "Ingest sessions opened (restarts included)", ["room"])
COMMIT_LATENCY = Histogram(
    "spillway_group_commit_seconds",
    "Ingest write -> durable (the shared durability barrier)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
STORAGE_HEDGES = Counter(
    "spillway_storage_hedges",
    "Hedged storage writes: extra attempts started (hedged), extra attempts that answered first (won), "
    "newest playlist versions rewritten after an older attempt ended late (repaired)",
    ["backend", "event"],
)
ROOM_STATE = Gauge(
    "spillway_room_state", "1 for the room's broadcast state", ["room", "state"], multiprocess_mode="livemax"
)


class Metrics:
    """The narrow interface the rest of the origin reports through."""

    def received(self, room: str) -> None:
        SEGMENTS_RECEIVED.labels(room).inc()

    def rejected(self, reason: str) -> None:
        INGEST_REJECTED.labels(reason).inc()

    def published(self, room: str, latency_s: float) -> None:
        SEGMENTS_PUBLISHED.labels(room).inc()
        PUBLISH_LATENCY.observe(max(0.0, latency_s))

    def live_edge(self, room: str, at: float) -> None:
        LIVE_EDGE.labels(room).set(at)

    def quarantined(self, room: str) -> None:
        QUARANTINED.labels(room).inc()

    def session_started(self, room: str) -> None:
        SESSIONS_STARTED.labels(room).inc()

    def committed(self, latency_s: float) -> None:
        COMMIT_LATENCY.observe(max(0.0, latency_s))

    def filler(self, room: str, count: int) -> None:
        FILLER_SEGMENTS.labels(room).inc(count)

    def storage_error(self, backend: str, op: str) -> None:
        STORAGE_ERRORS.labels(backend, op).inc()

    def hedge(self, backend: str, event: str) -> None:
        STORAGE_HEDGES.labels(backend, event).inc()

    def room_state(self, room: str, state: str, pending: int) -> None:
        RETRY_BACKLOG.labels(room).set(pending)
        for s in _STATES:
            ROOM_STATE.labels(room, s).set(1 if s == state else 0)


def render() -> tuple[bytes, str]:
    """The exposition text, merged across workers when running under gunicorn."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
