"""An RTP (Opus) sender for transcoder tests: what an SFU's RTP forwarder does, on 127.0.0.1.

The SDP is the one an SFU hands a recorder (Janus rtp_forward, mediasoup PlainTransport, LiveKit); the sender
is a second ffmpeg process encoding a file to Opus and sending it as RTP in real time.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
from pathlib import Path

PAYLOAD_TYPE = 111  # what WebRTC SFUs typically negotiate for Opus


def free_rtp_port() -> int:
    """An even UDP port with port+1 free too (RTP and RTCP), on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1]) & ~1
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, socket.socket(
                socket.AF_INET, socket.SOCK_DGRAM
            ) as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free RTP port pair")


def udp_bound(port: int) -> bool:
    """Whether something listens on UDP `port` (Linux /proc/net/udp, local address column)."""
    needle = f":{port:04X} "
    with open("/proc/net/udp") as table:
        return any(needle in line.split(None, 3)[1] + " " for line in list(table)[1:])


def sdp_for(port: int) -> str:
    # The SDP an SFU's RTP forwarder (Janus rtp_forward, mediasoup PlainTransport, LiveKit) hands a recorder.
    return (
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=room audio\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {PAYLOAD_TYPE}\r\na=rtpmap:{PAYLOAD_TYPE} opus/48000/2\r\n"
    )


def send_opus(clip: Path, port: int, *, timeout: float = 60) -> None:
    """Send `clip` as Opus RTP to 127.0.0.1:`port` in real time; returns when the clip has been sent."""
    sender = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-re", "-i", str(clip), "-c:a", "libopus", "-b:a", "48k",
         "-payload_type", str(PAYLOAD_TYPE), "-f", "rtp", f"rtp://127.0.0.1:{port}"],
        capture_output=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert sender.returncode == 0, sender.stderr.decode()[-2000:]


class RtpSender:
    """A live room's RTP forwarder: a tone as Opus RTP to 127.0.0.1:`port` until stopped (restartable)."""

    def __init__(self, port: int, *, freq: float = 440.0) -> None:
        self.port = port
        self.freq = freq
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.stop()
        self.proc = subprocess.Popen(
            ["ffmpeg", "-v", "error", "-nostdin", "-re", "-f", "lavfi", "-i", f"sine=f={self.freq:g}:r=48000",
             "-c:a", "libopus", "-b:a", "48k", "-payload_type", str(PAYLOAD_TYPE), "-f", "rtp",
             f"rtp://127.0.0.1:{self.port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        """The forwarder is gone at once (SIGKILL): no goodbye packet, the receiver just hears nothing."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> RtpSender:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
