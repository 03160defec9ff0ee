"""Janus AudioBridge as Spillway's SFU: rooms, allowed lists, kicks and the forwarder to the transcoder.

`AudioBridge` holds the room-level operations the origin and the transcoder share (create a room exactly
the same way from either side, forward its mix); `JanusSfu` adds the seats (listener join tokens and
participant ids under the seat secret) and implements `Sfu`. Every reply is validated (pydantic) before use.

Rooms are created private, 48 kHz, with an allowed list (`check_tokens` on) holding the speaker token, and
with the room secret that every edit, kick and forwarder listing needs; creation and RTP forwarding need the
plugin's `admin_key` (`lock_rtp_forward = true` in janus.plugin.audiobridge.jcfg).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from origin.admission.sfu.base import SeatAccess, SfuKind, SfuProtocolError
from origin.admission.sfu.janus_api import SFU, JanusClient, JanusPluginError
from origin.admission.sfu.naming import (
    RoomKeys,
    SeatKeys,
    janus_room_id,
    room_description,
    room_from_description,
)
from origin.admission.sfu.reconcile import Observed, Plan, desired_state, plan
from origin.admission.sfu.talk import TALK_LEVEL_DBOV, TALK_PACKETS

logger = logging.getLogger(__name__)

NO_SUCH_ROOM = 485
ROOM_EXISTS = 486
NO_SUCH_USER = 492
SAMPLING_RATE_HZ = 48_000  # AudioBridge mixes at 16 kHz by default; the HLS ladder is 48 kHz
OPUS_PAYLOAD_TYPE = 100  # what rtp_forward uses unless told otherwise
MAX_LIST = 100_000


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


M = TypeVar("M", bound=_Reply)


class AllowedReply(_Reply):
    allowed: list[str] = Field(max_length=MAX_LIST)


class Participant(_Reply):
    id: int
    setup: bool = False  # a PeerConnection is up (kick closes it; a participant without one hears nothing)


class ParticipantsReply(_Reply):
    participants: list[Participant] = Field(max_length=MAX_LIST)


class RoomEntry(_Reply):
    room: int
    description: str = ""


class ListReply(_Reply):
    rooms: list[RoomEntry] = Field(alias="list", max_length=MAX_LIST)


class Forwarder(_Reply):
    stream_id: int
    ip: str = ""
    port: int = 0
    ssrc: int | None = None


class ForwardersReply(_Reply):
    rtp_forwarders: list[Forwarder] = Field(max_length=MAX_LIST)


class ForwardReply(_Reply):
    stream_id: int


def _parse(model: type[M], data: dict[str, Any], what: str, room: str | None = None) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise SfuProtocolError(f"{what}: invalid reply ({where}: {err.get('msg')})", sfu=SFU, room=room) from exc


class AudioBridge:
    """Room-level AudioBridge operations for Spillway rooms (no seats): shared by origin and transcoder."""

    def __init__(self, client: JanusClient, *, room_keys: RoomKeys, admin_key: str) -> None:
        self.client = client
        self.room_keys = room_keys
        self._admin_key = admin_key

    def _room(self, room: str, request: str, **fields: Any) -> dict[str, Any]:
        body = {"request": request, "room": janus_room_id(room), "secret": self.room_keys.room_secret(room), **fields}
        return self.client.request(body)

    def create(self, room: str, tokens: Iterable[str] = ()) -> bool:
        """Create the room (allowed list = speaker token + `tokens`); False when it already exists."""
        allowed = sorted({self.room_keys.speaker_token(room), *tokens})
        body: dict[str, Any] = {
            "request": "create",
            "room": janus_room_id(room),
            "description": room_description(room),
            "secret": self.room_keys.room_secret(room),
            "is_private": True,
            "allowed": allowed,
            "sampling_rate": SAMPLING_RATE_HZ,
            # Talking events for the origin's observer (talk.py): who speaks becomes the stream's metadata.
            "audiolevel_event": True,
            "audio_active_packets": TALK_PACKETS,
            "audio_level_average": TALK_LEVEL_DBOV,
        }
        if self._admin_key:
            body["admin_key"] = self._admin_key
        try:
            self.client.request(body)
        except JanusPluginError as exc:
            if exc.code == ROOM_EXISTS:
                return False
            raise
        logger.info("room %s: Janus AudioBridge room %d created", room, janus_room_id(room))
        return True

    def allowed(self, room: str, action: str, tokens: Iterable[str] = ()) -> frozenset[str]:
        """`allowed` enable|add|remove: the complete allowed list after the change."""
        data = self._room(room, "allowed", action=action, allowed=list(tokens))
        return frozenset(_parse(AllowedReply, data, "allowed", room).allowed)

    def participants(self, room: str, *, connected_only: bool = True) -> frozenset[int]:
        """Participant ids; by default only those with media set up (what a seat is about: hearing the room).

        Janus' `kick` closes the PeerConnection and the participant leaves with it; one that never set up
        media stays listed, hears nothing and would be "kicked" again on every pass, so it is left out.
        """
        data = self.client.request({"request": "listparticipants", "room": janus_room_id(room)})
        found = _parse(ParticipantsReply, data, "listparticipants", room).participants
        return frozenset(p.id for p in found if p.setup or not connected_only)

    def kick(self, room: str, participant: int) -> bool:
        try:
            self._room(room, "kick", id=participant)
        except JanusPluginError as exc:
            if exc.code in (NO_SUCH_USER, NO_SUCH_ROOM):
                return False
            raise
        return True

    def rooms(self) -> list[str]:
        body: dict[str, Any] = {"request": "list"}
        if self._admin_key:
            body["admin_key"] = self._admin_key  # private rooms are listed only with the admin key
        entries = _parse(ListReply, self.client.request(body), "list").rooms
        found = []
        for entry in entries:
            room = room_from_description(entry.description)
            if room is not None and janus_room_id(room) == entry.room:
                found.append(room)
        return sorted(found)

    def forwarders(self, room: str) -> list[Forwarder]:
        return _parse(ForwardersReply, self._room(room, "listforwarders"), "listforwarders", room).rtp_forwarders

    def forward(self, room: str, *, host: str, port: int, ssrc: int) -> int:
        """Forward the room's mix as Opus RTP to host:port, silence included when the room is empty."""
        fields: dict[str, Any] = {
            "host": host, "port": port, "ssrc": ssrc, "codec": "opus", "ptype": OPUS_PAYLOAD_TYPE, "always_on": True,
        }  # fmt: skip
        if self._admin_key:
            fields["admin_key"] = self._admin_key
        data = self._room(room, "rtp_forward", **fields)
        return _parse(ForwardReply, data, "rtp_forward", room).stream_id

    def stop_forward(self, room: str, stream_id: int) -> None:
        fields: dict[str, Any] = {"stream_id": stream_id}
        if self._admin_key:
            fields["admin_key"] = self._admin_key
        try:
            self._room(room, "stop_rtp_forward", **fields)
        except JanusPluginError as exc:
            if exc.code != NO_SUCH_ROOM:
                raise


