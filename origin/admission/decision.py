"""Pure admission policy: lease liveness, the lease table every backend implements, the full-room hint.

No I/O and no clock: every function takes `now` (Unix seconds). `LeaseTable` is the reference semantics of
`AdmissionBackend` (backend.py); the contract tests run random operation sequences against a backend and
this table side by side and require identical answers.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass

from origin.errors import GoneError, NotFoundError, ValidationError

LEASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
HINT_MAX_S = 1.0  # a worker's "room is full" memory is trusted for at most this long
GONE_RETENTION_S = 600.0  # ended leases are remembered this long, so a late heartbeat reads 410, not 404
HOLD_BACK_SEGMENTS = 3  # RFC 8216 §6.3.3: clients start ≥ 3 target durations from the live edge
HEARTBEATS_PER_LEASE = 3  # heartbeat every lease/3: two can be lost before the seat is freed


class LeaseNotFoundError(NotFoundError):
    """No such lease in this room, ever (or so long ago it was forgotten): 404."""


class LeaseEndedError(GoneError):
    """The lease expired or was released; its seat may be someone else's now: 410, join again."""


class JoinPath(enum.Enum):
    HLS = "hls"  # answer HLS without touching the backend
    TRY_SEAT = "try_seat"  # ask the backend for a seat (it may still say full)


def lease_id(value: str) -> str:
    if not LEASE_ID_PATTERN.fullmatch(value):
        raise ValidationError(f"invalid lease id {value[:80]!r}: must match {LEASE_ID_PATTERN.pattern}")
    return value


def lease_is_live(expires_at: float, now: float) -> bool:
    """A lease holds its seat strictly before `expires_at`; at `expires_at` the seat is free."""
    return expires_at > now


def heartbeat_interval_s(lease_s: float) -> float:
    return lease_s / HEARTBEATS_PER_LEASE


def expected_hls_delay_s(segment_s: float) -> float:
    """Live-edge delay an HLS listener should expect: the 3-segment hold-back plus the segment being cut."""
    return (HOLD_BACK_SEGMENTS + 1) * segment_s


def choose_path(*, cap: int, full_until: float | None, now: float) -> JoinPath:
    if cap <= 0:
        return JoinPath.HLS
    if full_until is not None and now < full_until:
        return JoinPath.HLS
    return JoinPath.TRY_SEAT


class FullHint:
    """Per-worker memory of rooms known to be full, each for at most `ttl_s` (≤ HINT_MAX_S).

    Set from a refused admit or an admit that took the last seat; cleared when this worker frees a seat.
    A seat freed elsewhere (another worker, instance or an expiry) is seen at the latest after `ttl_s`.
    """

    def __init__(self, *, ttl_s: float = HINT_MAX_S, max_rooms: int = 10_000) -> None:
        if not 0 < ttl_s <= HINT_MAX_S:
            raise ValueError(f"hint ttl must be in (0, {HINT_MAX_S}] s, got {ttl_s}")
        self.ttl_s = ttl_s
        self._max_rooms = max_rooms
        self._until: dict[str, float] = {}

    def until(self, room: str) -> float | None:
        return self._until.get(room)

    def mark_full(self, room: str, now: float) -> None:
        if len(self._until) >= self._max_rooms and room not in self._until:
            self._until = {r: t for r, t in self._until.items() if t > now}
            if len(self._until) >= self._max_rooms:
                self._until.pop(next(iter(self._until)))
        self._until[room] = now + self.ttl_s

    def clear(self, room: str) -> None:
        self._until.pop(room, None)


@dataclass(frozen=True, kw_only=True)
class AdmitResult:
    admitted: bool
    seats_taken: int  # live seats after the call, the new one included
    expires_at: float | None = None  # the new lease's expiry when admitted


class LeaseTable:
    """In-memory reference semantics of one backend: rooms → leases → expiry. Pure (time passed in)."""

    def __init__(self, *, gone_retention_s: float = GONE_RETENTION_S) -> None:
        self._leases: dict[str, dict[str, float]] = {}
        self._gone: dict[str, dict[str, float]] = {}
        self._retention_s = gone_retention_s

    def seats_taken(self, room: str, *, now: float) -> int:
        return sum(1 for exp in self._leases.get(room, {}).values() if lease_is_live(exp, now))

    def live_leases(self, room: str, *, now: float) -> list[str]:
        return sorted(lease for lease, exp in self._leases.get(room, {}).items() if lease_is_live(exp, now))

    def admit(self, room: str, *, lease: str, cap: int, now: float, lease_s: float) -> AdmitResult:
        live = self.seats_taken(room, now=now)
        if live >= cap:
            return AdmitResult(admitted=False, seats_taken=live)
        self._reap(room, now)
        self._leases.setdefault(room, {})[lease] = now + lease_s
        return AdmitResult(admitted=True, seats_taken=live + 1, expires_at=now + lease_s)

    def renew(self, room: str, *, lease: str, now: float, lease_s: float) -> float:
        leases = self._leases.get(room, {})
        exp = leases.get(lease)
        if exp is None:
            if lease in self._gone.get(room, {}):
                raise LeaseEndedError(f"lease {lease} ended", room=room)
            raise LeaseNotFoundError(f"no lease {lease}", room=room)
        if not lease_is_live(exp, now):
            del leases[lease]
            self._gone.setdefault(room, {})[lease] = now
            raise LeaseEndedError(f"lease {lease} expired", room=room)
        leases[lease] = now + lease_s
        return now + lease_s

    def release(self, room: str, *, lease: str, now: float) -> None:
        leases = self._leases.get(room, {})
        if lease in leases:
            del leases[lease]
            self._gone.setdefault(room, {})[lease] = now
            return
        if lease not in self._gone.get(room, {}):
            raise LeaseNotFoundError(f"no lease {lease}", room=room)

    def _reap(self, room: str, now: float) -> None:
        leases = self._leases.get(room, {})
        gone = self._gone.setdefault(room, {})
        for lease in [lease for lease, exp in leases.items() if not lease_is_live(exp, now)]:
            del leases[lease]
            gone[lease] = now
        for lease in [lease for lease, at in gone.items() if at < now - self._retention_s]:
            del gone[lease]

    def rooms(self) -> Iterator[str]:
        return iter(self._leases)
