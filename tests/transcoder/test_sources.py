"""Source kinds through the real transcoder: Opus over RTP described by an SDP (as an SFU forwards a room),
and several speakers mixed into one room mix."""

from __future__ import annotations

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
    tone_level,
)
from tests.transcoder.receiver import Receiver
from tests.transcoder.rtp import free_rtp_port, sdp_for, send_opus, udp_bound
from transcoder.policy import OnEos, RestartPolicy
from transcoder.runner import run_transcoder
from transcoder.settings import TranscodeSettings
from transcoder.source import MixSource, SdpSource

NAMES = ["a48", "a64", "a128"]


def test_opus_over_rtp_from_an_sdp(receiver: Receiver, tmp_path: Path) -> None:
    clip = make_speech(
        tmp_path / "speaker.wav", "Hello from the stage. This clip travels as Opus over R T P, like an S F U sends it."
    )
    port = free_rtp_port()
    sdp = tmp_path / "room.sdp"
    sdp.write_text(sdp_for(port))
    settings = TranscodeSettings(
        room="r1", source=SdpSource(path=sdp, idle_timeout_seconds=1.5), origin_url=receiver.url, token="tok",
        segment_seconds=1.0, policy=RestartPolicy(on_eos=OnEos.EXIT),  # one session (a live source listens again)
    )  # fmt: skip
    stop = threading.Event()
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(run_transcoder(settings, stop=stop)), daemon=True)
    thread.start()
    try:
        receiver.wait_for(lambda: udp_bound(port), 15, f"the transcoder listening on udp {port}")
        send_opus(clip, port)
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
    assert tone_level(both, 440) > 50 and tone_level(both, 1000) > 50  # both speakers while both talk
    assert tone_level(only_a, 440) > 50 and tone_level(only_a, 1000) < 5  # then only the longer one
