"""The ffmpeg command as data: a pure function from settings to argv (built with ffmpeg-python).

Shape (default ladder, one input):

    ffmpeg -hide_banner -nostdin -loglevel repeat+level+verbose -i IN
      -filter_complex "[0:a]aresample=48000:async=1[s0];[s0]asplit=3[s1][s2][s3]"
      -map [s1] -map [s2] -map [s3] -ac:a:0 1 … -b:a:0 48k … -c:a aac -ar 48000 -f hls
      -hls_segment_type fmp4 -hls_time 2 -var_stream_map "a:0,name:a48 a:1,name:a64 a:2,name:a128"
      -hls_fmp4_init_filename init_%v.mp4 -hls_segment_filename {local}/%v/%06d.m4s {local}/index_%v.m3u8

ffmpeg writes everything to a local directory and talks to no server: uploads.py PUTs each init and each
segment ({index:06d}.m4s per rendition, docs/ingest.md) as ffmpeg's log says it is complete, reads the answer
and retries. So the ingest token is never in ffmpeg's argv (anyone on the host can read a process's argv), a
refused segment is seen, and an origin outage is bridged by retries instead of lost PUTs. ffmpeg's own playlists
stay local: the origin builds its own. Info-level "Opening '…' for writing" and verbose "Statistics: N bytes
written" lines are what transcoder.ffmpeg_log reads, hence the log level.

Low latency (`build_stream_argv`): one fragmented-MP4 output per rendition, each to a pipe the transcoder
relays to the origin as one chunked PUT (streams.py), so there too ffmpeg talks to no server and holds no token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ffmpeg

from transcoder.ladder import SAMPLE_RATE_HZ, Rendition, format_bitrate
from transcoder.settings import PLAYLIST_SIZE_SEGMENTS, TranscodeSettings
from transcoder.source import (
    DEMO_BED_EXPR,
    RTP_PROTOCOL_WHITELIST,
    DemoSource,
    JanusSource,
    MixSource,
    SdpSource,
    Source,
    UrlSource,
)

GLOBAL_ARGS = ("-hide_banner", "-nostdin", "-loglevel", "repeat+level+verbose")
INIT_FILENAME = "init.mp4"  # what the origin is sent
LOCAL_INIT = "init_%v.mp4"  # what ffmpeg writes beside its local playlists (%v: the rendition's name)
LOCAL_PLAYLIST = "index_%v.m3u8"
SEGMENT_PATTERN = "%06d.m4s"
STREAM_NAME = "stream.mp4"  # origin.contract.ingest.STREAM_NAME


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def _resampled(stream: Any) -> Any:
    # async=1 fills timestamp gaps (RTP loss, Opus DTX from an SFU) with silence so segments stay continuous.
    return stream.filter("aresample", SAMPLE_RATE_HZ, **{"async": 1})


def _room_audio(source: Source) -> Any:
    """The one audio stream the ladder is cut from, resampled to 48 kHz."""
    match source:
        case UrlSource(url=url, format=fmt, realtime=realtime):
            kwargs: dict[str, Any] = {}
            if realtime:
                kwargs["re"] = None
            if fmt:
                kwargs["f"] = fmt
            return _resampled(ffmpeg.input(url, **kwargs).audio)
        case SdpSource(path=path, idle_timeout_seconds=idle):
            sdp = ffmpeg.input(
                str(path), f="sdp", protocol_whitelist=RTP_PROTOCOL_WHITELIST, listen_timeout=_format_seconds(idle)
            )
            return _resampled(sdp.audio)
        case MixSource(urls=urls, realtime=realtime):
            speakers = [
                _resampled(ffmpeg.input(url, **({"re": None} if realtime else {})).audio) for url in urls
            ]
            if len(speakers) == 1:
                return speakers[0]
            # normalize=0 keeps each speaker at full level (amix would scale every input by 1/n);
            # the limiter (auto-level off) catches the rare overlap peaks.
            mixed = ffmpeg.filter(
                speakers, "amix", inputs=len(speakers), duration="longest", dropout_transition=0, normalize=0
            )
            return mixed.filter("alimiter", limit=0.95, level=0)
        case DemoSource(clip=None):
            bed = ffmpeg.input(f"aevalsrc={DEMO_BED_EXPR}:s={SAMPLE_RATE_HZ}", f="lavfi", re=None)
            return _resampled(bed.audio)
        case DemoSource(clip=clip):
            return _resampled(ffmpeg.input(str(clip), re=None, stream_loop=-1).audio)
        case JanusSource():
            raise TypeError("a JanusSource becomes an SdpSource first (transcoder.janus_source.janus_input)")
    raise TypeError(f"unknown source {source!r}")


def _ladder_args(ladder: tuple[Rendition, ...]) -> dict[str, Any]:
    args: dict[str, Any] = {"c:a": "aac", "ar": SAMPLE_RATE_HZ}
    for i, r in enumerate(ladder):
        args[f"b:a:{i}"] = format_bitrate(r.bitrate_bps)
        args[f"ac:a:{i}"] = r.channels
    return args


def var_stream_map(ladder: tuple[Rendition, ...]) -> str:
    return " ".join(f"a:{i},name:{r.name}" for i, r in enumerate(ladder))


def local_init_path(local_dir: str, rendition: str) -> str:
    """Where ffmpeg writes a rendition's init segment (`-hls_fmp4_init_filename init_%v.mp4`, beside the playlist)."""
    return f"{local_dir}/{LOCAL_INIT.replace('%v', rendition)}"


