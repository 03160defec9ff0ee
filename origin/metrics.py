"""Prometheus metrics, safe under several gunicorn workers (prometheus_client multiprocess mode).

gunicorn_conf.py sets PROMETHEUS_MULTIPROC_DIR before any worker imports prometheus_client.

Two kinds of series (docs/operations.md, "Cardinality"):
- fleet series, recorded here by the process that sees the event, with small fixed label sets only. In
  multiprocess mode a label set, once used, lives in the worker's file until the gunicorn master restarts
  (prometheus_client cannot remove it), so nothing here carries a room id.
- per-room series (`spillway_room_*`), computed at scrape time from the shared room state by
  origin/ops/room_metrics.py: a room's series exist while it is on air and a few minutes after.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

from origin.ops.room_stats import RoomStatsTracker

SEGMENTS_RECEIVED = Counter("spillway_segments_received", "Media segments received from transcoders")
SEGMENTS_PUBLISHED = Counter("spillway_segments_published", "Media segments named in a published playlist")
PUBLISH_PASSES = Counter("spillway_publish_passes", "Publishing passes run (per segment received: the pass overhead)")
FILLER_SEGMENTS = Counter("spillway_filler_segments", "Silence/slate segments published while a source was gone")
INGEST_REJECTED = Counter("spillway_ingest_rejected", "Ingest requests refused, by error code", ["reason"])
STORAGE_ERRORS = Counter(
    "spillway_storage_errors", "Storage operations that failed after retries (spooled or retried next pass)",
    ["backend", "op"],
)  # fmt: skip
STORAGE_ATTEMPT_FAILURES = Counter(
    "spillway_storage_attempt_failures", "Failed storage attempts, retried or not", ["backend", "kind"]
)
PUBLISH_LATENCY = Histogram(
    "spillway_publish_latency_seconds",
    "Segment received at the origin -> playlist naming it written to storage",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0),
)
QUARANTINED = Counter("spillway_quarantined_objects", "Received objects the publisher refused to publish")
SESSIONS_STARTED = Counter("spillway_ingest_sessions_started", "Ingest sessions opened (restarts included)")
COMMIT_LATENCY = Histogram(
    "spillway_group_commit_seconds",
    "Ingest write -> durable (the shared durability barrier)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
JOINS = Counter("spillway_joins", "Join answers: a seat, HLS (with why), or an error code", ["answer", "reason"])
ADMISSION_BACKEND_UP = Gauge(
    "spillway_admission_backend_up", "1 while the admission backend answers this worker's probe", ["backend"],
    multiprocess_mode="livemin",
)  # fmt: skip
STATUS_WRITES = Counter("spillway_status_writes", "status.json documents written")
STATUS_FAILURES = Counter("spillway_status_failures", "status.json publishing attempts that failed (retried)")
STATUS_PENDING_AGE = Gauge(
    "spillway_status_pending_age_seconds", "Age of the oldest room change not yet in its status.json",
    multiprocess_mode="livemax",
)  # fmt: skip
STATUS_FLUSHED = Gauge(
    "spillway_status_flush_timestamp_seconds", "When this worker's status.json publisher last ran (Unix s)",
    multiprocess_mode="livemin",
)  # fmt: skip

# Label values created up front, so every series a rule or a panel names exists from the first scrape.
INGEST_REASONS = ("invalid_request", "unauthorized", "forbidden", "not_found", "conflict", "body_too_large",
                  "rate_limited", "unavailable", "internal")  # fmt: skip
HLS_REASONS = ("full", "no_realtime", "sfu_unavailable")
JOIN_ERRORS = ("invalid_request", "not_found", "conflict", "rate_limited", "unavailable", "internal")
STORAGE_OPS = ("put",)
STORAGE_HEDGES = Counter(
    "spillway_storage_hedges",
    "Hedged storage writes: extra attempts started (hedged), extra attempts that answered first (won), "
    "newest playlist versions rewritten after an older attempt ended late (repaired)",
    ["backend", "event"],
)


class Metrics:
    """The narrow interface the rest of the origin reports through.

    `stats` (the owner's per-room latency window and live edge, origin/ops/room_stats.py) is fed from the
    same calls, so the publisher reports once.
    """

    def __init__(self, *, stats: RoomStatsTracker | None = None, storage_backend: str | None = None) -> None:
        self.stats = stats
        for reason in INGEST_REASONS:
            INGEST_REJECTED.labels(reason)
        for reason in HLS_REASONS:
            JOINS.labels("hls", reason)
        JOINS.labels("seat", "granted")
        for code in JOIN_ERRORS:
            JOINS.labels("error", code)
        if storage_backend is not None:
            for op in STORAGE_OPS:
                STORAGE_ERRORS.labels(storage_backend, op)

    # -- ingest and publishing ---------------------------------------------------------------------------

    def received(self, room: str) -> None:
        SEGMENTS_RECEIVED.inc()

    def rejected(self, reason: str) -> None:
        INGEST_REJECTED.labels(reason if reason in INGEST_REASONS else "internal").inc()

    def published(self, room: str, latency_s: float, now: float) -> None:
        SEGMENTS_PUBLISHED.inc()
        PUBLISH_LATENCY.observe(max(0.0, latency_s))
        if self.stats is not None:
            self.stats.observe(room, latency_s, now)

    def live_edge(self, room: str, at: float) -> None:
        if self.stats is not None:
            self.stats.edge_advanced(room, at)

    def quarantined(self, room: str) -> None:
        QUARANTINED.inc()

    def session_started(self, room: str) -> None:
        SESSIONS_STARTED.inc()

    def committed(self, latency_s: float) -> None:
        COMMIT_LATENCY.observe(max(0.0, latency_s))

    def filler(self, room: str, count: int) -> None:
        FILLER_SEGMENTS.inc(count)

    def storage_error(self, backend: str, op: str) -> None:
        STORAGE_ERRORS.labels(backend, op).inc()

    def storage_attempt_failed(self, backend: str, kind: str) -> None:
        STORAGE_ATTEMPT_FAILURES.labels(backend, kind).inc()

    def room_state(self, room: str, state: str, now: float) -> None:
        """End of a publishing pass: share the owner's figures (origin/ops/room_stats.py)."""
        PUBLISH_PASSES.inc()
        if self.stats is not None:
            self.stats.flush(room, now, final=state == "ended")

    # -- admission -----------------------------------------------------------------------------------------

    def join(self, answer: str, reason: str) -> None:
        if answer == "error" and reason not in JOIN_ERRORS:
            reason = "internal"
        JOINS.labels(answer, reason).inc()

    def admission_backend(self, backend: str, up: bool) -> None:
        ADMISSION_BACKEND_UP.labels(backend).set(1 if up else 0)

    def status_flushed(self, now: float, *, pending_age_s: float, written: int, failed: int) -> None:
        STATUS_FLUSHED.set(now)
        STATUS_PENDING_AGE.set(pending_age_s)
        if written:
            STATUS_WRITES.inc(written)
        if failed:
            STATUS_FAILURES.inc(failed)

    def hedge(self, backend: str, event: str) -> None:
        STORAGE_HEDGES.labels(backend, event).inc()


def render(extra: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The exposition text, merged across workers when running under gunicorn, plus `extra` collectors
    (the per-room series computed at scrape time). Blocking: run it in a thread."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client import REGISTRY

        registry.register(_Forward(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward(Collector):
    """The process's default registry inside another registry (single-process mode: tests, the demo)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self):  # type: ignore[no-untyped-def]
        return self.registry.collect()
