"""Seat tokens as LiveKit access tokens, checked with livekit-api's own verifier (no LiveKit server runs here)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from livekit.api.access_token import TokenVerifier

from origin.admission.backend import AdmissionBackend
from origin.admission.sfu.gate import SeatGate
from origin.admission.sfu.livekit import LiveKitSfu, livekit_token
from tests.origin.admission.test_api import LEASE_S, Harness, harness

API_KEY = "APIspillwaytest"
API_SECRET = "livekit-api-secret-for-tests-0123456789abcdef"
LEASE = "lease-aaaaaaaaaaaaaaaa"


def test_a_seat_token_joins_one_room_subscribe_only_for_the_lease() -> None:
    now = time.time()
    sfu = LiveKitSfu(url="wss://lk.example", api_key=API_KEY, api_secret=API_SECRET)
    access = sfu.access("launch", LEASE, now=now, expires_at=now + 30)
    assert access.kind == "livekit" and access.url == "wss://lk.example" and access.room == "launch"
    claims = TokenVerifier(API_KEY, API_SECRET).verify(access.token)
    assert claims.identity == f"seat-{LEASE}"
    video = claims.video
    assert video is not None
    assert video.room == "launch" and video.room_join is True and video.can_subscribe is True
    assert video.can_publish is False and video.can_publish_data is False
    assert not video.room_admin and not video.room_create and not video.room_list
    raw = jwt.decode(access.token, options={"verify_signature": False})
    assert raw["iss"] == API_KEY and now + 29 <= raw["exp"] <= now + 32  # TTL = the lease


def test_forged_and_expired_tokens_fail_verification() -> None:
    forged = livekit_token(api_key=API_KEY, api_secret="another-secret-0123456789abcdef-xyz", room="launch",
                           lease=LEASE, ttl_s=30)  # fmt: skip
    with pytest.raises(jwt.InvalidSignatureError):
        TokenVerifier(API_KEY, API_SECRET).verify(forged)
    short = livekit_token(api_key=API_KEY, api_secret=API_SECRET, room="launch", lease=LEASE, ttl_s=1)
    time.sleep(2.1)
    with pytest.raises(jwt.ExpiredSignatureError):
        TokenVerifier(API_KEY, API_SECRET, leeway=dt.timedelta(0)).verify(short)


def test_missing_credentials_are_refused() -> None:
    with pytest.raises(ValueError):
        LiveKitSfu(url="wss://lk.example", api_key="", api_secret=API_SECRET)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    def gate(backend: AdmissionBackend) -> SeatGate:
        return SeatGate(sfu=LiveKitSfu(url="wss://lk.example", api_key=API_KEY, api_secret=API_SECRET),
                        backend=backend)  # fmt: skip

    with harness(tmp_path, gate=gate) as h:
        h.room("launch", realtime_cap=1)
        yield h


def test_the_seat_json_carries_a_livekit_token_renewed_by_heartbeats(h: Harness) -> None:
    seat = h.join()
    access = seat["sfu"]
    assert isinstance(access, dict) and access["kind"] == "livekit" and access["room"] == "launch"
    lease = seat["lease"]["id"]  # type: ignore[index]
    assert TokenVerifier(API_KEY, API_SECRET).verify(str(access["token"])).identity == f"seat-{lease}"
    h.clock.advance(LEASE_S / 3)
    renewed = h.client.post(f"/v1/rooms/launch/listeners/{lease}/heartbeat").json()
    assert renewed["sfu"]["kind"] == "livekit"
    assert TokenVerifier(API_KEY, API_SECRET).verify(renewed["sfu"]["token"]).video.room == "launch"  # type: ignore[union-attr]
    assert h.join()["mode"] == "hls"  # cap 1: the LiveKit seat counts like any other
