"""Spillway transcoder: room audio → AAC HLS ladder (ffmpeg) → HTTP PUT to the origin (docs/ingest.md).

Data flow by module: source (what is read) → ladder → command (pure argv) → process (one ffmpeg child)
→ ffmpeg_log (what it pushed) → ingest (start/end calls) → policy (pure restart decisions) → supervisor
→ runner (`run_transcoder`) → cli (`spillway transcode`). Errors: errors.py; time: clock.py.
"""

from transcoder.errors import TranscoderError
from transcoder.ladder import DEFAULT_LADDER, Rendition, parse_ladder
from transcoder.policy import RestartPolicy
from transcoder.runner import run_transcoder
from transcoder.settings import TranscodeSettings
from transcoder.source import DemoSource, MixSource, SdpSource, UrlSource
from transcoder.status import TranscodeStatus

__all__ = [
    "DEFAULT_LADDER",
    "DemoSource",
    "MixSource",
    "Rendition",
    "RestartPolicy",
    "SdpSource",
    "TranscodeSettings",
    "TranscodeStatus",
    "TranscoderError",
    "UrlSource",
    "parse_ladder",
    "run_transcoder",
]
