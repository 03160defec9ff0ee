"""Fixtures for origin tests: generated fMP4 media (made at test time, never committed), a redis-server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer, run_redis


@dataclass(frozen=True, kw_only=True)
class Fmp4Media:
    init: bytes
    segments: list[bytes]
    durations_s: list[float]  # from ffmpeg's own playlist, for cross-checking


@pytest.fixture(scope="session")
def fmp4_media(tmp_path_factory: pytest.TempPathFactory) -> Fmp4Media:
    out = tmp_path_factory.mktemp("fmp4")
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "anoisesrc=r=48000:a=0.1:d=5",
         "-c:a", "aac", "-b:a", "64k", "-ac", "2", "-ar", "48000", "-f", "hls", "-hls_time", "2",
         "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename",
         str(out / "%06d.m4s"), str(out / "index.m3u8")],
        check=True,
    )  # fmt: skip
    playlist = (out / "index.m3u8").read_text()
    durations = [float(line.split(":")[1].rstrip(",")) for line in playlist.splitlines() if line.startswith("#EXTINF")]
    segments = sorted(Path(out).glob("*.m4s"))
    return Fmp4Media(
        init=(out / "init.mp4").read_bytes(),
        segments=[p.read_bytes() for p in segments],
        durations_s=durations,
    )


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One private redis-server for the session (no persistence); tests use their own key prefixes."""
    with run_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server
