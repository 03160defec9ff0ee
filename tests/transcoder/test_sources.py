"""Source kinds through the real transcoder: Opus over RTP described by an SDP (as an SFU forwards a room),
and several speakers mixed into one room mix."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

import numpy as np

from tests.transcoder.contract import assert_session_contract
from tests.transcoder.media import (
    AAC_FRAME_SAMPLES,
    SAMPLE_RATE,
    aac_priming_samples,
    decode_pcm,
    make_speech,
    make_tone,
    probe,
    samples_of,
)
from tests.transcoder.receiver import Receiver
from transcoder.runner import run_transcoder
from transcoder.settings import TranscodeSettings
from transcoder.source import MixSource, SdpSource

NAMES = ["a48", "a64", "a128"]
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


def test_opus_over_rtp_from_an_sdp(receiver: Receiver, tmp_path: Path) -> None:
    clip = make_speech(
        tmp_path / "speaker.wav", "Hello from the stage. This clip travels as Opus over R T P, like an S F U sends it."
    )
    port = free_rtp_port()
    sdp = tmp_path / "room.sdp"
    sdp.write_text(sdp_for(port))
    settings = TranscodeSettings(
        room="r1", source=SdpSource(path=sdp, idle_timeout_seconds=1.5), origin_url=receiver.url, token="tok",
        segment_seconds=1.0,
    )  # fmt: skip
    stop = threading.Event()
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(run_transcoder(settings, stop=stop)), daemon=True)
    thread.start()
    try:
        receiver.wait_for(lambda: udp_bound(port), 15, f"the transcoder listening on udp {port}")
        sender = subprocess.run(
            ["ffmpeg", "-v", "error", "-nostdin", "-re", "-i", str(clip), "-c:a", "libopus", "-b:a", "48k",
             "-payload_type", str(PAYLOAD_TYPE), "-f", "rtp", f"rtp://127.0.0.1:{port}"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        assert sender.returncode == 0, sender.stderr.decode()[-2000:]
        # The forwarder went quiet: after the idle timeout the input ends and the session ends with eos.
        thread.join(20)
    finally:
        stop.set()
        thread.join(30)
    assert result == [0]
    (session,) = receiver.sessions()
    assert_session_contract(receiver, session, renditions=NAMES, end_reason="eos", segment_seconds=1.0)

    clip_samples = round(samples_of(clip) * SAMPLE_RATE / probe(clip).sample_rate)
    priming = aac_priming_samples(tmp_path)
    for name in NAMES:
        media = tmp_path / f"{name}.mp4"
        media.write_bytes(receiver.media(session, name))
        content = probe(media).duration_ts - priming
        assert abs(content - clip_samples) <= SAMPLE_RATE * 1.0, (name, content, clip_samples)  # ±1 segment
        assert len(decode_pcm(media)) // 2 >= content


def _tone_level(pcm: np.ndarray, freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    bins = np.fft.rfftfreq(len(pcm), 1 / SAMPLE_RATE)
    near = (bins > freq - 20) & (bins < freq + 20)
    return float(spectrum[near].max() / spectrum.mean())


def test_two_speakers_are_mixed_into_one_ladder(receiver: Receiver, tmp_path: Path) -> None:
    low = make_tone(tmp_path / "speaker-a.wav", freq=440, seconds=3.0)
    high = make_tone(tmp_path / "speaker-b.wav", freq=1000, seconds=2.0, rate=44_100)
    settings = TranscodeSettings(
        room="r1", source=MixSource(urls=(str(low), str(high))), origin_url=receiver.url, token="tok",
        segment_seconds=1.0,
    )  # fmt: skip
    assert run_transcoder(settings) == 0
    (session,) = receiver.sessions()
    assert_session_contract(receiver, session, renditions=NAMES, end_reason="eos", segment_seconds=1.0)
    priming = aac_priming_samples(tmp_path)
    media = tmp_path / "a128.mp4"
    media.write_bytes(receiver.media(session, "a128"))
    # the mix lasts as long as the longest speaker
    assert abs(probe(media).duration_ts - priming - 3 * SAMPLE_RATE) <= AAC_FRAME_SAMPLES
    pcm = np.frombuffer(decode_pcm(media), dtype=np.int16).astype(np.float64)[priming:]
    both = pcm[int(0.2 * SAMPLE_RATE) : int(1.8 * SAMPLE_RATE)]
    only_a = pcm[int(2.2 * SAMPLE_RATE) : int(2.9 * SAMPLE_RATE)]
    assert _tone_level(both, 440) > 50 and _tone_level(both, 1000) > 50  # both speakers while both talk
    assert _tone_level(only_a, 440) > 50 and _tone_level(only_a, 1000) < 5  # then only the longer one
