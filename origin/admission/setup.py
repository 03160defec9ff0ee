"""Admission wiring: backends and the status publisher from settings, and the service built on them.

The HTTP routes are origin/web/listeners.py (joins, heartbeats, leaves) and origin/web/admin.py (rooms).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from origin.admission.backend import AdmissionBackend
from origin.admission.clock import Clock, wall_clock
from origin.admission.decision import HINT_MAX_S, FullHint
from origin.admission.publisher import StatusPublisher
from origin.admission.ratelimit import BucketPolicy, RateLimiter
from origin.admission.seat_token import MIN_SECRET_BYTES
from origin.admission.service import AdmissionService
from origin.admission.sfu.factory import build_sfu
from origin.admission.sfu.gate import SeatGate
from origin.admission.status import BroadcastView
from origin.errors import ValidationError
from origin.metrics import Metrics
from origin.rooms import RoomRegistry
from origin.settings import Settings
from origin.storage.base import Storage

logger = logging.getLogger(__name__)

SECRET_FILE_NAME = "seat-token.secret"
LEASE_CALLS_PER_MINUTE = 120  # heartbeats and leaves per client address (a seated listener needs ~6)


@dataclass(kw_only=True)
class AdmissionDeps:
    rooms: RoomRegistry
    backend: AdmissionBackend
    publisher: StatusPublisher
    storage: Storage
    broadcasts: BroadcastView
    seat_token_secret: bytes
    admin_token: str  # empty: admin endpoints answer 403
    public_base_url: str
    api_url: str
    lease_s: float
    join_rate_per_minute: int
    lease_calls_per_minute: int = LEASE_CALLS_PER_MINUTE
    clock: Clock = wall_clock
    hint_ttl_s: float = HINT_MAX_S
    gate: SeatGate | None = None  # the SFU that enforces seats (origin/admission/sfu/gate.py)
    run_publisher: bool = True  # flush status.json periodically in the router's lifespan
    close_backend: bool = True  # close the backend when the app shuts down
    metrics: Metrics | None = None  # join answers, backend probe, status.json publishing


def build_service(deps: AdmissionDeps) -> AdmissionService:
    return AdmissionService(
        rooms=deps.rooms,
        backend=deps.backend,
        publisher=deps.publisher,
        broadcasts=deps.broadcasts,
        limiter=RateLimiter(BucketPolicy.per_minute(deps.join_rate_per_minute)),
        lease_limiter=RateLimiter(BucketPolicy.per_minute(deps.lease_calls_per_minute)),
        hint=FullHint(ttl_s=deps.hint_ttl_s),
        seat_token_secret=deps.seat_token_secret,
        public_base_url=deps.public_base_url,
        api_url=deps.api_url,
        lease_s=deps.lease_s,
        gate=deps.gate,
    )


# -- construction from settings ------------------------------------------------------------------------------


def build_admission(
    settings: Settings, storage: Storage, broadcast_view: BroadcastView, metrics: Metrics | None = None
) -> AdmissionDeps:
    """Backends from settings: `embedded` (SQLite in state_dir) or `redis` (settings.redis_url)."""
    rooms: RoomRegistry
    backend: AdmissionBackend
    if settings.admission_backend == "redis":
        from origin.admission.redis_backend import RedisAdmission, RedisRoomRegistry, connect

        client = connect(settings.redis_url)
        backend, rooms = RedisAdmission(client), RedisRoomRegistry(client)
    else:
        from origin.admission.sqlite_backend import SqliteAdmission, SqliteRoomRegistry

        sqlite_backend = SqliteAdmission.open(settings.state_dir)
        backend, rooms = sqlite_backend, SqliteRoomRegistry(sqlite_backend.db)
    publisher = StatusPublisher(
        storage=storage,
        rooms=rooms,
        backend=backend,
        broadcasts=broadcast_view,
        public_base_url=settings.public_base_url,
        api_url=settings.api_url,
        metrics=metrics,
    )
    secret = seat_secret(settings)
    sfu = build_sfu(settings, seat_secret=secret)
    return AdmissionDeps(
        rooms=rooms,
        backend=backend,
        publisher=publisher,
        storage=storage,
        broadcasts=broadcast_view,
        gate=None if sfu is None else SeatGate(sfu=sfu, backend=backend),
        seat_token_secret=secret,
        admin_token=settings.admin_token.get_secret_value(),
        public_base_url=settings.public_base_url,
        api_url=settings.api_url,
        lease_s=settings.seat_lease_seconds,
        join_rate_per_minute=settings.join_rate_per_minute,
        metrics=metrics,
    )


def seat_secret(settings: Settings) -> bytes:
    """SPILLWAY_SEAT_TOKEN_SECRET, or (embedded backend only) a secret kept in state_dir, made on first use."""
    configured = settings.seat_token_secret.get_secret_value().encode()
    if configured:
        if len(configured) < MIN_SECRET_BYTES:
            raise ValidationError(f"SPILLWAY_SEAT_TOKEN_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return configured
    if settings.admission_backend == "redis":
        raise ValidationError("SPILLWAY_SEAT_TOKEN_SECRET must be set with the redis backend (shared by instances)")
    return _state_dir_secret(Path(settings.state_dir) / SECRET_FILE_NAME)


def _state_dir_secret(path: Path) -> bytes:
    """Read the secret file, or create it exclusively (workers starting together agree on one secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker created it a moment ago and may still be writing
            secret = path.read_bytes().strip()
            if len(secret) >= MIN_SECRET_BYTES:
                return secret
            time.sleep(0.01)
        raise ValidationError(f"seat token secret file {path} is too short") from None
    secret = secrets.token_urlsafe(48).encode()
    with os.fdopen(fd, "wb") as f:
        f.write(secret + b"\n")
        f.flush()
        os.fsync(f.fileno())
    logger.warning("seat token secret created in %s: give the SFU this file, or set SPILLWAY_SEAT_TOKEN_SECRET", path)
    return secret
