"""JanusSfu against a real Janus (Debian `janus`, AudioBridge, HTTP API on 127.0.0.1) and reply validation."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from origin.admission.sfu.base import SfuProtocolError, SfuUnavailableError
from origin.admission.sfu.janus import AudioBridge, JanusSfu
from origin.admission.sfu.janus_api import JanusClient
from origin.admission.sfu.naming import RoomKeys, SeatKeys, janus_room_id
from tests.support.janus import ADMIN_KEY, ROOM_SECRET, JanusProcess, janus_server, plain_join
from tests.support.net import free_port

ROOM_KEYS = RoomKeys(key=ROOM_SECRET.encode())
SEAT_KEYS = SeatKeys(key=b"seat-secret-key-0123456789abcdef")
LEASE_A, LEASE_B = "lease-aaaaaaaaaaaaaaaa", "lease-bbbbbbbbbbbbbbbb"


@pytest.fixture(scope="module")
def janus() -> Iterator[JanusProcess]:
    with janus_server() as server:
        yield server


@pytest.fixture
def sfu(janus: JanusProcess) -> Iterator[JanusSfu]:
    client = JanusClient(url=janus.url, timeout_s=2.0)
    sfu = JanusSfu(AudioBridge(client, room_keys=ROOM_KEYS, admin_key=ADMIN_KEY), seat_keys=SEAT_KEYS,
                   public_url=janus.url)  # fmt: skip
    yield sfu
    sfu.close()


def _join(janus: JanusProcess, room: str, lease: str, *, token: str | None = None) -> dict[str, object]:
    return plain_join(
        janus.url, room=janus_room_id(room), token=token or SEAT_KEYS.join_token(room, lease),
        participant=SEAT_KEYS.participant_id(room, lease),
    )  # fmt: skip


def test_granted_tokens_join_others_are_refused_by_janus(janus: JanusProcess, sfu: JanusSfu) -> None:
    sfu.grant("grant-room", LEASE_A)  # creates the room on first use
    assert _join(janus, "grant-room", LEASE_A)["audiobridge"] == "joined"
    refused = _join(janus, "grant-room", LEASE_B)
    assert refused["error_code"] == 489 and "allowed" in str(refused["error"])
    forged = _join(janus, "grant-room", LEASE_B, token="l.forged")
    assert forged["error_code"] == 489
    assert "grant-room" in sfu.rooms()


def test_revoke_removes_the_token(janus: JanusProcess, sfu: JanusSfu) -> None:
    """Kicks close the PeerConnection: the browser test (tests/system/test_sfu_room.py) checks that part."""
    sfu.grant("revoke-room", LEASE_A)
    assert _join(janus, "revoke-room", LEASE_A)["audiobridge"] == "joined"
    participant = SEAT_KEYS.participant_id("revoke-room", LEASE_A)
    assert participant in sfu.bridge.participants("revoke-room", connected_only=False)
    assert participant not in sfu.bridge.participants("revoke-room")  # no media set up: not a listener yet
    sfu.revoke("revoke-room", LEASE_A)
    assert _join(janus, "revoke-room", LEASE_A)["error_code"] == 489
    sfu.revoke("revoke-room", LEASE_A)  # idempotent
    sfu.revoke("never-created", LEASE_A)


def test_sync_kicks_expired_and_recreates_after_a_janus_restart(janus: JanusProcess, sfu: JanusSfu) -> None:
    for lease in (LEASE_A, LEASE_B):
        sfu.grant("sync-room", lease)
        assert _join(janus, "sync-room", lease)["audiobridge"] == "joined"
    todo = sfu.sync("sync-room", lambda: [LEASE_B])  # lease A expired
    assert todo.remove == (SEAT_KEYS.join_token("sync-room", LEASE_A),)
    assert todo.add == () and todo.kick == ()  # plain joins set up no media: nobody to drop
    assert _join(janus, "sync-room", LEASE_A)["error_code"] == 489
    janus.restart()  # every room, token, participant and session gone
    todo = sfu.sync("sync-room", lambda: [LEASE_B])  # the client's session is re-created transparently
    assert todo.create
    assert _join(janus, "sync-room", LEASE_B)["audiobridge"] == "joined"
    assert _join(janus, "sync-room", LEASE_A)["error_code"] == 489


def test_forwarder_round_trip(sfu: JanusSfu) -> None:
    bridge = sfu.bridge
    bridge.create("fwd-room")
    stream = bridge.forward("fwd-room", host="127.0.0.1", port=free_port(), ssrc=1234)
    assert [f.stream_id for f in bridge.forwarders("fwd-room")] == [stream]
    bridge.stop_forward("fwd-room", stream)
    assert bridge.forwarders("fwd-room") == []


def test_wrong_admin_key_is_a_protocol_error(janus: JanusProcess) -> None:
    bridge = AudioBridge(JanusClient(url=janus.url), room_keys=ROOM_KEYS, admin_key="wrong-key")
    with pytest.raises(SfuProtocolError) as err:
        bridge.create("locked-room")
    assert err.value.code == 489 or "489" in str(err.value)


def _scripted(*bodies: bytes, status: int = 200) -> JanusClient:
    """A client whose transport answers `bodies` in turn (unit test of reply validation only)."""
    replies = iter(bodies)

    def handler(request: httpx.Request) -> httpx.Response:
        body = next(replies)
        sent = json.loads(request.content)
        return httpx.Response(status, content=body.replace(b"$TXN", sent["transaction"].encode()))

    return JanusClient(url="http://janus.invalid/janus", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    "bodies",
    [
        [b"not json"],
        [b'{"janus": "success", "transaction": "other", "data": {"id": 1}}'],  # someone else's reply
        [b'{"janus": "success", "transaction": "$TXN", "data": {"id": "1"}}'],  # id not an integer
        [b'{"janus": "success", "transaction": "$TXN", "data": {"id": -5}}'],
        [b'{"janus": "weird", "transaction": "$TXN"}'],
        [
            b'{"janus": "success", "transaction": "$TXN", "data": {"id": 7}}',
            b'{"janus": "success", "transaction": "$TXN", "data": {"id": 8}}',
            b'{"janus": "success", "transaction": "$TXN", "plugindata": {"plugin": "janus.plugin.videoroom",'
            b' "data": {}}}',  # the wrong plugin answered
        ],
        [
            b'{"janus": "success", "transaction": "$TXN", "data": {"id": 7}}',
            b'{"janus": "success", "transaction": "$TXN", "data": {"id": 8}}',
            b'{"janus": "success", "transaction": "$TXN", "plugindata": {"plugin": "janus.plugin.audiobridge",'
            b' "data": {"error_code": "489"}}}',  # a string error code
        ],
    ],
)
def test_invalid_replies_are_protocol_errors(bodies: list[bytes]) -> None:
    with pytest.raises(SfuProtocolError):
        _scripted(*bodies).request({"request": "list"})


def test_invalid_plugin_data_is_a_protocol_error() -> None:
    ok = b'{"janus": "success", "transaction": "$TXN", "data": {"id": 7}}'
    bad = (b'{"janus": "success", "transaction": "$TXN", "plugindata": {"plugin": "janus.plugin.audiobridge",'
           b' "data": {"audiobridge": "participants", "participants": [{"id": "x"}]}}}')  # fmt: skip
    bridge = AudioBridge(_scripted(ok, ok, bad), room_keys=ROOM_KEYS, admin_key="")
    with pytest.raises(SfuProtocolError):
        bridge.participants("r")


def test_http_5xx_and_unreachable_are_unavailable() -> None:
    with pytest.raises(SfuUnavailableError):
        _scripted(b"{}", status=503).request({"request": "list"})
    with pytest.raises(SfuUnavailableError):
        JanusClient(url=f"http://127.0.0.1:{free_port()}/janus", timeout_s=0.5).request({"request": "list"})
