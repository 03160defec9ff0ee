"""`spillway transcode`: argument parsing, signals, the status line and error messages (edge).

origin/cli.py calls `add_parser(sub)`; the parser's `run(args) -> int` is the subcommand.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from origin.contract.ingest import PART_SECONDS_DEFAULT
from transcoder.errors import ConfigError, TranscoderError
from transcoder.janus_source import JanusSecrets, read_secrets_file
from transcoder.ladder import DEFAULT_LADDER, format_ladder, parse_ladder
from transcoder.policy import OnEos, RestartPolicy
from transcoder.runner import run_transcoder
from transcoder.settings import SEGMENT_SECONDS, TranscodeSettings
from transcoder.source import DemoSource, JanusSource, MixSource, SdpSource, Source, UrlSource
from transcoder.status import StatusPrinter

log = logging.getLogger(__name__)
PROG = "spillway transcode"


class TranscoderEnv(BaseSettings):
    """Environment read once by the CLI (prefix SPILLWAY_)."""

    model_config = SettingsConfigDict(env_prefix="SPILLWAY_", extra="ignore")

    ingest_token: SecretStr = SecretStr("")
    janus_api_secret: SecretStr = SecretStr("")
    janus_admin_key: SecretStr = SecretStr("")
    janus_room_secret: SecretStr = SecretStr("")

    def janus_secrets(self, path: Path | None) -> JanusSecrets:
        """From the environment, or from `path` (KEY=VALUE lines with the same SPILLWAY_JANUS_* names)."""
        if path is None:
            return JanusSecrets(
                api_secret=self.janus_api_secret.get_secret_value(),
                admin_key=self.janus_admin_key.get_secret_value(),
                room_secret=self.janus_room_secret.get_secret_value(),
            )
        values = read_secrets_file(path)
        return JanusSecrets(
            api_secret=values.get("SPILLWAY_JANUS_API_SECRET", ""),
            admin_key=values.get("SPILLWAY_JANUS_ADMIN_KEY", ""),
            room_secret=values.get("SPILLWAY_JANUS_ROOM_SECRET", ""),
        )


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register `transcode` on an argparse subparsers object."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "transcode",
        help="encode a room's audio into the AAC HLS ladder and push it to the origin",
        description=(
            "Encode a room's audio (one input, an SDP for RTP, several speakers mixed, or the demo room) into "
            "an AAC-LC fMP4 HLS ladder and PUT it to the origin's ingest API. Ctrl-C / SIGTERM ends cleanly. "
            "A live source (SDP/RTP, a network listener or stream, a capture device, the demo room) never ends "
            "by itself: when it ends or keeps failing, a new session listens again; only a file input ends "
            "the run (docs/transcoder.md)."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", metavar="URL", help="any ffmpeg input: file, http, rtmp://…?listen=1, srt, udp")
    source.add_argument("--sdp", metavar="FILE", type=Path, help="SDP file of an RTP (Opus) stream from an SFU")
    source.add_argument("--mix", metavar="URL", nargs="+", help="one input per speaker, mixed into the room mix")
    source.add_argument("--demo", action="store_true", help="built-in demo room, real time, loops until stopped")
    source.add_argument("--janus", metavar="URL", help="Janus HTTP API: transcode the --room AudioBridge mix")
    parser.add_argument("--janus-forward-host", default="127.0.0.1", metavar="HOST",
                        help="--janus: this machine's address as Janus sends RTP to it (default %(default)s)")
    parser.add_argument("--janus-secrets", type=Path, metavar="FILE",
                        help="--janus: SPILLWAY_JANUS_* secrets as KEY=VALUE lines (default: the environment)")
    parser.add_argument("--input-format", metavar="FMT", help="ffmpeg -f for --input (e.g. lavfi)")
    parser.add_argument("--realtime", action="store_true", help="pace file inputs at real time (-re)")
    parser.add_argument("--room", required=True, help="room id")
    parser.add_argument("--origin", required=True, metavar="URL", help="origin base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--token", help="the room's ingest token (default: $SPILLWAY_INGEST_TOKEN)")
    parser.add_argument(
        "--ladder",
        default=format_ladder(DEFAULT_LADDER),
        help="renditions as name:bitrate:channels,… (default %(default)s)",
    )
    parser.add_argument("--segment-seconds", type=float, default=SEGMENT_SECONDS, help="default %(default)s")
    parser.add_argument("--low-latency", action="store_true",
                        help="low-latency HLS: stream each rendition as fragmented MP4 parts (--part-seconds)")
    parser.add_argument("--part-seconds", type=float, default=PART_SECONDS_DEFAULT,
                        help="with --low-latency: part length (default %(default)s: 10 AAC frames)")
    parser.add_argument("--ffmpeg", default="ffmpeg", metavar="PATH", help="ffmpeg binary (default %(default)s)")
    parser.add_argument("--crash-limit", type=int, default=5,
                        help="crashes within the window that are a crash loop: a file input gives up, a live "
                        f"source retries every {RestartPolicy().max_delay_seconds:g} s with an ERROR per attempt")
    parser.add_argument("--crash-window", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--backoff", type=float, default=0.5, metavar="SECONDS", help="first restart delay")
    parser.add_argument("--rtp-idle-timeout", type=float, default=None, metavar="SECONDS",
                        help="--sdp/--janus: the input ends after this long without a packet (default 10 / 5); "
                        "then a new session listens")
    eos = parser.add_mutually_exclusive_group()
    eos.add_argument("--restart-on-eos", dest="on_eos", action="store_const", const=OnEos.RESTART,
                     default=OnEos.AUTO,
                     help="when the input ends, start a new session, file inputs too (the default for live "
                     "sources: publisher left, RTP idle; accepted for existing scripts)")
    eos.add_argument("--exit-on-eos", dest="on_eos", action="store_const", const=OnEos.EXIT,
                     help="end the run when the input ends, live sources too (the behaviour before live "
                     "sources restarted)")
    parser.add_argument("--stop-timeout", type=float, default=15.0, metavar="SECONDS",
                        help="after SIGINT to ffmpeg, wait this long before SIGTERM (and again before SIGKILL)")
    parser.add_argument("--status-interval", type=float, default=10.0, metavar="SECONDS",
                        help="how often the status is logged when stderr is not a terminal")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: ffmpeg command)")
    parser.set_defaults(run=run)
    return parser


def _source(args: argparse.Namespace) -> Source:
    if args.demo:
        return DemoSource()
    if args.sdp is not None:
        return SdpSource(path=args.sdp, idle_timeout_seconds=args.rtp_idle_timeout or 10.0)
    if args.janus is not None:
        return JanusSource(url=args.janus, forward_host=args.janus_forward_host,
                           idle_timeout_seconds=args.rtp_idle_timeout or 5.0)  # fmt: skip
    if args.mix:
        return MixSource(urls=tuple(args.mix), realtime=args.realtime)
    return UrlSource(url=args.input, format=args.input_format, realtime=args.realtime)


def settings_from_args(args: argparse.Namespace, env: TranscoderEnv | None = None) -> TranscodeSettings:
    env = env if env is not None else TranscoderEnv()
    token = args.token or env.ingest_token.get_secret_value()
    if args.input_format and not args.input:
        raise ConfigError("--input-format applies to --input only")
    if args.crash_limit < 1 or args.crash_window <= 0 or args.backoff < 0 or args.stop_timeout <= 0:
        raise ConfigError("--crash-limit must be ≥ 1; --crash-window, --stop-timeout > 0; --backoff ≥ 0")
    if args.rtp_idle_timeout is not None and args.rtp_idle_timeout <= 0:
        raise ConfigError("--rtp-idle-timeout must be > 0")
    if (args.janus_secrets is not None or args.janus_forward_host != "127.0.0.1") and args.janus is None:
        raise ConfigError("--janus-secrets and --janus-forward-host apply to --janus only")
    source = _source(args)
    return TranscodeSettings(
        room=args.room,
        source=source,
        origin_url=args.origin,
        token=token,
        ladder=parse_ladder(args.ladder),
        segment_seconds=args.segment_seconds,
        part_seconds=args.part_seconds if args.low_latency else None,
        ffmpeg_bin=args.ffmpeg,
        policy=RestartPolicy(
            base_delay_seconds=args.backoff,
            crash_limit=args.crash_limit,
            crash_window_seconds=args.crash_window,
            on_eos=args.on_eos,
        ),
        stop_timeout_seconds=args.stop_timeout,
    )


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set `stop` (the supervisor forwards SIGINT to ffmpeg); a third one exits at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = 0

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        if received >= 3:
            raise SystemExit(130)
        log.info("received %s; stopping after ffmpeg writes its last segment", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _configure_logging(verbose: int, tty: bool) -> None:
    root = logging.getLogger()
    if root.handlers:
        return
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 or not tty else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)  # ingest logs its calls


def run(args: argparse.Namespace) -> int:
    tty = sys.stderr.isatty()
    _configure_logging(args.verbose, tty)
    stop = threading.Event()
    try:
        settings = settings_from_args(args)
        janus = TranscoderEnv().janus_secrets(args.janus_secrets) if args.janus is not None else None
        printer = StatusPrinter(sys.stderr, tty=tty, log_interval_seconds=args.status_interval)
        with _stop_on_signals(stop):
            return run_transcoder(settings, stop=stop, status=printer, janus_secrets=janus)
    except TranscoderError as exc:
        if tty:
            sys.stderr.write("\n")
        sys.stderr.write(f"{PROG}: error: {exc.message}\n")
        return exc.exit_status