class JanusSfu:
    """`Sfu` on Janus AudioBridge."""

    kind: SfuKind = "janus"

    def __init__(self, bridge: AudioBridge, *, seat_keys: SeatKeys, public_url: str) -> None:
        self.bridge = bridge
        self.seat_keys = seat_keys
        self.public_url = public_url

    def access(self, room: str, lease: str, *, now: float, expires_at: float) -> SeatAccess:
        return SeatAccess(
            kind="janus",
            url=self.public_url,
            room=janus_room_id(room),
            token=self.seat_keys.join_token(room, lease),
            participant_id=self.seat_keys.participant_id(room, lease),
        )

    def grant(self, room: str, lease: str) -> None:
        token = self.seat_keys.join_token(room, lease)
        try:
            self.bridge.allowed(room, "add", [token])
        except JanusPluginError as exc:
            if exc.code != NO_SUCH_ROOM:
                raise
            if not self.bridge.create(room, [token]):  # created meanwhile by another worker or the transcoder
                self.bridge.allowed(room, "add", [token])

    def revoke(self, room: str, lease: str) -> None:
        try:
            self.bridge.allowed(room, "remove", [self.seat_keys.join_token(room, lease)])
        except JanusPluginError as exc:
            if exc.code == NO_SUCH_ROOM:
                return  # nothing to refuse or drop
            raise
        if self.bridge.kick(room, self.seat_keys.participant_id(room, lease)):
            logger.info("room %s: seat %s kicked from Janus", room, lease)

    def observe(self, room: str) -> Observed:
        try:
            participants = self.bridge.participants(room)  # participants first: see reconcile.py
            tokens = self.bridge.allowed(room, "enable")  # enable: (re)turns token checks on, lists tokens
        except JanusPluginError as exc:
            if exc.code == NO_SUCH_ROOM:
                return Observed(exists=False)
            raise
        return Observed(exists=True, tokens=tokens, participants=participants)

    def sync(self, room: str, live_leases: Callable[[], list[str]]) -> Plan:
        observed = self.observe(room)
        desired = desired_state(room, live_leases(), room_keys=self.bridge.room_keys, seat_keys=self.seat_keys)
        todo = plan(desired, observed)
        if todo.create:
            if not self.bridge.create(room, desired.tokens):
                self.bridge.allowed(room, "add", sorted(desired.tokens))
            return todo
        if todo.add:
            self.bridge.allowed(room, "add", todo.add)
        if todo.remove:
            self.bridge.allowed(room, "remove", todo.remove)
        for participant in todo.kick:
            self.bridge.kick(room, participant)
        return todo

    def rooms(self) -> list[str]:
        return self.bridge.rooms()

    def close(self) -> None:
        self.bridge.client.close()
