"""Names Spillway gives things inside Janus (pure): room ids, room secrets, join tokens, participant ids.

Everything is derived, so every gunicorn worker, every origin instance and the transcoder agree without
sharing state, and a restarted Janus gets the same names back:

* AudioBridge room id: 52 bits of SHA-256(room) (+1). Janus ids are integers; browsers parse JSON numbers
  as doubles, so ids stay below 2^53 to survive janus.js. The room's `description` is `spillway:<room>`, which
  is how the reconciler recognises its rooms in a `list`.
* Room secret: HMAC(SPILLWAY_JANUS_ROOM_SECRET, room). Needed to edit the allowed list, kick, list
  forwarders; one leaked room secret opens one room only.
* Speaker token and speaker participant ids: HMAC under the room secret key, so the transcoder (which holds
  the Janus secrets but not the seat secret) creates rooms exactly as the origin does.
* Listener join token: HMAC(seat secret, room, lease). Stable for the lease's whole life: the seat JWT is
  re-signed at every heartbeat (new `exp`), so it cannot be the entry in Janus' allowed list.
* Listener participant id: HMAC(seat secret, room, lease) mapped into [2^52, 2^53), disjoint from the speaker
  ids (< 2^52). The client must join with it; the reconciler kicks any participant whose id is neither a live
  lease's nor a speaker slot's, so one admitted token cannot hold more than its own seat.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

ID_BITS = 52
MAX_ID = (1 << 53) - 1  # largest integer a JavaScript number holds exactly
LISTENER_ID_BASE = 1 << ID_BITS  # listener participant ids: [2^52, 2^53)
SPEAKER_SLOTS = 8  # speaker participant ids per room (a speaker takes the first free one)
DESCRIPTION_PREFIX = "spillway:"
LISTENER_TOKEN_PREFIX = "l."
SPEAKER_TOKEN_PREFIX = "s."
MIN_KEY_BYTES = 16


def _mac(key: bytes, *parts: str) -> bytes:
    # NUL-separated: room ids and lease ids never contain NUL, so ("a", "bc") and ("ab", "c") differ.
    return hmac.new(key, "\0".join(parts).encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _id52(raw: bytes) -> int:
    return int.from_bytes(raw[:8], "big") & ((1 << ID_BITS) - 1)


def janus_room_id(room: str) -> int:
    """The AudioBridge room id of a Spillway room: in [1, 2^52]. Not secret."""
    return _id52(hashlib.sha256(f"spillway-janus-room\0{room}".encode()).digest()) + 1


def room_description(room: str) -> str:
    return f"{DESCRIPTION_PREFIX}{room}"


def room_from_description(description: object) -> str | None:
    """The Spillway room a Janus room description names, or None for rooms that are not Spillway's."""
    if not isinstance(description, str) or not description.startswith(DESCRIPTION_PREFIX):
        return None
    return description[len(DESCRIPTION_PREFIX) :] or None


@dataclass(frozen=True, kw_only=True)
class RoomKeys:
    """Derivations under the Janus room-secret key (shared by the origin and the transcoder)."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise ValueError(f"the Janus room secret must be at least {MIN_KEY_BYTES} bytes")

    def room_secret(self, room: str) -> str:
        return _b64(_mac(self.key, "room-secret", room))

    def speaker_token(self, room: str) -> str:
        return SPEAKER_TOKEN_PREFIX + _b64(_mac(self.key, "speaker-token", room))

    def observer_id(self, room: str) -> int:
        """The origin's silent participant that listens to the room's talking events (talk.py)."""
        return _id52(_mac(self.key, "observer-id", room)) or 2

    def speaker_ids(self, room: str) -> tuple[int, ...]:
        """SPEAKER_SLOTS distinct participant ids in [1, 2^52) for the room's speakers."""
        ids: list[int] = []
        counter = 0
        while len(ids) < SPEAKER_SLOTS:
            candidate = _id52(_mac(self.key, "speaker-id", room, str(counter))) or 1
            counter += 1
            if candidate not in ids:
                ids.append(candidate)
        return tuple(ids)


@dataclass(frozen=True, kw_only=True)
class SeatKeys:
    """Derivations under the seat-token secret (origin only): what one lease may join Janus with."""

    key: bytes = field(repr=False)

    def join_token(self, room: str, lease: str) -> str:
        return LISTENER_TOKEN_PREFIX + _b64(_mac(self.key, "janus-join", room, lease))

    def participant_id(self, room: str, lease: str) -> int:
        return LISTENER_ID_BASE + _id52(_mac(self.key, "janus-participant", room, lease))


def is_listener_id(participant: int) -> bool:
    return LISTENER_ID_BASE <= participant <= MAX_ID
