"""Seat tokens: HS256 JWT-compatible compact tokens the SFU verifies before giving a listener a seat (pure).

    base64url(header) "." base64url(claims) "." base64url(HMAC-SHA256(secret, header "." claims))

header  {"alg": "HS256", "typ": "JWT"}
claims  {"iss": "spillway-origin", "aud": "spillway-sfu", "room": <room id>, "seat": <lease id>,
         "iat": <issued, Unix s>, "exp": <lease expiry, Unix s>}

Any JWT library verifies it (RFC 7519 / RFC 7515 with HS256, RFC 7518 §3.2). `verify_seat_token` is the
reference verifier: it refuses every other algorithm (no "none", no RS/HS confusion), a bad signature
(constant-time compare), a wrong audience or issuer, missing or mistyped claims, expired tokens and tokens
issued in the future.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass

from origin.errors import AuthError

SEAT_TOKEN_AUDIENCE = "spillway-sfu"
SEAT_TOKEN_ISSUER = "spillway-origin"
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key must be at least 256 bits
MAX_TOKEN_CHARS = 4096
_HEADER = {"alg": "HS256", "typ": "JWT"}
_B64URL_PART = re.compile(r"[A-Za-z0-9_-]+")  # unpadded base64url (RFC 7515 §2)


class SeatTokenError(AuthError):
    """A seat token that must not be honoured; the message says why."""


@dataclass(frozen=True, kw_only=True)
class SeatClaims:
    room: str
    seat: str  # the lease id
    iat: int
    exp: int
    iss: str = SEAT_TOKEN_ISSUER
    aud: str = SEAT_TOKEN_AUDIENCE


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SeatTokenError("malformed token: bad base64url") from exc


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"seat token secret must be at least {MIN_SECRET_BYTES} bytes")


def _mac(secret: bytes, signing_input: str) -> bytes:
    return hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()


def issue_claims(*, room: str, seat: str, now: float, expires_at: float) -> SeatClaims:
    return SeatClaims(room=room, seat=seat, iat=math.floor(now), exp=math.ceil(expires_at))


def sign_seat_token(claims: SeatClaims, secret: bytes) -> str:
    _check_secret(secret)
    body = {
        "iss": claims.iss,
        "aud": claims.aud,
        "room": claims.room,
        "seat": claims.seat,
        "iat": claims.iat,
        "exp": claims.exp,
    }
    header = _b64encode(json.dumps(_HEADER, separators=(",", ":")).encode())
    payload = _b64encode(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{header}.{payload}"
    return f"{signing_input}.{_b64encode(_mac(secret, signing_input))}"


def _json_object(raw: bytes, what: str) -> dict[str, object]:
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SeatTokenError(f"malformed token: {what} is not JSON") from exc
    if not isinstance(doc, dict):
        raise SeatTokenError(f"malformed token: {what} is not a JSON object")
    return doc


def _str_claim(claims: dict[str, object], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise SeatTokenError(f"claim {name!r} missing or not a string")
    return value


def _time_claim(claims: dict[str, object], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SeatTokenError(f"claim {name!r} missing or not a NumericDate")
    return math.floor(value)


def verify_seat_token(
    token: str,
    secret: bytes,
    *,
    now: float,
    audience: str = SEAT_TOKEN_AUDIENCE,
    issuer: str = SEAT_TOKEN_ISSUER,
    room: str | None = None,
    leeway_s: float = 5.0,
) -> SeatClaims:
    """Return the claims of a valid token, else raise SeatTokenError. `room`, when given, must match."""
    _check_secret(secret)
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise SeatTokenError("malformed token: not a compact JWS")
    header_b64, payload_b64, sig_b64 = parts = token.split(".")
    if not all(_B64URL_PART.fullmatch(part) for part in parts):
        raise SeatTokenError("malformed token: parts must be unpadded base64url")
    signing_input = f"{header_b64}.{payload_b64}"
    header = _json_object(_b64decode(header_b64), "header")
    if header.get("alg") != "HS256":
        raise SeatTokenError(f"unsupported algorithm {str(header.get('alg'))[:20]!r}")
    if not hmac.compare_digest(_b64decode(sig_b64), _mac(secret, signing_input)):
        raise SeatTokenError("bad signature")
    claims = _json_object(_b64decode(payload_b64), "claims")
    aud = claims.get("aud")
    if not (aud == audience or (isinstance(aud, list) and audience in aud)):
        raise SeatTokenError(f"wrong audience (want {audience!r})")
    if claims.get("iss") != issuer:
        raise SeatTokenError(f"wrong issuer (want {issuer!r})")
    exp = _time_claim(claims, "exp")
    iat = _time_claim(claims, "iat")
    if now >= exp + leeway_s:
        raise SeatTokenError("token expired")
    if iat > now + leeway_s:
        raise SeatTokenError("token issued in the future")
    token_room = _str_claim(claims, "room")
    if room is not None and token_room != room:
        raise SeatTokenError("token is for another room")
    return SeatClaims(room=token_room, seat=_str_claim(claims, "seat"), iat=iat, exp=exp, iss=issuer, aud=audience)
