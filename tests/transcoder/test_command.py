"""Golden argv of the ffmpeg command builder (pure): the exact list for each source kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcoder.command import build_argv
from transcoder.ladder import parse_ladder
from transcoder.settings import TranscodeSettings
from transcoder.source import DEMO_BED_EXPR, DemoSource, MixSource, SdpSource, Source, UrlSource

LOCAL = "/tmp/spillway-r1-x"
GLOBAL = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "repeat+level+verbose"]
SPLIT3 = ["-map", "[s1]", "-map", "[s2]", "-map", "[s3]"]


def _output(*, maps: list[str], hls_time: str = "1", ladder_args: list[str] | None = None,
            stream_map: str = "a:0,name:a48 a:1,name:a64 a:2,name:a128") -> list[str]:  # fmt: skip
    ladder_args = ladder_args or [
        "-ac:a:0", "1", "-ac:a:1", "2", "-ac:a:2", "2", "-ar", "48000",
        "-b:a:0", "48k", "-b:a:1", "64k", "-b:a:2", "128k", "-c:a", "aac",
    ]  # fmt: skip
    return [
        *maps, "-f", "hls", *ladder_args,
        "-hls_flags", "independent_segments",
        "-hls_fmp4_init_filename", "init_%v.mp4",
        "-hls_list_size", "3",
        "-hls_segment_filename", f"{LOCAL}/%v/%06d.m4s",
        "-hls_segment_type", "fmp4",
        "-hls_time", hls_time,
        "-var_stream_map", stream_map,
        f"{LOCAL}/index_%v.m3u8",
    ]  # fmt: skip


def _settings(source: Source, **kwargs: object) -> TranscodeSettings:
    values: dict[str, object] = {"token": "tok", **kwargs}
    return TranscodeSettings(
        room="r1", source=source, origin_url="http://127.0.0.1:8999/", **values  # type: ignore[arg-type]
    )


def test_default_ladder_from_one_input() -> None:
    argv = build_argv(_settings(UrlSource(url="in.wav")), local_dir=LOCAL)
    assert argv == [
        *GLOBAL, "-i", "in.wav",
        "-filter_complex", "[0:a]aresample=48000:async=1[s0];[s0]asplit=3[s1][s2][s3]",
        *_output(maps=SPLIT3),
    ]  # fmt: skip


def test_generated_input_paced_in_real_time_with_custom_ladder_and_segment_length() -> None:
    settings = _settings(
        UrlSource(url="anoisesrc=r=44100", format="lavfi", realtime=True),
        ladder=parse_ladder("lo:32k:1,hi:96000:2"),
        segment_seconds=2.048,
    )
    argv = build_argv(settings, local_dir=LOCAL)
    assert argv == [
        *GLOBAL, "-f", "lavfi", "-re", "-i", "anoisesrc=r=44100",
        "-filter_complex", "[0:a]aresample=48000:async=1[s0];[s0]asplit=2[s1][s2]",
        *_output(
            maps=["-map", "[s1]", "-map", "[s2]"],
            hls_time="2.048",
            ladder_args=["-ac:a:0", "1", "-ac:a:1", "2", "-ar", "48000", "-b:a:0", "32k", "-b:a:1", "96k",
                         "-c:a", "aac"],
            stream_map="a:0,name:lo a:1,name:hi",
        ),
    ]  # fmt: skip


def test_demo_speech_clip_loops_in_real_time() -> None:
    settings = _settings(DemoSource(clip=Path("/tmp/demo-room.wav")))
    argv = build_argv(settings, local_dir=LOCAL)
    assert argv == [
        *GLOBAL, "-re", "-stream_loop", "-1", "-i", "/tmp/demo-room.wav",
        "-filter_complex", "[0:a]aresample=48000:async=1[s0];[s0]asplit=3[s1][s2][s3]",
        *_output(maps=SPLIT3),
    ]  # fmt: skip


def test_demo_bed_without_speech() -> None:
    argv = build_argv(_settings(DemoSource(speech=False)), local_dir=LOCAL)
    assert argv == [
        *GLOBAL, "-f", "lavfi", "-re", "-i", f"aevalsrc={DEMO_BED_EXPR}:s=48000",
        "-filter_complex", "[0:a]aresample=48000:async=1[s0];[s0]asplit=3[s1][s2][s3]",
        *_output(maps=SPLIT3),
    ]  # fmt: skip


def test_sdp_source_whitelists_rtp() -> None:
    argv = build_argv(_settings(SdpSource(path=Path("room.sdp"))), local_dir=LOCAL)
    assert argv == [
        *GLOBAL, "-f", "sdp", "-listen_timeout", "10", "-protocol_whitelist", "file,udp,rtp", "-i", "room.sdp",
        "-filter_complex", "[0:a]aresample=48000:async=1[s0];[s0]asplit=3[s1][s2][s3]",
        *_output(maps=SPLIT3),
    ]  # fmt: skip


def test_mix_of_speakers() -> None:
    argv = build_argv(_settings(MixSource(urls=("a.wav", "b.wav"))), local_dir=LOCAL)
    assert argv == [
        *GLOBAL, "-i", "a.wav", "-i", "b.wav",
        "-filter_complex",
        "[0:a]aresample=48000:async=1[s0];[1:a]aresample=48000:async=1[s1];"
        "[s0][s1]amix=dropout_transition=0:duration=longest:inputs=2:normalize=0[s2];"
        "[s2]alimiter=level=0:limit=0.95[s3];[s3]asplit=3[s4][s5][s6]",
        *_output(maps=["-map", "[s4]", "-map", "[s5]", "-map", "[s6]"]),
    ]  # fmt: skip


def test_pure_same_input_same_argv_with_no_server_and_no_token_in_it() -> None:
    settings = _settings(UrlSource(url="in.wav"), token="s3cret-token")
    first, again = (build_argv(settings, local_dir=LOCAL) for _ in range(2))
    assert first == again
    # ffmpeg writes locally; uploads.py talks to the origin: argv (readable by anyone on the host) holds no secret
    assert not any("s3cret-token" in a or "http" in a for a in first)


def test_low_latency_writes_each_rendition_to_its_pipe_with_no_server_and_no_token() -> None:
    settings = _settings(UrlSource(url="in.wav"), part_seconds=0.2, token="s3cret-token")
    argv = build_argv(settings, local_dir=LOCAL, stream_fds=[7, 8, 9])
    assert [a for a in argv if a.startswith("pipe:")] == ["pipe:7", "pipe:8", "pipe:9"]
    assert argv.count("-frag_duration") == 3 and argv[argv.index("-frag_duration") + 1] == "200000"
    assert not any("s3cret-token" in a or "http" in a or "Authorization" in a for a in argv)
    with pytest.raises(ValueError, match="one pipe per rendition"):
        build_argv(settings, local_dir=LOCAL, stream_fds=[7])


@pytest.mark.parametrize("bad", [{"room": "R1"}, {"origin_url": "ftp://x"}, {"token": ""}, {"token": "a\r\nb"},
                                 {"segment_seconds": 0.1},
                                 {"source": SdpSource(path=Path("x.sdp"), idle_timeout_seconds=20)}])  # fmt: skip
def test_settings_reject_bad_values(bad: dict[str, object]) -> None:
    from transcoder.errors import ConfigError

    values: dict[str, object] = {"room": "r1", "origin_url": "http://o", "token": "t", "source": UrlSource(url="x"),
                                 **bad}  # fmt: skip
    with pytest.raises(ConfigError):
        TranscodeSettings(**values)  # type: ignore[arg-type]
