"""What the transcoder reads: one input URL, an SDP file for RTP, several speakers to mix, or the demo room.

The values are pure; `check_readable` is the one edge check (local files must exist before ffmpeg starts,
so a typo is one clear message instead of an ffmpeg crash loop).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from transcoder.errors import SourceError

# ffmpeg protocols an SDP-described RTP session needs (the SFU hands the recorder an SDP file).
RTP_PROTOCOL_WHITELIST = "file,udp,rtp"

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
LIVE_SOURCES = (JanusSource,)  # inputs that restart on end-of-stream whatever --restart-on-eos says


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
