"""`spillway origin`: run the origin under gunicorn with uvicorn workers."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from origin.settings import Settings

GUNICORN_CONF = Path(__file__).with_name("gunicorn_conf.py")
APP = "origin.web.app:create_app()"


def gunicorn_argv(*, bind: str, workers: int) -> list[str]:
    """The gunicorn command line (pure)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(GUNICORN_CONF),
        "--bind",
        bind,
        "--workers",
        str(workers),
        APP,
    ]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("origin", help="run the origin (ingest, playlists, admission) under gunicorn")
    p.add_argument("--bind", help="host:port (default SPILLWAY_BIND or 127.0.0.1:8080)")
    p.add_argument("--workers", type=int, help="worker processes (default SPILLWAY_WORKERS or 2)")
    p.add_argument("--check", action="store_true", help="validate the configuration and exit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings()
    except Exception as exc:  # pydantic's ValidationError lists every bad variable
        print(f"spillway origin: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    bind = args.bind or settings.bind
    workers = args.workers or settings.workers
    if args.check:
        print(f"configuration ok: bind={bind} workers={workers} storage={settings.storage}")
        return 0
    if importlib.util.find_spec("gunicorn") is None:  # run as `python -m gunicorn`: the module is what counts
        print("spillway origin: gunicorn is not installed in this environment", file=sys.stderr)
        return 2
    argv = gunicorn_argv(bind=bind, workers=workers)
    os.execv(argv[0], argv)
    return 0  # not reached