def local_playlist_path(local_dir: str, rendition: str) -> str:
    return f"{local_dir}/{LOCAL_PLAYLIST.replace('%v', rendition)}"


def local_segment_path(local_dir: str, rendition: str, name: str) -> str:
    """Where ffmpeg writes a rendition's segment `name` (`-hls_segment_filename {local}/%v/%06d.m4s`)."""
    return f"{local_dir}/{rendition}/{name}"


def build_argv(settings: TranscodeSettings, *, local_dir: str, stream_fds: Sequence[int] = ()) -> list[str]:
    """The full ffmpeg argv for one ingest session; everything it writes goes to `local_dir` — or, in low latency,
    to `stream_fds` (one pipe per rendition). Pure: same arguments, same list (no session id, no URL, no token:
    the transcoder's own calls carry those)."""
    if settings.part_seconds is not None:
        return build_stream_argv(settings, stream_fds=stream_fds)
    audio = _room_audio(settings.source)
    split = audio.filter_multi_output("asplit", len(settings.ladder))
    streams = [split.stream(i) for i in range(len(settings.ladder))]
    hls_args: dict[str, Any] = {
        "f": "hls",
        "hls_time": _format_seconds(settings.segment_seconds),
        "hls_segment_type": "fmp4",
        "hls_flags": "independent_segments",
        "hls_list_size": PLAYLIST_SIZE_SEGMENTS,
        "var_stream_map": var_stream_map(settings.ladder),
        "hls_fmp4_init_filename": LOCAL_INIT,
        "hls_segment_filename": f"{local_dir}/%v/{SEGMENT_PATTERN}",
    }
    output = ffmpeg.output(*streams, f"{local_dir}/{LOCAL_PLAYLIST}", **_ladder_args(settings.ladder), **hls_args)
    argv: list[str] = output.compile(cmd=[settings.ffmpeg_bin, *GLOBAL_ARGS])
    return argv


def build_stream_argv(settings: TranscodeSettings, *, stream_fds: Sequence[int]) -> list[str]:
    """Low latency: one fragmented-MP4 output per rendition, each to its pipe (`pipe:N`), which streams.py PUTs as
    one chunked stream (docs/ingest.md).

    `-frag_duration` closes a fragment (a part) once it reaches the part length, `-flush_packets 1` writes it at
    once, `empty_moov` puts the init first, `default_base_moof` makes every fragment self-contained.
    """
    assert settings.part_seconds is not None
    if len(stream_fds) != len(settings.ladder):
        raise ValueError(f"one pipe per rendition: {len(settings.ladder)} renditions, {len(stream_fds)} pipes")
    audio = _room_audio(settings.source)
    split = audio.filter_multi_output("asplit", len(settings.ladder))
    outputs = []
    for i, (r, fd) in enumerate(zip(settings.ladder, stream_fds, strict=True)):
        outputs.append(ffmpeg.output(
            split.stream(i), f"pipe:{fd}",
            **{"c:a": "aac", "ar": SAMPLE_RATE_HZ, "b:a": format_bitrate(r.bitrate_bps), "ac": r.channels},
            f="mp4", movflags="empty_moov+default_base_moof", frag_duration=round(settings.part_seconds * 1e6),
            flush_packets=1,
        ))  # fmt: skip
    argv: list[str] = ffmpeg.merge_outputs(*outputs).compile(cmd=[settings.ffmpeg_bin, *GLOBAL_ARGS])
    return argv
