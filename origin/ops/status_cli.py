"""`spillway status`: every room of an origin at a glance, refreshed in the terminal, or once as JSON.

    SPILLWAY_ADMIN_TOKEN=... spillway status --origin http://127.0.0.1:8080
    spillway status --token-file /run/secrets/admin --json | jq '.rooms[] | select(.trouble != "OK")'

Reads GET /v1/rooms (admin bearer) page by page. The token comes from SPILLWAY_ADMIN_TOKEN or --token-file,
never from the command line (argv is visible to every user of the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import httpx

from origin.clock import wall_clock
from origin.ops.status import ListingError, RoomRow, Trouble, render_table, rows_from_listing

PAGE_LIMIT = 1000
MAX_PAGES = 100  # 100,000 rooms at most per refresh
_ENTER_SCREEN, _LEAVE_SCREEN, _HOME_CLEAR = "\x1b[?1049h\x1b[?25l", "\x1b[?25h\x1b[?1049l", "\x1b[H\x1b[2J"


class StatusError(Exception):
    """The listing could not be read (message for the operator); `fatal`: retrying will not help."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="live view of every room on an origin (admin API)")
    p.add_argument("--origin", default=os.environ.get("SPILLWAY_API_BASE_URL") or "http://127.0.0.1:8080",
                   help="origin API base URL (default SPILLWAY_API_BASE_URL or http://127.0.0.1:8080)")  # fmt: skip
    p.add_argument("--token-file", type=Path, help="file holding the admin token (default: SPILLWAY_ADMIN_TOKEN)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    p.add_argument("--once", action="store_true", help="print the table once and exit")
    p.add_argument("--json", action="store_true", help="print the rooms once as JSON and exit (for scripts)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.set_defaults(run=run)


def admin_token(token_file: Path | None) -> str:
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise StatusError(f"cannot read the token file: {exc}", fatal=True) from exc
    else:
        token = os.environ.get("SPILLWAY_ADMIN_TOKEN", "").strip()
    if not token:
        raise StatusError("no admin token: set SPILLWAY_ADMIN_TOKEN or pass --token-file", fatal=True)
    return token


def fetch_rows(client: httpx.Client, origin: str, token: str) -> list[RoomRow]:
    """Every page of GET /v1/rooms as rows."""
    rooms: list[object] = []
    after = ""
    for _ in range(MAX_PAGES):
        try:
            r = client.get(f"{origin.rstrip('/')}/v1/rooms", params={"limit": PAGE_LIMIT, "after": after},
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        except httpx.HTTPError as exc:
            raise StatusError(f"origin unreachable: {exc}") from exc
        if r.status_code in (401, 403):
            raise StatusError(f"admin token refused ({r.status_code})", fatal=True)
        if r.status_code != 200:
            raise StatusError(f"origin answered {r.status_code}: {r.text[:200]}")
        try:
            page = r.json()
        except ValueError as exc:
            raise StatusError("origin answered something that is not JSON") from exc
        if not isinstance(page, dict) or not isinstance(page.get("rooms"), list):
            raise StatusError("origin answered something that is not a room listing")
        rooms.extend(page["rooms"])
        after = page.get("next_after") or ""
        if not after:
            break
    try:
        return rows_from_listing({"rooms": rooms})
    except ListingError as exc:
        raise StatusError(f"unexpected room listing: {exc}") from exc


def _use_colour(mode: str, out: TextIO) -> bool:
    if mode != "auto":
        return mode == "always"
    return out.isatty() and not os.environ.get("NO_COLOR")


def watch(fetch: Callable[[], list[RoomRow]], *, origin: str, interval_s: float, out: TextIO, colour: bool,
          screen: bool, clock: Callable[[], float] = wall_clock, rounds: int | None = None) -> int:  # fmt: skip
    """Refresh until interrupted (or `rounds` screens); an unreachable origin shows in red and is retried."""
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C must quit whatever this process inherited: an ignored SIGINT survives exec, a blocked one too.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if screen:
        out.write(_ENTER_SCREEN)
    try:
        n = 0
        while rounds is None or n < rounds:
            n += 1
            stamp = time.strftime("%H:%M:%S", time.localtime(clock()))
            header = f"spillway status  {origin}  {stamp}  (every {interval_s:g} s, Ctrl-C quits)"
            try:
                text = render_table(fetch(), header=header, colour=colour)
            except StatusError as exc:
                if exc.fatal:
                    raise
                text = f"{header}\n" + (f"\x1b[1;31m{exc}\x1b[0m" if colour else str(exc)) + "\n"
            out.write((_HOME_CLEAR if screen else "") + text)
            out.flush()
            time.sleep(interval_s)
    except KeyboardInterrupt:
        pass
    finally:
        if screen:
            out.write(_LEAVE_SCREEN)
            out.flush()
    return 0


def run(args: argparse.Namespace) -> int:
    if not args.interval > 0:
        print("spillway status: --interval must be positive", file=sys.stderr)
        return 2
    try:
        token = admin_token(args.token_file)
        with httpx.Client(timeout=5.0) as client:
            def fetch() -> list[RoomRow]:
                return fetch_rows(client, args.origin, token)

            if args.json:
                rows = fetch()
                json.dump({"origin": args.origin, "at": wall_clock(), "rooms": [r.to_json() for r in rows]},
                          sys.stdout, indent=2)  # fmt: skip
                sys.stdout.write("\n")
                return 1 if any(r.trouble is Trouble.BAD for r in rows) else 0
            colour = _use_colour(args.color, sys.stdout)
            if args.once:
                sys.stdout.write(render_table(fetch(), header=f"spillway status  {args.origin}", colour=colour))
                return 0
            return watch(fetch, origin=args.origin, interval_s=args.interval, out=sys.stdout, colour=colour,
                         screen=sys.stdout.isatty())  # fmt: skip
    except StatusError as exc:
        print(f"spillway status: {exc}", file=sys.stderr)
        return 2
