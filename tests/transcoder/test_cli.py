"""`spillway transcode` as a process: clean stop delivering the tail, the demo room, and error paths."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

import pytest

from tests.transcoder.contract import assert_session_contract, final_playlists
from tests.transcoder.fakes import CRASH, fake_ffmpeg
from tests.transcoder.media import decode_pcm, make_music_like, probe
from tests.transcoder.procs import finish, spawn, transcode
from tests.transcoder.receiver import Receiver
from transcoder import cli
from transcoder.policy import OnEos

NAMES = ["a48", "a64", "a128"]


def _segments_everywhere(rx: Receiver, count: int) -> bool:
    sessions = rx.sessions()
    return bool(sessions) and all(len(rx.segments(sessions[0], n)) >= count for n in NAMES)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stop_signal_delivers_the_final_segment_then_ends(receiver: Receiver, sig: int) -> None:
    proc = spawn(transcode(
        "--input", "anoisesrc=r=48000:a=0.1:c=pink", "--input-format", "lavfi", "--realtime",
        "--room", "r1", "--origin", receiver.url, "--token", "tok", "--segment-seconds", "1",
    ))  # fmt: skip
    try:
        receiver.wait_for(lambda: _segments_everywhere(receiver, 2), 20, "two segments per rendition")
    finally:
        proc.send_signal(sig)
    code, err = finish(proc)
    assert code == 0, err[-3000:]
    assert "Traceback" not in err
    (session,) = receiver.sessions()
    segments = assert_session_contract(receiver, session, renditions=NAMES, end_reason="signal",
                                       segment_seconds=1.0)  # fmt: skip
    tails = final_playlists(err, session)
    for name in NAMES:
        # ffmpeg wrote the segment in progress and a closed playlist after the signal: the playlist's last
        # segment is the last one received, complete (nothing after it was lost).
        assert tails[name] == f"{segments[name][-1].name}, closed", tails
        assert len(segments[name]) >= 3  # two before the signal, at least the tail after it


def test_demo_room_pushes_a_decodable_ladder(receiver: Receiver, tmp_path: Path) -> None:
    proc = spawn(transcode(
        "--demo", "--room", "demo", "--origin", receiver.url, "--token", "tok",
        "--segment-seconds", "1", "--status-interval", "0.5",
    ))  # fmt: skip
    try:
        receiver.wait_for(lambda: _segments_everywhere(receiver, 2), 20, "two demo segments per rendition")
    finally:
        proc.send_signal(signal.SIGINT)
    code, err = finish(proc)
    assert code == 0, err[-3000:]
    (session,) = receiver.sessions()
    assert_session_contract(receiver, session, renditions=NAMES, end_reason="signal", segment_seconds=1.0)
    for name, channels in zip(NAMES, (1, 2, 2), strict=True):
        media = tmp_path / f"{name}.mp4"
        media.write_bytes(receiver.media(session, name))
        assert probe(media).channels == channels
        pcm = decode_pcm(media)
        assert len(pcm) // 2 >= 2 * 48_000
        assert any(pcm[i] for i in range(0, len(pcm), 97)), "demo audio is silent"
    # the periodic status line (stderr is not a TTY) reports pushed segments
    assert "room demo running" in err and "segments" in err and "bitrate" in err


def test_token_from_the_environment(receiver: Receiver, tmp_path: Path) -> None:
    source = make_music_like(tmp_path / "in.wav", seconds=1.0)
    env = {**os.environ, "SPILLWAY_INGEST_TOKEN": "tok"}
    proc = spawn(transcode("--input", str(source), "--room", "r1", "--origin", receiver.url), env=env)
    code, err = finish(proc)
    assert code == 0, err[-3000:]
    assert receiver.calls[0].status == 201


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "{missing}"], "cannot read input"),
        (["--input", "{tmp}/in.wav", "--ffmpeg", "{tmp}/no-such-ffmpeg"], "ffmpeg not found"),
        (["--input", "{tmp}/in.wav", "--ladder", "a48:48k"], "invalid ladder entry"),
        (["--input", "{tmp}/in.wav", "--ladder", "a48:48k:1,a48:64k:2"], "duplicate rendition name"),
        (["--input", "{tmp}/in.wav", "--segment-seconds", "0"], "segment length"),
        (["--input", "{tmp}/in.wav", "--room", "Bad_Room"], "invalid room id"),
        (["--input", "{tmp}/in.wav", "--input-format", "bogus"], "Unknown input format"),
        (["--input", "{tmp}/not-audio.wav"], "Invalid data found when processing input"),
        (["--sdp", "{tmp}/missing.sdp"], "cannot read SDP file"),
        (["--input", "{tmp}/in.wav", "--token", ""], "ingest token is required"),
    ],
)
def test_error_paths_are_one_clear_message(
    receiver: Receiver, tmp_path: Path, args: list[str], message: str
) -> None:
    make_music_like(tmp_path / "in.wav", seconds=0.5)
    (tmp_path / "not-audio.wav").write_text("this is not audio\n" * 50)
    argv = [a.format(tmp=tmp_path, missing=tmp_path / "missing.wav") for a in args]
    base = ["--room", "r1", "--origin", receiver.url, "--token", "tok", "--backoff", "0.01"]
    code, err = finish(spawn(transcode(*base, *argv)))  # argparse: a repeated option's last value wins
    assert code != 0
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("spillway transcode: error:")]
    assert len(errors) == 1, err
    assert message in err, err


def test_unsupported_cli_option_is_an_argparse_error(receiver: Receiver) -> None:
    code, err = finish(spawn(transcode("--input", "x.wav", "--room", "r1", "--origin", receiver.url, "--bogus")))
    assert code == 2 and "unrecognized arguments: --bogus" in err and "Traceback" not in err


def test_crash_loop_exits_non_zero_with_the_stderr_tail(receiver: Receiver, tmp_path: Path) -> None:
    ffmpeg = fake_ffmpeg(tmp_path, CRASH)
    source = make_music_like(tmp_path / "in.wav", seconds=0.5)
    code, err = finish(spawn(transcode(
        "--input", str(source), "--room", "r1", "--origin", receiver.url, "--token", "tok",
        "--ffmpeg", str(ffmpeg), "--backoff", "0.01", "--crash-limit", "4",
    )))  # fmt: skip
    assert code == 1
    assert "Traceback" not in err
    assert "crash loop: ffmpeg crashed 4 times" in err and "out of cheese" in err
    assert len(receiver.sessions()) == 4


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_group_signal_reaches_ffmpeg_once_and_a_killed_supervisor_leaves_no_ffmpeg(receiver: Receiver) -> None:
    argv = transcode(
        "--input", "anoisesrc=r=48000:a=0.1:c=pink", "--input-format", "lavfi", "--realtime",
        "--room", "r1", "--origin", receiver.url, "--token", "tok", "--segment-seconds", "1",
    )  # fmt: skip
    # 1. SIGINT to the whole process group (what a terminal's Ctrl-C and `spillway demo` do): ffmpeg is in its
    #    own group, gets one SIGINT (forwarded), and the tail arrives.
    proc = spawn(argv, start_new_session=True)
    receiver.wait_for(lambda: _segments_everywhere(receiver, 1), 20, "segments")
    os.killpg(proc.pid, signal.SIGINT)
    code, err = finish(proc)
    assert code == 0, err[-3000:]
    (session,) = receiver.sessions()
    assert all(tail.endswith(", closed") for tail in final_playlists(err, session).values())
    # 2. SIGKILL of the supervisor alone: the kernel SIGTERMs its ffmpeg (PR_SET_PDEATHSIG); no orphan.
    proc = spawn(argv)
    receiver.wait_for(lambda: len(receiver.sessions()) == 2, 20, "the second run")
    receiver.wait_for(lambda: bool(_children(proc.pid)), 10, "the ffmpeg child")
    ffmpeg = _children(proc.pid)
    proc.kill()
    finish(proc)
    receiver.wait_for(lambda: not any(_alive(pid) for pid in ffmpeg), 10, "ffmpeg to exit after its parent died")



def _parsed(*args: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    base = ["--sdp", "room.sdp", "--room", "r1", "--origin", "http://127.0.0.1:9", "--token", "tok"]
    return parser.parse_args(["transcode", *base, *args])


def test_eos_flags_map_to_the_policy_and_exclude_each_other() -> None:
    for flags, expected in [((), OnEos.AUTO), (("--restart-on-eos",), OnEos.RESTART), (("--exit-on-eos",), OnEos.EXIT)]:
        assert cli.settings_from_args(_parsed(*flags)).policy.on_eos is expected
    both = transcode("--sdp", "x.sdp", "--room", "r1", "--origin", "http://127.0.0.1:9", "--restart-on-eos",
                     "--exit-on-eos")  # fmt: skip
    code, err = finish(spawn(both))
    assert code == 2 and "not allowed with argument" in err
    out, _ = spawn(transcode("--help")).communicate(timeout=30)
    words = " ".join(out.split())
    assert "--exit-on-eos end the run when the input ends, live sources too" in words
    assert "the default for live sources" in words  # --restart-on-eos still accepted, and says it is the default
