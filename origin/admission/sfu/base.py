"""The narrow interface admission uses to make seats true inside an SFU, its values and its errors.

SfuError                 the SFU failed or answered something invalid (an OriginError)
├── SfuUnavailableError  unreachable, timed out, 5xx, sessions lost: joins fall back to HLS
└── SfuProtocolError     a reply that does not match the API, or an error code we did not expect
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from origin.admission.sfu.reconcile import Plan
from origin.errors import OriginError

SfuKind = Literal["janus", "livekit"]


class SfuError(OriginError):
    def __init__(self, message: str, *, sfu: str, room: str | None = None) -> None:
        super().__init__(f"{sfu}: {message}", room=room)
        self.sfu = sfu


class SfuUnavailableError(SfuError):
    """The SFU cannot be reached or used right now (network, timeout, HTTP 5xx, restarted)."""


class SfuProtocolError(SfuError):
    """The SFU answered, but not as its API says (bad JSON, missing fields, an unexpected error code)."""

    def __init__(self, message: str, *, sfu: str, room: str | None = None, code: int | None = None) -> None:
        super().__init__(message, sfu=sfu, room=room)
        self.code = code


@dataclass(frozen=True, kw_only=True)
class SeatAccess:
    """What a seated listener needs to join the SFU room (the `sfu` object of the seat JSON)."""

    kind: SfuKind
    url: str  # the SFU's client URL (Janus HTTP API base, LiveKit wss URL)
    room: int | str  # the SFU's room id (AudioBridge numeric id, LiveKit room name)
    token: str  # Janus: the lease's allowed-list token; LiveKit: an access token (JWT, TTL = lease)
    participant_id: int | None = None  # Janus: the id the client must join with

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"kind": self.kind, "url": self.url, "room": self.room, "token": self.token}
        if self.participant_id is not None:
            doc["participant_id"] = self.participant_id
        return doc


class Sfu(Protocol):
    """An SFU that enforces admission's seats. Every I/O method is idempotent (several workers call them)."""

    kind: SfuKind

    def access(self, room: str, lease: str, *, now: float, expires_at: float) -> SeatAccess:
        """The client's credentials for a lease (pure: no I/O)."""
        ...

    def grant(self, room: str, lease: str) -> None:
        """Make the SFU accept this lease's client (create the room if needed). Raises SfuError."""
        ...

    def revoke(self, room: str, lease: str) -> None:
        """Make the SFU refuse this lease from now on and drop its participant. Raises SfuError."""
        ...

    def sync(self, room: str, live_leases: Callable[[], list[str]]) -> Plan:
        """Reconcile one room: observe the SFU, THEN call `live_leases`, apply the plan; return it."""
        ...

    def rooms(self) -> list[str]:
        """Spillway rooms that exist in the SFU now."""
        ...

    def close(self) -> None: ...
