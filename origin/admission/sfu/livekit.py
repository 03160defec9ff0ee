"""LiveKit as Spillway's SFU: the seat is a LiveKit access token, which LiveKit verifies itself.

A granted lease gets an access token (the `livekit-api` package: HS256 JWT signed with the LiveKit API
secret) for exactly one room, `roomJoin` + `canSubscribe`, no publishing and no data, identity `seat-<lease>`,
TTL = the lease. Heartbeats return a fresh one (new expiry) for reconnects. A client without such a token,
or with an expired one, cannot join: LiveKit refuses it at connect time, so the cap holds natively.

Not done here: dropping a connected participant when its lease ends early (RoomService.RemoveParticipant);
LiveKit keeps a connected participant until it leaves, whatever the token's expiry. See docs/sfu.md.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

from origin.admission.sfu.base import SeatAccess, SfuKind
from origin.admission.sfu.reconcile import Plan

IDENTITY_PREFIX = "seat-"
MIN_TTL_S = 1.0


def livekit_token(*, api_key: str, api_secret: str, room: str, lease: str, ttl_s: float) -> str:
    """A LiveKit access token for one listener seat: join `room`, subscribe, never publish."""
    from livekit.api.access_token import AccessToken, VideoGrants  # the package imports aiohttp: load on use

    grants = VideoGrants(
        room_join=True, room=room, can_subscribe=True, can_publish=False, can_publish_data=False,
        can_update_own_metadata=False,
    )  # fmt: skip
    ttl = dt.timedelta(seconds=math.ceil(max(MIN_TTL_S, ttl_s)))
    token = AccessToken(api_key, api_secret).with_identity(IDENTITY_PREFIX + lease).with_grants(grants)
    return str(token.with_ttl(ttl).to_jwt())


class LiveKitSfu:
    """`Sfu` on LiveKit: only `access` has work to do; LiveKit itself enforces the tokens."""

    kind: SfuKind = "livekit"

    def __init__(self, *, url: str, api_key: str, api_secret: str) -> None:
        if not api_key or not api_secret:
            raise ValueError("LiveKit needs SPILLWAY_LIVEKIT_API_KEY and SPILLWAY_LIVEKIT_API_SECRET")
        self.url = url
        self._api_key = api_key
        self._api_secret = api_secret

    def access(self, room: str, lease: str, *, now: float, expires_at: float) -> SeatAccess:
        token = livekit_token(
            api_key=self._api_key, api_secret=self._api_secret, room=room, lease=lease, ttl_s=expires_at - now
        )
        return SeatAccess(kind="livekit", url=self.url, room=room, token=token)

    def grant(self, room: str, lease: str) -> None:
        return None  # the token is the grant

    def revoke(self, room: str, lease: str) -> None:
        return None  # an ended lease's token expires with it; see the module docstring

    def sync(self, room: str, live_leases: Callable[[], list[str]]) -> Plan:
        return Plan()

    def rooms(self) -> list[str]:
        return []

    def close(self) -> None:
        return None
