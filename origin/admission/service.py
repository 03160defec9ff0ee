"""AdmissionService: join / heartbeat / leave and room admin, over a backend, a registry and the publisher.

Split for the event loop: `check_rate`, `cached_room` and `quick_answer` never block (memory only) and are
all a join past the cap needs once this worker knows the room is full; `load_room`, `try_seat`, `heartbeat`,
`leave`, `put_room` and `room_view` do backend I/O and run in a worker thread. `join` chains them for
callers that are already in a thread (benchmarks, tests).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from origin.admission import status
from origin.admission.backend import AdmissionBackend
from origin.admission.decision import FullHint, JoinPath, choose_path, heartbeat_interval_s, lease_id
from origin.admission.publisher import StatusPublisher
from origin.admission.ratelimit import RateLimiter
from origin.admission.seat_token import issue_claims, sign_seat_token
from origin.admission.sfu.base import SeatAccess
from origin.admission.sfu.gate import SeatGate
from origin.admission.status import BroadcastInfo, BroadcastView
from origin.errors import NotFoundError, RateLimitedError, StateError
from origin.rooms import Room, RoomRegistry

logger = logging.getLogger(__name__)

ROOM_CACHE_S = 1.0  # a worker trusts its copy of a room's config (cap, broadcast state) this long
ROOM_CACHE_MAX = 10_000
INGEST_TOKEN_BYTES = 32


def new_lease_id() -> str:
    return secrets.token_urlsafe(16)  # 128 random bits, 22 base64url characters


class BroadcastEndedError(StateError):
    """Joining a room whose broadcast is over; `detail` carries the replay URL."""

    def __init__(self, message: str, *, room: str, replay_url: str | None) -> None:
        super().__init__(message, room=room)
        self.detail: dict[str, object] = {"message": message, "replay_url": replay_url}


@dataclass(frozen=True, kw_only=True)
class CachedRoom:
    room: Room
    broadcast: BroadcastInfo
    fetched_at: float


@dataclass(frozen=True, kw_only=True)
class SeatGrant:
    room: str
    lease: str
    expires_at: float
    heartbeat_s: float
    seat_token: str
    status_url: str
    sfu: SeatAccess | None = None  # how to join the SFU room, when one enforces the seats


ReferralReason = Literal["full", "no_realtime", "sfu_unavailable"]


@dataclass(frozen=True, kw_only=True)
class HlsReferral:
    room: str
    reason: ReferralReason
    hls_url: str
    expected_delay_s: float
    status_url: str


JoinAnswer = SeatGrant | HlsReferral


@dataclass(frozen=True, kw_only=True)
class RoomView:
    room: Room
    broadcast: BroadcastInfo
    seats_taken: int
    hls_recent: int


@dataclass(frozen=True, kw_only=True)
class RoomSpec:
    """What an admin sets on a room (validated at the HTTP edge)."""

    realtime_cap: int
    ingest_token: str | None = None  # None: keep the room's token, or issue one for a new room
    title: str = ""
    host: str = ""
    embed_origins: tuple[str, ...] = ()


@dataclass(kw_only=True, eq=False)
class AdmissionService:
    rooms: RoomRegistry
    backend: AdmissionBackend
    publisher: StatusPublisher
    broadcasts: BroadcastView
    limiter: RateLimiter
    hint: FullHint
    lease_limiter: RateLimiter | None = None
    seat_token_secret: bytes = field(repr=False)
    public_base_url: str
    api_url: str
    lease_s: float
    room_cache_s: float = ROOM_CACHE_S
    new_lease: Callable[[], str] = new_lease_id
    gate: SeatGate | None = None  # the SFU that enforces seats (origin/admission/sfu/), or None

    def __post_init__(self) -> None:
        self._cache: dict[str, CachedRoom] = {}

    # -- non-blocking (event loop) ----------------------------------------------------------------------

    def check_rate(self, client: str, now: float) -> None:
        result = self.limiter.check(client, now)
        if not result.allowed:
            raise RateLimitedError(
                f"too many join attempts from this address; retry in {result.retry_after_s:.1f} s",
                retry_after_s=result.retry_after_s,
            )

    def check_lease_rate(self, client: str, now: float) -> None:
        """Heartbeats and leaves take the backend's write lock: a client must not flood them either."""
        if self.lease_limiter is None:
            return
        result = self.lease_limiter.check(client, now)
        if not result.allowed:
            raise RateLimitedError(
                f"too many seat calls from this address; retry in {result.retry_after_s:.1f} s",
                retry_after_s=result.retry_after_s,
            )

    def cached_room(self, room: str, now: float) -> CachedRoom | None:
        cached = self._cache.get(room)
        if cached is None or not 0 <= now - cached.fetched_at < self.room_cache_s:
            return None
        return cached

    def quick_answer(self, cached: CachedRoom, now: float) -> HlsReferral | None:
        """The HLS answer when no backend call is needed (no seats at all, or known full), else None."""
        _refuse_if_ended(cached)
        cap = cached.room.realtime_cap
        if choose_path(cap=cap, full_until=self.hint.until(cached.room.id), now=now) is not JoinPath.TRY_SEAT:
            return self._referral(cached, "no_realtime" if cap <= 0 else "full", now)
        if self.gate is not None and not self.gate.usable(now):  # the SFU failed moments ago: no lease, HLS now
            self.gate.fallback()
            return self._referral(cached, "sfu_unavailable", now)
        return None

    # -- blocking (worker thread) -----------------------------------------------------------------------

    def load_room(self, room: str, now: float) -> CachedRoom:
        cfg = self.rooms.get(room)
        if cfg is None:
            self._cache.pop(room, None)
            raise NotFoundError(f"unknown room {room!r}", room=room)
        cached = CachedRoom(room=cfg, broadcast=self.broadcasts.broadcast(room), fetched_at=now)
        if len(self._cache) >= ROOM_CACHE_MAX and room not in self._cache:
            self._cache.clear()
        self._cache[room] = cached
        return cached

    def try_seat(self, cached: CachedRoom, now: float) -> JoinAnswer:
        quick = self.quick_answer(cached, now)  # another thread may have learnt the room is full meanwhile
        if quick is not None:
            return quick
        room, cap = cached.room.id, cached.room.realtime_cap
        lease = self.new_lease()
        result = self.backend.admit(room, lease=lease, cap=cap, now=now, lease_s=self.lease_s)
        if result.seats_taken >= cap:
            self.hint.mark_full(room, now)
        if not result.admitted or result.expires_at is None:
            return self._referral(cached, "full", now)
        if self.gate is not None and not self.gate.grant(room, lease, now):
            self.backend.release(room, lease=lease, now=now)  # a seat the SFU would refuse is no seat
            self.hint.clear(room)
            self.publisher.note_change(room, now)
            logger.warning("room %s: seat %s not granted, the SFU is unavailable: HLS", room, lease)
            return self._referral(cached, "sfu_unavailable", now)
        self.publisher.note_change(room, now, urgent=result.seats_taken >= cap)  # urgent: it just filled up
        logger.info("room %s: seat %s granted (%d/%d)", room, lease, result.seats_taken, cap)
        return self._grant(room, lease, result.expires_at, now)

    def join(self, room: str, client: str, now: float) -> JoinAnswer:
        self.check_rate(client, now)
        cached = self.cached_room(room, now) or self.load_room(room, now)
        return self.quick_answer(cached, now) or self.try_seat(cached, now)

    def heartbeat(self, room: str, lease: str, now: float) -> SeatGrant:
        lease_id(lease)
        self._require_room(room, now)
        expires_at = self.backend.renew(room, lease=lease, now=now, lease_s=self.lease_s)
        self.publisher.touch(room, now)
        if self.gate is not None:
            self.gate.touch(room, now)
        return self._grant(room, lease, expires_at, now)

    def leave(self, room: str, lease: str, now: float) -> None:
        lease_id(lease)
        self._require_room(room, now)
        self.backend.release(room, lease=lease, now=now)
        if self.gate is not None:
            self.gate.release(room, lease, now)  # token out of the allowed list, participant kicked
        was_full = self.hint.until(room) is not None
        self.hint.clear(room)
        self.publisher.note_change(room, now, urgent=was_full)  # urgent: a full room has a seat again
        logger.info("room %s: seat %s released", room, lease)

    def put_room(self, room: str, spec: RoomSpec, now: float) -> tuple[Room, bool, str | None]:
        """Create or replace a room. Returns (room, created, the ingest token when the server issued it)."""
        existing = self.rooms.get(room)
        issued: str | None = None
        token = spec.ingest_token or (existing.ingest_token if existing else None)
        if token is None:
            token = issued = secrets.token_urlsafe(INGEST_TOKEN_BYTES)
        cfg = Room(
            id=room,
            ingest_token=token,
            title=spec.title,
            host=spec.host,
            realtime_cap=spec.realtime_cap,
            embed_origins=spec.embed_origins,
        )
        self.rooms.put(cfg)
        self._cache.pop(room, None)
        self.hint.clear(room)
        self.publisher.note_change(room, now)
        logger.info("room %s: %s (cap %d)", room, "created" if existing is None else "updated", spec.realtime_cap)
        return cfg, existing is None, issued

    def delete_room(self, room: str) -> bool:
        """Forget the room: its configuration, this worker's caches, its status.json schedule."""
        existed = self.rooms.delete(room)
        self._cache.pop(room, None)
        self.hint.clear(room)
        self.publisher.forget(room)
        logger.info("room %s: deleted", room)
        return existed

    def room_view(self, room: str, now: float) -> RoomView:
        cached = self.load_room(room, now)
        return RoomView(
            room=cached.room,
            broadcast=cached.broadcast,
            seats_taken=self.backend.seats_taken(room, now=now),
            hls_recent=self.backend.hls_recent(room, now=now),
        )

    # -- helpers -----------------------------------------------------------------------------------------

    def _require_room(self, room: str, now: float) -> CachedRoom:
        return self.cached_room(room, now) or self.load_room(room, now)

    def _grant(self, room: str, lease: str, expires_at: float, now: float) -> SeatGrant:
        claims = issue_claims(room=room, seat=lease, now=now, expires_at=expires_at)
        return SeatGrant(
            room=room,
            lease=lease,
            expires_at=expires_at,
            heartbeat_s=heartbeat_interval_s(self.lease_s),
            seat_token=sign_seat_token(claims, self.seat_token_secret),
            status_url=status.status_url(self.public_base_url, room),
            sfu=None if self.gate is None else self.gate.access(room, lease, now=now, expires_at=expires_at),
        )

    def _referral(self, cached: CachedRoom, reason: ReferralReason, now: float) -> HlsReferral:
        room = cached.room.id
        self.publisher.count_hls_answer(room, now)
        return HlsReferral(
            room=room,
            reason=reason,
            hls_url=status.hls_url(self.public_base_url, room),
            expected_delay_s=status.hls_delay_for(cached.broadcast),
            status_url=status.status_url(self.public_base_url, room),
        )


def _refuse_if_ended(cached: CachedRoom) -> None:
    if cached.broadcast.state == "ended":
        room = cached.room.id
        raise BroadcastEndedError(
            f"the broadcast in room {room!r} has ended", room=room, replay_url=cached.broadcast.replay_url
        )
