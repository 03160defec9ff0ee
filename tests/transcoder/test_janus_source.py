"""The Janus source's pure parts and CLI: the SDP Spillway writes, secrets from a file or the environment (never
argv), live by default. The real thing (Janus forwarding to ffmpeg) runs in tests/system/test_sfu_room.py."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from transcoder import cli
from transcoder.errors import ConfigError
from transcoder.janus_source import read_secrets_file, rtp_sdp
from transcoder.policy import OnEos
from transcoder.source import JanusSource, SdpSource, describe, is_live


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    return parser.parse_args(["transcode", "--room", "r1", "--origin", "http://127.0.0.1:8080", "--token",
                              "ingest-token-0123456789abcdef", *argv])  # fmt: skip


def test_sdp_describes_the_forwarders_opus_stream() -> None:
    sdp = rtp_sdp(room="r1", host="127.0.0.1", port=40123)
    lines = sdp.split("\r\n")
    assert "c=IN IP4 127.0.0.1" in lines and "m=audio 40123 RTP/AVP 100" in lines
    assert "a=rtpmap:100 opus/48000/2" in lines and sdp.startswith("v=0\r\n")


def test_janus_is_a_live_source_with_its_own_idle_timeout() -> None:
    settings = cli.settings_from_args(_parse("--janus", "http://127.0.0.1:8088/janus"))
    assert isinstance(settings.source, JanusSource) and settings.source.idle_timeout_seconds == 5.0
    assert is_live(settings.source) and settings.policy.on_eos is OnEos.AUTO  # live: restarts on end-of-stream
    assert describe(settings.source) == "janus:http://127.0.0.1:8088/janus (AudioBridge room mix)"
    sdp = cli.settings_from_args(_parse("--sdp", "room.sdp"))
    assert isinstance(sdp.source, SdpSource) and sdp.source.idle_timeout_seconds == 10.0
    assert is_live(sdp.source)  # every SDP/RTP source is live too (the default policy restarts it)


def test_janus_options_need_janus() -> None:
    with pytest.raises(ConfigError):
        cli.settings_from_args(_parse("--sdp", "room.sdp", "--janus-secrets", "x.env"))


def test_secrets_come_from_a_file_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "janus.env"
    path.write_text('# Janus\nSPILLWAY_JANUS_ROOM_SECRET="room-secret-0123456789"\nSPILLWAY_JANUS_ADMIN_KEY=k\n')
    secrets = cli.TranscoderEnv().janus_secrets(path)
    assert secrets.room_secret == "room-secret-0123456789" and secrets.admin_key == "k" and secrets.api_secret == ""
    assert "room-secret" not in repr(secrets)
    monkeypatch.setenv("SPILLWAY_JANUS_ROOM_SECRET", "from-the-environment-0123")
    assert cli.TranscoderEnv().janus_secrets(None).room_secret == "from-the-environment-0123"
    path.write_text("not a key value line\n")
    with pytest.raises(ConfigError):
        read_secrets_file(path)
    with pytest.raises(ConfigError):
        read_secrets_file(tmp_path / "missing.env")
