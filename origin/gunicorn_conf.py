"""gunicorn configuration for `spillway origin` (uvicorn workers, metrics across workers, no litter)."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

# Every worker writes its metric samples here; /metrics merges them. Fresh per master start.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="spillway-metrics-")

bind = os.environ.get("SPILLWAY_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("SPILLWAY_WORKERS", "2"))
worker_class = "origin.web.worker.SpillwayWorker"
control_socket_disable = True  # gunicorn ≥ 24 would otherwise leave ~/.gunicorn/gunicorn.ctl behind
graceful_timeout = 20
timeout = 60
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = os.environ.get("SPILLWAY_LOG_LEVEL", "info")
proc_name = "spillway-origin"


def post_worker_init(_worker: Any) -> None:
    # The origin's own loggers (room=… lines: refusals, sessions, deletions) go to the error log at the
    # configured level. Without this only WARNING and above reached stderr, through logging's last resort.
    import logging
    import sys

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
                                           "%Y-%m-%d %H:%M:%S %z"))  # fmt: skip
    for name in ("origin", "transcoder"):
        logger = logging.getLogger(name)
        logger.setLevel(loglevel.upper())
        logger.addHandler(handler)
        logger.propagate = False


def child_exit(_server: Any, worker: Any) -> None:
    # Imported here, not at the top: prometheus_client picks its value class at import time, and it must
    # see PROMETHEUS_MULTIPROC_DIR (set above) first.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(_server: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if os.path.basename(directory).startswith("spillway-metrics-"):
        shutil.rmtree(directory, ignore_errors=True)
