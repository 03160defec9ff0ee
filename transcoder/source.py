"""What the transcoder reads: one input URL, an SDP file for RTP, several speakers to mix, or the demo room.

The values are pure; `check_readable` is the one edge check (local files must exist before ffmpeg starts,
so a typo is one clear message instead of an ffmpeg crash loop). `is_live` says whether a source may end by
itself (a file) or never does (everything else: the supervisor listens again when it ends).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from transcoder.errors import SourceError

# ffmpeg protocols an SDP-described RTP session needs (the SFU hands the recorder an SDP file).
RTP_PROTOCOL_WHITELIST = "file,udp,rtp"

# Live-source classification (is_live). URL schemes are ffmpeg protocol names, lowercased; for a nested
# protocol ("hls+http", "crypto+file") the transport after the last "+" decides.
# Always live: listeners and network streams, whatever other options say.
LIVE_SCHEMES = frozenset({
    "rtmp", "rtmps", "rtmpt", "rtmpts", "rtmpe", "rtmpte", "ffrtmphttp", "rtsp", "rtsps", "rtp", "srtp", "srt",
    "rist", "udp", "udplite", "tcp", "tls", "unix", "sctp", "zmq", "amqp", "mmsh", "mmst", "mms", "httpproxy",
})  # fmt: skip
# Live unless paced with -re: without -re ffmpeg would push a remote file faster than real time, which only
# makes sense for a stream that paces itself (Icecast, a live HLS playlist).
STREAM_SCHEMES = frozenset({"http", "https"})
# Finite: files, local or remote, and containers of them. `pipe:` reads ffmpeg's stdin, /dev/null here.
FILE_SCHEMES = frozenset({
    "file", "pipe", "fd", "concat", "concatf", "subfile", "data", "crypto", "ftp", "sftp", "gopher", "gophers",
    "ipfs", "ipns", "bluray", "smb", "md5",
})  # fmt: skip
WRAPPER_SCHEMES = frozenset({"async", "cache"})  # "async:URL", "cache:URL": the wrapped URL decides
# Live -f formats: capture devices (a device that stops delivering went away, it did not finish) and RTP
# session descriptions. lavfi is not one: a generated graph ends only when its own duration (d=…) says so.
LIVE_FORMATS = frozenset({
    "alsa", "pulse", "jack", "oss", "sndio", "openal", "avfoundation", "dshow", "decklink", "iec61883",
    "libdc1394", "v4l2", "video4linux2", "x11grab", "kmsgrab", "fbdev", "gdigrab", "android_camera",
    "sdp", "rtp", "rtsp",
})  # fmt: skip
SDP_SUFFIX = ".sdp"  # ffmpeg opens a local .sdp file as an RTP session

# Demo bed when espeak-ng is missing: a slowly swelling two-tone chord over a little noise, never silent,
# so the AAC encoder spends its bits the way it does on speech.
DEMO_BED_EXPR = (
    "0.18*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*0.25*t))"
    "+0.12*sin(2*PI*330*t)*(0.6+0.4*sin(2*PI*0.2*t+1))"
    "+0.03*(random(0)*2-1)"
)


@dataclass(frozen=True, kw_only=True)
class UrlSource:
    """Any ffmpeg input: a file, http(s), `rtmp://…?listen=1`, `srt://…?mode=listener`, `udp://…`."""

    url: str
    format: str | None = None  # ffmpeg -f, e.g. "lavfi" for a generated source
    realtime: bool = False  # -re: pace a file at real time (live inputs pace themselves)


@dataclass(frozen=True, kw_only=True)
class SdpSource:
    """RTP (e.g. Opus from a Janus RTP forwarder, mediasoup PlainTransport, LiveKit) described by an SDP file.

    The input ends (eos) when no packet arrives for `idle_timeout_seconds` (ffmpeg's SDP `listen_timeout`).
    A stop request during such a stall completes when the timeout fires: ffmpeg's first SIGINT does not
    interrupt a blocking read (a second would also abort the final PUTs), so keep it below the supervisor's
    stop timeout.
    """

    path: Path
    idle_timeout_seconds: float = 10.0


@dataclass(frozen=True, kw_only=True)
class MixSource:
    """One track per speaker, mixed into one room mix."""

    urls: tuple[str, ...]
    realtime: bool = False


@dataclass(frozen=True, kw_only=True)
class DemoSource:
    """The built-in demo room, paced in real time and looped until stopped.

    `clip` is a prepared speech clip (see transcoder.demo). With `clip=None`, `run_transcoder` synthesizes
    the speech clip when `speech` is set and espeak-ng is installed; otherwise the generated
    tone-and-noise bed plays.
    """

    clip: Path | None = None
    speech: bool = True


@dataclass(frozen=True, kw_only=True)
class JanusSource:
    """A Janus AudioBridge room's mix (the room is the transcoder's `--room`), forwarded as Opus RTP.

    A live source: when its input ends the supervisor listens again. transcoder.janus_source turns it into
    an SdpSource (SDP written by Spillway) for the command builder.
    """

    url: str  # the Janus HTTP API, e.g. http://127.0.0.1:8088/janus
    forward_host: str = "127.0.0.1"  # where Janus sends RTP: this transcoder's address as Janus sees it
    idle_timeout_seconds: float = 5.0  # the forwarder sends silence when nobody speaks: no packet = gone
    timeout_seconds: float = 5.0  # per Janus API call


Source = UrlSource | SdpSource | MixSource | DemoSource | JanusSource


def describe(source: Source) -> str:
    match source:
        case UrlSource(url=url, format=fmt):
            return f"{fmt}:{url}" if fmt else url
        case SdpSource(path=path):
            return f"sdp:{path}"
        case MixSource(urls=urls):
            return f"mix of {len(urls)}: " + " + ".join(urls)
        case DemoSource(clip=clip):
            return f"demo room ({'speech ' + str(clip) if clip else 'tone-and-noise bed'})"
        case JanusSource(url=url):
            return f"janus:{url} (AudioBridge room mix)"


def url_is_live(url: str, *, realtime: bool = False) -> bool:
    """Whether an ffmpeg input URL is a live stream (never ends by itself) rather than a file (pure).

    Local paths and FILE_SCHEMES: file, except a local `.sdp` (an RTP session). LIVE_SCHEMES: live. http(s):
    live unless `realtime` (-re), which marks a remote file. An unknown scheme counts as live: replaying a
    file by mistake shows in every restart's log line, ending a live room by mistake is silent dead air.
    """
    path = local_path(url)
    if path is not None:
        return path.suffix.lower() == SDP_SUFFIX
    if url == "-":
        return False
    scheme, _, rest = url.partition(":")
    scheme = scheme.lower()
    if scheme in WRAPPER_SCHEMES:
        return url_is_live(rest, realtime=realtime)
    transport = scheme.rsplit("+", 1)[-1]
    if transport in FILE_SCHEMES:
        return False
    if transport in STREAM_SCHEMES:
        return not realtime
    return True


def is_live(source: Source) -> bool:
    """Whether `source` must never end by itself (pure; docs/transcoder.md, "Live sources").

    SDP/RTP, an SFU room (Janus) and the demo room: live. A mix: live when any speaker is. One URL: a
    LIVE_FORMATS -f (capture device, sdp) is live, a generated -f lavfi graph is not; otherwise the URL decides
    (url_is_live).
    """
    match source:
        case SdpSource() | DemoSource() | JanusSource():
            return True
        case MixSource(urls=urls, realtime=realtime):
            return any(url_is_live(url, realtime=realtime) for url in urls)
        case UrlSource(url=url, format=fmt, realtime=realtime):
            if fmt is not None and fmt.lower() in LIVE_FORMATS:
                return True
            if fmt is not None and fmt.lower() == "lavfi":
                return False
            return url_is_live(url, realtime=realtime)


def local_path(url: str) -> Path | None:
    """The filesystem path an ffmpeg input URL names, or None for network and device inputs."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(parts.path)
    if parts.scheme and len(parts.scheme) > 1:  # "c:" on Windows is a drive, not a scheme
        return None
    if url == "-" or url.startswith("pipe:"):
        return None
    return Path(url)


def _check_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise SourceError(f"cannot read {what} {str(path)!r}: no such file", source=str(path))
    if not os.access(path, os.R_OK):
        raise SourceError(f"cannot read {what} {str(path)!r}: permission denied", source=str(path))


def check_readable(source: Source) -> None:
    """Raise SourceError when a local input file is missing or unreadable (network inputs are not probed)."""
    match source:
        case UrlSource(url=url, format=fmt):
            path = None if fmt else local_path(url)
            if path is not None:
                _check_file(path, "input")
        case SdpSource(path=path):
            _check_file(path, "SDP file")
        case MixSource(urls=urls):
            for url in urls:
                mix_path = local_path(url)
                if mix_path is not None:
                    _check_file(mix_path, "speaker input")
        case DemoSource(clip=clip):
            if clip is not None:
                _check_file(clip, "demo clip")
