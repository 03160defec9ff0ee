"""Seat tokens: sign, verify, and refuse tampering, other algorithms, wrong audience/issuer, expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from origin.admission.seat_token import (
    SEAT_TOKEN_AUDIENCE,
    SEAT_TOKEN_ISSUER,
    SeatClaims,
    SeatTokenError,
    issue_claims,
    sign_seat_token,
    verify_seat_token,
)

SECRET = b"0123456789abcdef0123456789abcdef-seat"
NOW = 1_790_000_000.0


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _forge(header: dict[str, object], claims: dict[str, object], secret: bytes = SECRET) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def _claims(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": SEAT_TOKEN_ISSUER, "aud": SEAT_TOKEN_AUDIENCE, "room": "r1", "seat": "lease-000000000001",
        "iat": int(NOW), "exp": int(NOW) + 30,
    }  # fmt: skip
    base.update(over)
    return base


@pytest.fixture
def token() -> str:
    return sign_seat_token(issue_claims(room="r1", seat="lease-000000000001", now=NOW, expires_at=NOW + 30), SECRET)


def test_round_trip(token: str) -> None:
    claims = verify_seat_token(token, SECRET, now=NOW + 1, room="r1")
    assert claims == SeatClaims(room="r1", seat="lease-000000000001", iat=int(NOW), exp=int(NOW) + 30)


def test_token_is_a_standard_hs256_jwt(token: str) -> None:
    """Any JWT library can check it: recompute the HMAC over header.payload independently."""
    header_b64, payload_b64, sig_b64 = token.split(".")
    assert json.loads(_unb64(header_b64)) == {"alg": "HS256", "typ": "JWT"}
    payload = json.loads(_unb64(payload_b64))
    assert payload == _claims()
    expected = hmac.new(SECRET, f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    assert _unb64(sig_b64) == expected
    assert "=" not in token


def test_expiry_with_leeway(token: str) -> None:
    verify_seat_token(token, SECRET, now=NOW + 34.9, leeway_s=5)
    with pytest.raises(SeatTokenError, match="expired"):
        verify_seat_token(token, SECRET, now=NOW + 35, leeway_s=5)
    with pytest.raises(SeatTokenError, match="expired"):
        verify_seat_token(token, SECRET, now=NOW + 30, leeway_s=0)


def test_issued_in_the_future() -> None:
    forged = _forge({"alg": "HS256", "typ": "JWT"}, _claims(iat=int(NOW) + 600, exp=int(NOW) + 630))
    with pytest.raises(SeatTokenError, match="future"):
        verify_seat_token(forged, SECRET, now=NOW)


def test_wrong_secret(token: str) -> None:
    with pytest.raises(SeatTokenError, match="signature"):
        verify_seat_token(token, b"another-secret-that-is-long-enough-000", now=NOW)


@pytest.mark.parametrize("part", [0, 1, 2])
def test_tampering_with_any_part_is_refused(token: str, part: int) -> None:
    parts = token.split(".")
    raw = bytearray(_unb64(parts[part]))
    raw[len(raw) // 2] ^= 0x01
    parts[part] = _b64(bytes(raw))
    with pytest.raises(SeatTokenError):
        verify_seat_token(".".join(parts), SECRET, now=NOW)


def test_changed_claims_with_old_signature_are_refused(token: str) -> None:
    header, _, sig = token.split(".")
    other = _b64(json.dumps(_claims(room="another-room")).encode())
    with pytest.raises(SeatTokenError, match="signature"):
        verify_seat_token(f"{header}.{other}.{sig}", SECRET, now=NOW)


@pytest.mark.parametrize("alg", ["none", "HS512", "RS256", None])
def test_other_algorithms_are_refused(alg: str | None) -> None:
    forged = _forge({"alg": alg, "typ": "JWT"}, _claims())
    with pytest.raises(SeatTokenError, match="algorithm"):
        verify_seat_token(forged, SECRET, now=NOW)


def test_alg_none_without_signature_is_refused() -> None:
    header = _b64(json.dumps({"alg": "none"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    with pytest.raises(SeatTokenError):
        verify_seat_token(f"{header}.{payload}.", SECRET, now=NOW)


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        (_claims(aud="someone-else"), "audience"),
        (_claims(aud=["a", "b"]), "audience"),
        (_claims(iss="evil"), "issuer"),
        ({k: v for k, v in _claims().items() if k != "exp"}, "exp"),
        (_claims(exp="soon"), "exp"),
        (_claims(exp=True), "exp"),
        (_claims(room=7), "room"),
        ({k: v for k, v in _claims().items() if k != "seat"}, "seat"),
    ],
)
def test_bad_claims_are_refused(claims: dict[str, object], message: str) -> None:
    with pytest.raises(SeatTokenError, match=message):
        verify_seat_token(_forge({"alg": "HS256", "typ": "JWT"}, claims), SECRET, now=NOW)


def test_audience_list_containing_ours_is_accepted() -> None:
    forged = _forge({"alg": "HS256", "typ": "JWT"}, _claims(aud=["other", SEAT_TOKEN_AUDIENCE]))
    assert verify_seat_token(forged, SECRET, now=NOW).room == "r1"


def test_room_mismatch(token: str) -> None:
    with pytest.raises(SeatTokenError, match="another room"):
        verify_seat_token(token, SECRET, now=NOW, room="r2")


@pytest.mark.parametrize("bad", ["", "a.b", "a.b.c.d", "!!!.???.***", "a=.b.c", "x" * 5000, "é.é.é"])
def test_malformed_tokens(bad: str) -> None:
    with pytest.raises(SeatTokenError):
        verify_seat_token(bad, SECRET, now=NOW)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError):
        sign_seat_token(SeatClaims(room="r", seat="s", iat=0, exp=1), b"short")
