"""Source classification (pure): which inputs are live and must never end by itself, which are files."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcoder.source import (
    FILE_SCHEMES,
    LIVE_FORMATS,
    LIVE_SCHEMES,
    STREAM_SCHEMES,
    DemoSource,
    MixSource,
    SdpSource,
    UrlSource,
    is_live,
    url_is_live,
)

LIVE_URLS = [
    "rtmp://127.0.0.1:1935/live/room?listen=1",  # an RTMP listener (a publisher connects)
    "rtmps://127.0.0.1/live/room",
    "srt://127.0.0.1:9000?mode=listener",
    "srt://127.0.0.1:9000",
    "udp://127.0.0.1:5004",
    "udp://127.0.0.1:5004?timeout=5000000",
    "rtp://127.0.0.1:5004",
    "rtsp://127.0.0.1:8554/room",
    "tcp://127.0.0.1:9000?listen=1",
    "unix:///run/spillway/room.sock",
    "zmq:tcp://127.0.0.1:5555",
    "http://127.0.0.1:8000/stream.mp3",  # an Icecast stream
    "https://127.0.0.1/live/room.m3u8",  # a live HLS playlist
    "hls+http://127.0.0.1/live/room.m3u8",
    "HTTPS://127.0.0.1/live",  # schemes are case-insensitive
    "RTMP://127.0.0.1/live?listen=1",
    "async:http://127.0.0.1:8000/stream",
    "cache:https://127.0.0.1/stream",
    "room.sdp",  # a local SDP file opens an RTP session
    "/var/run/sfu/ROOM.SDP",
    "file:/var/run/sfu/room.sdp",
    "whip://127.0.0.1/room",  # unknown to this list: counted as live (see url_is_live)
]
FILE_URLS = [
    "in.wav",
    "/srv/media/talk.mp3",
    "./clips/a b.m4a",
    "file:/srv/media/talk.mp3",
    "file:///srv/media/talk.mp3",
    "C:\\media\\talk.wav",  # a drive letter, not a scheme
    "-",  # ffmpeg's stdin: /dev/null under the supervisor
    "pipe:0",
    "concat:a.wav|b.wav",
    "subfile,,start,0,end,100,,:in.wav",
    "data:audio/wav;base64,UklGRg==",
    "crypto+file:///srv/media/talk.enc",
    "ftp://127.0.0.1/talk.mp3",
    "sftp://127.0.0.1/talk.mp3",
    "cache:in.wav",
    "async:file:/srv/media/talk.mp3",
]


@pytest.mark.parametrize("url", LIVE_URLS)
def test_live_urls(url: str) -> None:
    assert url_is_live(url)
    assert is_live(UrlSource(url=url))


@pytest.mark.parametrize("url", FILE_URLS)
def test_file_urls(url: str) -> None:
    assert not url_is_live(url)
    assert not url_is_live(url, realtime=True)
    assert not is_live(UrlSource(url=url))


def test_realtime_marks_a_remote_http_file_but_not_a_listener() -> None:
    # -re paces a file: over http(s) it says "this URL is a remote file"; a listener stays live regardless.
    for url in ("http://127.0.0.1/talk.mp3", "https://127.0.0.1/talk.mp3", "hls+https://127.0.0.1/v.m3u8"):
        assert not url_is_live(url, realtime=True)
        assert not is_live(UrlSource(url=url, realtime=True))
    for url in ("rtmp://127.0.0.1/live?listen=1", "srt://127.0.0.1:9000?mode=listener", "udp://127.0.0.1:5004"):
        assert is_live(UrlSource(url=url, realtime=True))
    assert not is_live(UrlSource(url="in.wav", realtime=True))  # a local file paced at real time


def test_every_known_scheme_is_classified_once() -> None:
    assert not (LIVE_SCHEMES & FILE_SCHEMES or LIVE_SCHEMES & STREAM_SCHEMES or FILE_SCHEMES & STREAM_SCHEMES)
    for scheme in LIVE_SCHEMES:
        assert url_is_live(f"{scheme}://127.0.0.1/x") and url_is_live(f"{scheme}://127.0.0.1/x", realtime=True)
    for scheme in STREAM_SCHEMES:
        assert url_is_live(f"{scheme}://127.0.0.1/x") and not url_is_live(f"{scheme}://127.0.0.1/x", realtime=True)
    for scheme in FILE_SCHEMES:
        assert not url_is_live(f"{scheme}://127.0.0.1/x")


@pytest.mark.parametrize("fmt", sorted(LIVE_FORMATS))
def test_capture_devices_and_sdp_formats_are_live(fmt: str) -> None:
    assert is_live(UrlSource(url="default", format=fmt))
    assert is_live(UrlSource(url="hw:0", format=fmt.upper(), realtime=True))


def test_a_generated_lavfi_graph_is_not_live() -> None:
    # it ends only when its own duration says so (d=…); without one it never ends anyway
    assert not is_live(UrlSource(url="sine=f=440:d=3", format="lavfi"))
    assert not is_live(UrlSource(url="anoisesrc=r=48000", format="lavfi", realtime=True))


def test_other_formats_leave_it_to_the_url() -> None:
    assert is_live(UrlSource(url="udp://127.0.0.1:5004", format="mpegts"))
    assert is_live(UrlSource(url="http://127.0.0.1:8000/raw", format="s16le"))
    assert not is_live(UrlSource(url="in.raw", format="s16le"))


def test_sdp_and_demo_sources_are_live() -> None:
    assert is_live(SdpSource(path=Path("room.sdp")))
    assert is_live(SdpSource(path=Path("room.txt"), idle_timeout_seconds=2))  # the kind decides, not the name
    assert is_live(DemoSource())
    assert is_live(DemoSource(clip=Path("demo-room.wav")))  # a looped file, but the demo room never ends


def test_a_mix_is_live_when_any_speaker_is() -> None:
    assert is_live(MixSource(urls=("rtmp://127.0.0.1/a?listen=1", "rtmp://127.0.0.1/b?listen=1")))
    assert is_live(MixSource(urls=("intro.wav", "srt://127.0.0.1:9000?mode=listener")))
    assert is_live(MixSource(urls=("http://127.0.0.1/a", "b.wav")))
    assert not is_live(MixSource(urls=("http://127.0.0.1/a", "b.wav"), realtime=True))
    assert not is_live(MixSource(urls=("a.wav", "b.wav")))
