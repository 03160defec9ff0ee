"""`python -m origin.edge`: render the nginx edge config, or run an edge in the foreground.

    python -m origin.edge render --listen 0.0.0.0:80 --cache-dir /var/cache/spillway-edge \\
        --worker-user www-data:www-data --allow-origin https://news.example > /etc/nginx/spillway-edge.conf
    python -m origin.edge run --listen 127.0.0.1:8000 --allow-origin http://localhost:3000

Storage and the origin address come from the origin's SPILLWAY_* settings (origin/edge/options.py) unless
--origin-url / --s3-* are given.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from origin.edge.errors import EdgeError
from origin.edge.exporter import run_exporters
from origin.edge.nginx_config import (
    DEFAULT_STATUS_PORT,
    EdgeParams,
    origin_storage,
    parse_upstream,
    render_config,
    s3_storage,
)
from origin.edge.nginx_process import TEMPLATE_PATH, EdgeOptions, run_edge
from origin.edge.options import origin_url_from_settings, storage_from_settings
from origin.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m origin.edge", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("render", "run"):
        p = sub.add_parser(name)
        p.add_argument("--listen", default="127.0.0.1:8000", help="host:port the edge listens on")
        p.add_argument("--origin-url", help="origin service URL (default: from SPILLWAY_BIND)")
        p.add_argument("--s3-endpoint", help="S3 endpoint URL: read storage from S3 instead of the origin")
        p.add_argument("--s3-bucket", default="")
        p.add_argument("--s3-prefix", default="")
        p.add_argument("--allow-origin", action="append", default=[], help="embed origin for CORS (repeat)")
        p.add_argument("--workers", default="auto", help="worker_processes (a number or auto)")
        p.add_argument("--status-port", type=int, help="loopback port of the stub_status server (default: 8090 for"
                       " render, a free one for run)")  # fmt: skip
    render = sub.choices["render"]
    render.add_argument("--cache-dir", required=True, help="absolute cache directory")
    render.add_argument("--worker-user", help="user:group for workers when nginx starts as root")
    run = sub.choices["run"]
    run.add_argument("--prefix", type=Path, help="nginx prefix directory (default: a temporary one)")
    run.add_argument("--metrics-port", type=int, help="serve the edge's upstream-log metrics on 127.0.0.1:PORT")
    run.add_argument("--nginx-exporter-port", type=int,
                     help="also run prometheus-nginx-exporter (stub_status) on 127.0.0.1:PORT")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings()
    origin_url = args.origin_url or origin_url_from_settings(settings)
    if args.s3_endpoint:
        storage = s3_storage(endpoint_url=args.s3_endpoint, bucket=args.s3_bucket, prefix=args.s3_prefix)
    elif args.origin_url:
        storage = origin_storage(origin_url)
    else:
        storage = storage_from_settings(settings)
    host, _, port = args.listen.rpartition(":")
    workers: int | Literal["auto"] = "auto" if args.workers == "auto" else int(args.workers)
    try:
        if args.command == "render":
            user = tuple(args.worker_user.split(":", 1)) if args.worker_user else None
            params = EdgeParams(
                listen_host=host,
                listen_port=int(port),
                origin=parse_upstream(origin_url),
                storage=storage,
                cache_dir=args.cache_dir,
                allowed_origins=tuple(args.allow_origin),
                worker_processes=workers,
                worker_user=(user[0], user[-1]) if user else None,
                status_port=args.status_port or DEFAULT_STATUS_PORT,
            )
            sys.stdout.write(render_config(TEMPLATE_PATH.read_text(), params))
            return 0
        options = EdgeOptions(
            origin_url=origin_url,
            storage=storage,
            allowed_origins=tuple(args.allow_origin),
            listen_host=host,
            listen_port=int(port),
            worker_processes=workers,
            prefix_dir=args.prefix,
            status_port=args.status_port,
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        with contextlib.ExitStack() as stack:
            edge = stack.enter_context(run_edge(options))
            print(f"edge on {edge.base_url} (storage: {storage.kind}; prefix {edge.prefix})", flush=True)
            if args.metrics_port:
                urls = stack.enter_context(run_exporters(
                    log_dir=edge.log_dir, stub_status_url=edge.stub_status_url, log_metrics_port=args.metrics_port,
                    nginx_exporter_port=args.nginx_exporter_port))  # fmt: skip
                print("edge metrics: " + " ".join(u for u in urls if u), flush=True)
            while not stop.wait(1.0):
                if edge.proc.poll() is not None:
                    raise EdgeError(f"nginx exited with {edge.proc.returncode}: {edge.stderr_tail()}")
        return 0
    except EdgeError as exc:
        print(f"edge: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
