"""The vendored hls.js is exactly what the pin says (npm tarball integrity, file hash, version, license)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from origin.player.assets import DIGEST_HEX_CHARS, FILES, PlayerAssets, digest_of

PLAYER = Path(__file__).resolve().parents[3] / "origin" / "player"
VENDOR = PLAYER / "vendor"


def _pin() -> dict[str, str]:
    lines = (VENDOR / "hls.js.pin").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_vendored_hls_js_matches_the_pin() -> None:
    pin = _pin()
    assert re.fullmatch(r"\d+\.\d+\.\d+", pin["version"])
    assert pin["integrity"].startswith("sha512-")
    assert pin["file"] == "dist/hls.light.min.js"
    body = (VENDOR / "hls.light.min.js").read_bytes()
    assert hashlib.sha256(body).hexdigest() == pin["sha256"]
    assert f'="{pin["version"]}"'.encode() in body  # hls.js carries its version string


def test_license_is_kept_beside_it() -> None:
    text = (VENDOR / "LICENSE.hls.js").read_text()
    assert "Apache License, Version 2.0" in text and "Dailymotion" in text


def test_refresh_script_uses_npm_pack_at_the_pinned_version() -> None:
    script = (VENDOR / "refresh-hls.sh").read_text()
    assert script.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in script
    assert 'npm pack --silent --json "hls.js@$version"' in script
    assert "integrity" in script and "sha256sum" in script
    assert (VENDOR / "refresh-hls.sh").stat().st_mode & 0o111


def test_assets_are_addressed_by_content() -> None:
    assets = PlayerAssets()
    for name, (rel, _ctype) in FILES.items():
        body = (PLAYER / rel).read_bytes()
        digest = digest_of(body)
        assert len(digest) == DIGEST_HEX_CHARS
        assert assets.url(name) == f"/static/player/{digest}/{name}"
        found = assets.lookup(digest, name)
        assert found is not None and found.body == body
        assert assets.lookup("f" * DIGEST_HEX_CHARS, name) is None
    assert assets.lookup(digest_of(b""), "app.py") is None


def test_player_script_plays_hls_js_whenever_media_source_exists() -> None:
    js = (PLAYER / "static" / "player.js").read_text()
    # Debian's Chromium says "maybe" to canPlayType(HLS): hls.js must be tried first, native only without MSE.
    attach = js.split("function attach(url)", 1)[1].split("\n  }\n", 1)[0]
    assert attach.index("hlsJsUsable()") < attach.index("nativeUsable()")
    assert "window.MediaSource || window.ManagedMediaSource" in js
    assert "eval(" not in js and "innerHTML" not in js


def test_vendored_janus_js_matches_the_pin_and_keeps_its_licence() -> None:
    lines = (VENDOR / "janus.js.pin").read_text().splitlines()
    pin = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert pin["version"] == "1.1.2" and pin["debian_package"] == "libjs-janus-gateway"
    body = (VENDOR / "janus.js").read_bytes()
    assert hashlib.sha256(body).hexdigest() == pin["sha256"]
    licence = (VENDOR / "LICENSE.janus.js").read_text()
    assert licence.startswith("The MIT License (MIT)") and "Meetecho" in licence
    assert b"The MIT License (MIT)" in body and b"Copyright (c) 2016 Meetecho" in body
    script = (VENDOR / "refresh-janus.sh").read_text()
    assert "set -euo pipefail" in script and "sha256sum" in script and "dpkg-query" in script
    assert (VENDOR / "refresh-janus.sh").stat().st_mode & 0o111


def test_realtime_script_never_asks_for_a_microphone() -> None:
    js = (PLAYER / "static" / "realtime.js").read_text()
    assert 'capture: false, recv: true' in js and "getUserMedia" not in js
    assert "muted: true" in js and "iceServers: options.iceServers || []" in js  # no public STUN by default
    assert "eval(" not in js and "innerHTML" not in js
