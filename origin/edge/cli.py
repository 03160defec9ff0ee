"""`spillway edge`: render the nginx edge config, or run an edge in the foreground.

    spillway edge render --listen 0.0.0.0:80 --cache-dir /var/cache/spillway-edge \\
        --worker-user www-data:www-data --allow-origin https://news.example > /etc/nginx/spillway-edge.conf
    spillway edge run --listen 127.0.0.1:8000 --allow-origin http://localhost:3000

Storage and the origin address come from the origin's SPILLWAY_* settings (origin/edge/options.py) unless
--origin-url / --s3-* are given. The template is package data (origin/edge/templates/), so this works from
an installed wheel as well as from a checkout.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Literal

from origin.edge.errors import EdgeError
from origin.edge.nginx_config import LL_LOCK_WAIT_MS, EdgeParams, parse_upstream, render_config
from origin.edge.nginx_process import TEMPLATE_PATH, EdgeOptions, run_edge
from origin.edge.options import chosen_storage, origin_url_from_settings
from origin.settings import Settings


def add_parser(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser("edge", help="the nginx CDN edge: render its config, or run it")
    actions = parser.add_subparsers(dest="edge_command", required=True)
    for name, text in (("render", "print the nginx config for these settings"),
                       ("run", "run an nginx edge in the foreground (temporary prefix unless --prefix)")):  # fmt: skip
        p = actions.add_parser(name, help=text)
        p.add_argument("--listen", default="127.0.0.1:8000", help="host:port the edge listens on")
        p.add_argument("--origin-url", help="origin service URL (default: from SPILLWAY_BIND)")
        p.add_argument("--s3-endpoint", help="S3 endpoint URL: read storage from S3 instead of the origin")
        p.add_argument("--s3-bucket", default="")
        p.add_argument("--s3-prefix", default="")
        p.add_argument("--allow-origin", action="append", default=[], help="embed origin for CORS (repeat)")
        p.add_argument("--workers", default="auto", help="worker_processes (a number or auto)")
        p.add_argument("--ll-lock-wait-ms", type=int, default=LL_LOCK_WAIT_MS,
                       help="blocking reloads wait this long on the cache lock: just over a part")  # fmt: skip
        p.set_defaults(run=run)
    render = actions.choices["render"]
    render.add_argument("--cache-dir", required=True, help="absolute cache directory")
    render.add_argument("--worker-user", help="user:group for workers when nginx starts as root")
    actions.choices["run"].add_argument("--prefix", type=Path, help="nginx prefix directory (default: temporary)")
    return parser


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings()
        origin_url = args.origin_url or origin_url_from_settings(settings)
        storage = chosen_storage(
            settings,
            origin_url=args.origin_url,
            s3_endpoint=args.s3_endpoint,
            s3_bucket=args.s3_bucket,
            s3_prefix=args.s3_prefix,
        )
        host, _, port = args.listen.rpartition(":")
        if not port.isdigit():
            raise EdgeError(f"--listen {args.listen!r} must be host:port")
        workers: int | Literal["auto"] = "auto" if args.workers == "auto" else int(args.workers)
        if args.edge_command == "render":
            user = tuple(args.worker_user.split(":", 1)) if args.worker_user else None
            params = EdgeParams(listen_host=host, listen_port=int(port), origin=parse_upstream(origin_url),
                                storage=storage, cache_dir=args.cache_dir, allowed_origins=tuple(args.allow_origin),
                                worker_processes=workers, ll_lock_wait_ms=args.ll_lock_wait_ms,
                                worker_user=(user[0], user[-1]) if user else None)  # fmt: skip
            sys.stdout.write(render_config(TEMPLATE_PATH.read_text(), params))
            return 0
        options = EdgeOptions(origin_url=origin_url, storage=storage, allowed_origins=tuple(args.allow_origin),
                              listen_host=host, listen_port=int(port), worker_processes=workers,
                              prefix_dir=args.prefix, ll_lock_wait_ms=args.ll_lock_wait_ms)  # fmt: skip
        return _serve(options)
    except (EdgeError, ValueError) as exc:
        print(f"spillway edge: error: {exc}", file=sys.stderr)
        return 2


def _serve(options: EdgeOptions) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with run_edge(options) as edge:
        print(f"edge on {edge.base_url} (storage: {options.storage.kind if options.storage else 'origin'};"
              f" prefix {edge.prefix})", flush=True)  # fmt: skip
        while not stop.wait(1.0):
            if edge.proc.poll() is not None:
                raise EdgeError(f"nginx exited with {edge.proc.returncode}: {edge.stderr_tail()}")
    return 0
