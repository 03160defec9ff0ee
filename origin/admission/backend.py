"""The one interface both admission backends implement, and helpers they share (pure).

Backends: `SqliteAdmission` (sqlite_backend.py; one machine, any number of gunicorn workers) and
`RedisAdmission` (redis_backend.py; any number of origin instances). Both pass tests/origin/admission/
test_backend_contract.py, which also checks them against `decision.LeaseTable`, the reference semantics.

Invariant: for every room and every `now`, the number of live leases (expiry > now) never exceeds the `cap`
passed to the `admit` that created them. `admit` is one atomic check-and-insert; when the room is full it is
read-only (no write, no write lock), so a flood past the cap costs reads only.
"""

from __future__ import annotations

import json
import math
import re
from typing import Protocol

from origin.admission.decision import AdmitResult
from origin.errors import StorageError
from origin.rooms import Room

HLS_BUCKET_S = 10  # HLS answers are counted in 10 s buckets ...
HLS_WINDOW_BUCKETS = 6  # ... and "recent" sums the last 6 (50–60 s)
HLS_BUCKET_TTL_S = HLS_BUCKET_S * (HLS_WINDOW_BUCKETS + 2)
PUBLISH_TASK = "publish"  # claim() task of the status.json publisher
TASK_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


class AdmissionBackend(Protocol):
    name: str

    def admit(self, room: str, *, lease: str, cap: int, now: float, lease_s: float) -> AdmitResult:
        """Atomically: if fewer than `cap` leases are live at `now`, add `lease` expiring at now + lease_s."""
        ...

    def renew(self, room: str, *, lease: str, now: float, lease_s: float) -> float:
        """Extend a live lease to now + lease_s and return that. LeaseEndedError / LeaseNotFoundError."""
        ...

    def release(self, room: str, *, lease: str, now: float) -> None:
        """Free the lease's seat (idempotent for an ended lease). LeaseNotFoundError if never known."""
        ...

    def seats_taken(self, room: str, *, now: float) -> int:
        """Live leases at `now`. Read-only."""
        ...

    def live_leases(self, room: str, *, now: float) -> list[str]:
        """Ids of the room's live leases at `now` (expiry > now), sorted. Read-only (the SFU reconciler's input)."""
        ...

    def claim(self, room: str, *, task: str, now: float, interval_s: float) -> bool:
        """True for at most one caller per `interval_s` per (room, task), across workers and instances."""
        ...

    def claim_publish(self, room: str, *, now: float, interval_s: float) -> bool:
        """`claim(room, task=PUBLISH_TASK, ...)`: one status.json writer per room per interval."""
        ...

    def add_hls_answers(self, room: str, *, now: float, count: int) -> None:
        """Add `count` HLS answers given around `now` to the room's recent-listener counter."""
        ...

    def hls_recent(self, room: str, *, now: float) -> int:
        """HLS answers of the last HLS_WINDOW_BUCKETS × HLS_BUCKET_S seconds, across workers and instances."""
        ...

    def check(self) -> None:
        """Readiness probe: raise StorageError when the backend cannot be used."""
        ...

    def close(self) -> None: ...


def hls_bucket(now: float) -> int:
    return math.floor(now / HLS_BUCKET_S)


def hls_window(now: float) -> range:
    current = hls_bucket(now)
    return range(current - HLS_WINDOW_BUCKETS + 1, current + 1)


def room_to_json(room: Room) -> str:
    return json.dumps(
        {
            "id": room.id,
            "ingest_token": room.ingest_token,
            "title": room.title,
            "host": room.host,
            "realtime_cap": room.realtime_cap,
            "embed_origins": list(room.embed_origins),
        },
        sort_keys=True,
    )


def room_from_json(raw: str | bytes, *, backend: str) -> Room:
    try:
        doc = json.loads(raw)
        return Room(
            id=str(doc["id"]),
            ingest_token=str(doc["ingest_token"]),
            title=str(doc.get("title", "")),
            host=str(doc.get("host", "")),
            realtime_cap=int(doc.get("realtime_cap", 0)),
            embed_origins=tuple(str(o) for o in doc.get("embed_origins", [])),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError(f"corrupt room record: {exc}", key="room", backend=backend, retryable=False) from exc


def task_name(task: str) -> str:
    if not TASK_PATTERN.fullmatch(task):
        raise ValueError(f"invalid claim task {task!r}: must match {TASK_PATTERN.pattern}")
    return task
