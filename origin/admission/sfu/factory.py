"""The SFU admission enforces seats in, from settings: Janus AudioBridge, LiveKit, or none."""

from __future__ import annotations

from origin.admission.sfu.base import Sfu
from origin.admission.sfu.janus import AudioBridge, JanusSfu
from origin.admission.sfu.janus_api import JanusClient
from origin.admission.sfu.naming import MIN_KEY_BYTES, RoomKeys, SeatKeys
from origin.errors import ValidationError
from origin.settings import Settings


def janus_public_url(settings: Settings) -> str:
    return settings.janus_public_url or settings.janus_url


def room_keys(settings: Settings) -> RoomKeys:
    key = settings.janus_room_secret.get_secret_value().encode()
    if len(key) < MIN_KEY_BYTES:
        raise ValidationError(f"SPILLWAY_JANUS_ROOM_SECRET must be ≥ {MIN_KEY_BYTES} bytes with SPILLWAY_SFU=janus")
    return RoomKeys(key=key)


def build_sfu(settings: Settings, *, seat_secret: bytes) -> Sfu | None:
    if settings.sfu == "janus":
        client = JanusClient(
            url=settings.janus_url,
            api_secret=settings.janus_api_secret.get_secret_value(),
            timeout_s=settings.janus_timeout_seconds,
        )
        admin_key = settings.janus_admin_key.get_secret_value()
        bridge = AudioBridge(client, room_keys=room_keys(settings), admin_key=admin_key)
        return JanusSfu(bridge, seat_keys=SeatKeys(key=seat_secret), public_url=janus_public_url(settings))
    if settings.sfu == "livekit":
        from origin.admission.sfu.livekit import LiveKitSfu

        if not settings.livekit_url.startswith(("ws://", "wss://", "http://", "https://")):
            raise ValidationError("SPILLWAY_LIVEKIT_URL must be a ws(s):// or http(s):// URL with SPILLWAY_SFU=livekit")
        try:
            return LiveKitSfu(
                url=settings.livekit_url,
                api_key=settings.livekit_api_key,
                api_secret=settings.livekit_api_secret.get_secret_value(),
            )
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
    return None


def connect_origins(settings: Settings) -> tuple[str, ...]:
    """URLs the embed page must be allowed to fetch/connect to for the SFU (its CSP connect-src)."""
    if settings.sfu == "janus":
        return (janus_public_url(settings),)
    if settings.sfu == "livekit" and settings.livekit_url:
        return (settings.livekit_url,)
    return ()
