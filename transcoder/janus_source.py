"""A Janus AudioBridge room as the transcoder's input: Spillway writes the SDP, nobody does it by hand.

`spillway transcode --janus URL --room ID …` makes sure the room exists (created exactly as the origin
creates it: origin/admission/sfu/janus.py), asks Janus to `rtp_forward` the room mix (Opus, PT 100,
`always_on`: silence keeps flowing while nobody speaks or the room is empty) to a local UDP port, writes the
SDP that describes that stream, and hands ffmpeg an `SdpSource`. A keeper thread checks the forwarder every
`check_interval_s`; when it is gone (Janus restarted and lost its rooms) it re-creates room and forwarder on
a NEW port and rewrites the SDP. ffmpeg on the old port then reads nothing, ends at its idle timeout, and the
supervisor (a Janus source is live: restart on end-of-stream) starts the next session on the new port. A
fresh port matters: a new forwarder's RTP sequence numbers and timestamps start anywhere, which an ffmpeg
still reading the old stream would take for a jump of hours.

Secrets (Janus api_secret, AudioBridge admin_key, the room-secret key) come from the environment or a file
(`--janus-secrets`), never from argv, and are never logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import tempfile
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from origin.admission.sfu.base import SfuError, SfuProtocolError
from origin.admission.sfu.janus import OPUS_PAYLOAD_TYPE, AudioBridge
from origin.admission.sfu.janus_api import JanusClient
from origin.admission.sfu.naming import RoomKeys
from transcoder.errors import ConfigError, SourceError
from transcoder.settings import TranscodeSettings
from transcoder.source import JanusSource, SdpSource

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 2.0


@dataclass(frozen=True, kw_only=True)
class JanusSecrets:
    api_secret: str = field(default="", repr=False)
    admin_key: str = field(default="", repr=False)
    room_secret: str = field(default="", repr=False)


def read_secrets_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (SPILLWAY_JANUS_API_SECRET, …_ADMIN_KEY, …_ROOM_SECRET); '#' comments."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the Janus secrets file {str(path)!r}: {exc.strerror}") from exc
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        values[key.strip()] = value.strip().strip('"')
    return values


def rtp_sdp(*, room: str, host: str, port: int) -> str:
    """The SDP of the AudioBridge forwarder's stream, as ffmpeg's sdp demuxer reads it."""
    return (
        "v=0\r\n"
        f"o=- 0 0 IN IP4 {host}\r\n"
        f"s=Spillway room {room} (Janus AudioBridge mix)\r\n"
        f"c=IN IP4 {host}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP {OPUS_PAYLOAD_TYPE}\r\n"
        f"a=rtpmap:{OPUS_PAYLOAD_TYPE} opus/48000/2\r\n"
    )


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def forward_ssrc(room: str) -> int:
    return zlib.crc32(f"spillway-forward\0{room}".encode()) or 1


class JanusForwarding:
    """Keeps one AudioBridge forwarder pointed at this transcoder and the SDP file describing it."""

    def __init__(self, bridge: AudioBridge, *, room: str, host: str, sdp_path: Path,
                 check_interval_s: float = CHECK_INTERVAL_S) -> None:  # fmt: skip
        self.bridge = bridge
        self.room = room
        self.host = host
        self.sdp_path = sdp_path
        self.check_interval_s = check_interval_s
        self.port = 0
        self.stream_id: int | None = None
        self.forwards = 0  # forwarders created (1 + re-creations after Janus lost them)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write_sdp(self, port: int) -> None:
        tmp = self.sdp_path.with_suffix(".tmp")
        tmp.write_text(rtp_sdp(room=self.room, host=self.host, port=port))
        os.replace(tmp, self.sdp_path)  # ffmpeg never reads half a file

    def _forward(self) -> None:
        port = free_udp_port(self.host)
        self._write_sdp(port)
        self.bridge.create(self.room)
        self.stream_id = self.bridge.forward(self.room, host=self.host, port=port, ssrc=forward_ssrc(self.room))
        self.port = port
        self.forwards += 1
        log.info("room %s: Janus forwards the room mix to %s:%d (forwarder %d)", self.room, self.host, port,
                 self.stream_id)  # fmt: skip

    def check(self) -> None:
        """One keeper pass: re-create the forwarder (on a new port) when Janus no longer has it."""
        if self.stream_id is not None:
            try:
                alive = any(f.stream_id == self.stream_id for f in self.bridge.forwarders(self.room))
            except SfuProtocolError as exc:
                alive = False
                if exc.code != 485:  # 485: no such room, i.e. Janus lost it; anything else is worth a line
                    log.warning("room %s: listing Janus forwarders failed: %s", self.room, exc)
            if alive:
                return
            log.warning("room %s: the Janus forwarder is gone (Janus restarted?): forwarding again", self.room)
            self.stream_id = None
        self._forward()

    def start(self) -> None:
        """Forward once now (a misconfiguration is fatal here); an unreachable Janus is retried by the keeper."""
        self._write_sdp(free_udp_port(self.host))
        try:
            self._forward()
        except SfuProtocolError as exc:
            raise SourceError(f"Janus refused the room or its forwarder: {exc}", source=self.bridge.client.url,
                              room=self.room) from exc  # fmt: skip
        except SfuError as exc:
            log.warning("room %s: Janus unavailable, will keep trying: %s", self.room, exc)
        self._thread = threading.Thread(target=self._keep, name=f"janus-forward-{self.room}", daemon=True)
        self._thread.start()

    def _keep(self) -> None:
        while not self._stop.wait(self.check_interval_s):
            try:
                self.check()
            except SfuError as exc:
                log.warning("room %s: Janus unavailable, will keep trying: %s", self.room, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.stream_id is not None:
            with contextlib.suppress(SfuError):
                self.bridge.stop_forward(self.room, self.stream_id)
        self.bridge.client.close()


@contextlib.contextmanager
def janus_input(settings: TranscodeSettings, secrets: JanusSecrets) -> Iterator[TranscodeSettings]:
    """Settings whose source is the SDP of a live forwarder of the Janus room (kept up while inside)."""
    source = settings.source
    assert isinstance(source, JanusSource)
    if len(secrets.room_secret.encode()) < 16:
        raise ConfigError("SPILLWAY_JANUS_ROOM_SECRET (≥ 16 bytes, the origin's value) is required with --janus")
    client = JanusClient(url=source.url, api_secret=secrets.api_secret, timeout_s=source.timeout_seconds)
    bridge = AudioBridge(client, room_keys=RoomKeys(key=secrets.room_secret.encode()), admin_key=secrets.admin_key)
    with tempfile.TemporaryDirectory(prefix="spillway-janus-") as tmp:
        forwarding = JanusForwarding(bridge, room=settings.room, host=source.forward_host,
                                     sdp_path=Path(tmp) / "room.sdp")  # fmt: skip
        forwarding.start()
        try:
            sdp = SdpSource(path=forwarding.sdp_path, idle_timeout_seconds=source.idle_timeout_seconds)
            yield dataclasses.replace(settings, source=sdp)
        finally:
            forwarding.stop()
