"""A live source never ends by itself: `spillway transcode --sdp` (default flags) against a real RTP sender
that goes quiet for longer than the idle timeout and comes back; with `--exit-on-eos` the run ends instead.

Real ffmpeg on both sides (the sender is a second ffmpeg sending Opus RTP to 127.0.0.1), the CLI as a
process, the contract-checking receiver as the origin.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from tests.transcoder.contract import assert_session_contract
from tests.transcoder.media import SAMPLE_RATE, aac_priming_samples, decode_pcm, make_tone, tone_level
from tests.transcoder.procs import finish, spawn, transcode
from tests.transcoder.receiver import Put, Receiver
from tests.transcoder.rtp import free_rtp_port, sdp_for, send_opus, udp_bound

NAMES = ["a48", "a64", "a128"]
IDLE_SECONDS = 2.0  # --rtp-idle-timeout: keeps the test short (the default is 10 s)
FIRST_HZ, RETURN_HZ = 440.0, 880.0


def _start(receiver: Receiver, tmp_path: Path, *flags: str) -> tuple[subprocess.Popen[str], int]:
    port = free_rtp_port()
    sdp = tmp_path / "room.sdp"
    sdp.write_text(sdp_for(port))
    proc = spawn(transcode(
        "--sdp", str(sdp), "--rtp-idle-timeout", f"{IDLE_SECONDS:g}", "--room", "r1", "--origin", receiver.url,
        "--token", "tok", "--segment-seconds", "1", *flags,
    ))  # fmt: skip
    receiver.wait_for(lambda: udp_bound(port), 15, f"the transcoder listening on udp {port}")
    return proc, port


def _ended(receiver: Receiver, session: str) -> str | None:
    end = receiver.call(session, "end")
    return str(end.body.get("reason")) if end is not None else None


def _media(receiver: Receiver, session: str) -> list[Put]:
    """Segments carrying media: a session whose input delivered nothing PUTs a bare styp as 000000.m4s."""
    return [p for p in receiver.session_puts(session) if p.kind == "segment" and b"moof" in p.body]


def _pushed(receiver: Receiver, session: str, count: int) -> bool:
    return all(sum(p.rendition == name for p in _media(receiver, session)) >= count for name in NAMES)


def _level(receiver: Receiver, session: str, tmp_path: Path, freq: float) -> float:
    media = tmp_path / f"{session}.mp4"
    media.write_bytes(receiver.media(session, "a128"))
    pcm = np.frombuffer(decode_pcm(media), dtype=np.int16).astype(np.float64)[aac_priming_samples(tmp_path) :]
    return tone_level(pcm[: 2 * SAMPLE_RATE], freq)


def test_an_rtp_source_that_goes_quiet_and_returns_is_heard_again(receiver: Receiver, tmp_path: Path) -> None:
    first = make_tone(tmp_path / "first.wav", freq=FIRST_HZ, seconds=3.0)
    again = make_tone(tmp_path / "again.wav", freq=RETURN_HZ, seconds=3.0)
    proc, port = _start(receiver, tmp_path)  # default flags: no --restart-on-eos
    try:
        send_opus(first, port)
        quiet_since = time.monotonic()
        (session,) = receiver.sessions()
        receiver.wait_for(lambda: _ended(receiver, session) == "eos", 3 * IDLE_SECONDS + 5, "the idle timeout")
        # It keeps listening: a new session, which itself times out idle and is followed by another one.
        receiver.wait_for(lambda: len(receiver.sessions()) >= 3, 4 * IDLE_SECONDS + 10, "two more sessions")
        receiver.wait_for(lambda: udp_bound(port), 10, "the third session listening")
        assert time.monotonic() - quiet_since > 2 * IDLE_SECONDS  # quiet for well over the idle timeout
        listening = receiver.sessions()[1:]
        assert _ended(receiver, listening[0]) == "eos" and not _media(receiver, listening[0])
        assert proc.poll() is None, "the transcoder ended although its source is live"
        send_opus(again, port)  # the source returns
        receiver.wait_for(
            lambda: any(_pushed(receiver, s, 2) for s in receiver.sessions()[2:]), 15, "the returned source"
        )
    finally:
        proc.send_signal(signal.SIGINT)
    code, err = finish(proc)
    assert code == 0, err[-3000:]
    assert "Traceback" not in err and "input ended; listening again" in err
    assert "is live; a new session starts whenever it ends" in err
    sessions = receiver.sessions()
    assert len(set(sessions)) == len(sessions)  # every attempt was a new ingest session
    assert_session_contract(receiver, sessions[0], renditions=NAMES, end_reason="eos", segment_seconds=1.0)
    (returned,) = [s for s in sessions[1:] if _media(receiver, s)]
    reason = _ended(receiver, returned)
    assert reason in ("signal", "eos")  # stopped while it plays, or (a slow machine) its idle timeout came first
    assert_session_contract(receiver, returned, renditions=NAMES, end_reason=reason, segment_seconds=1.0)
    # what arrived after the return is the returned source, not a replay of the first
    assert _level(receiver, sessions[0], tmp_path, FIRST_HZ) > 50
    assert _level(receiver, returned, tmp_path, RETURN_HZ) > 50 and _level(receiver, returned, tmp_path, FIRST_HZ) < 5


def test_exit_on_eos_ends_the_run_when_the_rtp_source_goes_quiet(receiver: Receiver, tmp_path: Path) -> None:
    first = make_tone(tmp_path / "first.wav", freq=FIRST_HZ, seconds=2.0)
    proc, port = _start(receiver, tmp_path, "--exit-on-eos")
    try:
        send_opus(first, port)
        code, err = finish(proc, timeout=3 * IDLE_SECONDS + 10)  # ends by itself after the idle timeout
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, err[-3000:]
    assert "is live; the run ends when it ends" in err
    assert "input ended" in err and "listening again" not in err
    (session,) = receiver.sessions()
    assert_session_contract(receiver, session, renditions=NAMES, end_reason="eos", segment_seconds=1.0)
