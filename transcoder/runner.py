"""The transcoder's Python entry point: `run_transcoder(settings, stop=…, status=…)` (used by the CLI and
`spillway demo`)."""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path

from transcoder.clock import SYSTEM_CLOCK, Clock
from transcoder.demo import find_espeak, make_demo_clip
from transcoder.ingest import IngestClient
from transcoder.janus_source import JanusSecrets, janus_input
from transcoder.process import resolve_ffmpeg
from transcoder.settings import TranscodeSettings
from transcoder.source import DemoSource, JanusSource, check_readable
from transcoder.status import StatusCallback
from transcoder.supervisor import Supervisor


def run_transcoder(
    settings: TranscodeSettings,
    *,
    stop: threading.Event | None = None,
    status: StatusCallback | None = None,
    clock: Clock = SYSTEM_CLOCK,
    janus_secrets: JanusSecrets | None = None,
) -> int:
    """Transcode and push until `stop` is set or a file input ends (a live source never does, see
    source.is_live and policy.OnEos); returns 0 then.

    Raises a TranscoderError subclass when it cannot run or gives up: FfmpegNotFoundError, SourceError,
    ConfigError, IngestRejectedError (e.g. 409 room ended), FfmpegError (ffmpeg refused its command, or a
    file input), CrashLoopError (file inputs only: crash loop or origin unreachable for too long; the
    message carries ffmpeg's stderr tail).
    Safe to call from a non-main thread (it installs no signal handlers: set `stop` instead).
    """
    resolve_ffmpeg(settings.ffmpeg_bin, room=settings.room)
    check_readable(settings.source)
    with ExitStack() as stack:
        source = settings.source
        if isinstance(source, JanusSource):  # Spillway writes the SDP of the room's forwarder
            settings = stack.enter_context(janus_input(settings, janus_secrets or JanusSecrets()))
        if isinstance(source, DemoSource) and source.clip is None and source.speech:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spillway-demo-")))
            clip = make_demo_clip(workdir, espeak=find_espeak())
            settings = dataclasses.replace(settings, source=DemoSource(clip=clip, speech=False))
        ingest = stack.enter_context(
            IngestClient(
                origin_url=settings.origin_url,
                room=settings.room,
                token=settings.token,
                timeout_seconds=settings.http_timeout_seconds,
            )
        )
        return Supervisor(settings, ingest=ingest, clock=clock, stop=stop, status=status).run()
