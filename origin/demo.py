"""`spillway demo`: the whole pipeline on embedded defaults, on this machine.

origin (gunicorn) + filesystem storage + nginx edge (or the origin's own read path without nginx)
+ a transcoder on the built-in demo room. Ctrl-C once: the broadcast ends cleanly and the replay URL
is printed (and keeps being served); Ctrl-C twice: everything stops.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from origin.server import gunicorn_argv

DEFAULT_ROOM = "demo"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline locally on a demo room and print the listener URL")
    p.add_argument("--room", default=DEFAULT_ROOM)
    p.add_argument("--data-dir", type=Path, default=Path("demo-data"), help="state and storage (wiped at start)")
    p.add_argument("--port", type=int, default=8080, help="edge (listener) port; the origin takes the next one")
    p.add_argument("--no-edge", action="store_true", help="serve listeners from the origin even if nginx exists")
    p.add_argument("--realtime-cap", type=int, default=2, help="real-time seats before listeners overflow to HLS")
    p.add_argument("--segment-seconds", type=float, default=1.0)
    p.add_argument("--duration", type=float, help="end the broadcast by itself after this many seconds")
    p.add_argument("--exit-after-replay", action="store_true",
                   help="stop once the replay and its download are published")
    p.set_defaults(run=run)


def _two_ports(preferred: int) -> tuple[int, int]:
    """Edge and origin ports: `preferred` and the next one when free, else free ports. Both probe sockets are
    open together, so the kernel cannot hand the same free port out twice."""
    candidates = [(preferred, preferred + 1), (0, 0)] if preferred else [(0, 0)]
    for first, second in candidates:
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", first))
                b.bind(("127.0.0.1", second))
            except OSError:
                continue
            return int(a.getsockname()[1]), int(b.getsockname()[1])
    raise OSError("no free ports for the demo")


def _say(msg: str) -> None:
    print(msg, flush=True)


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if predicate():
                return
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


class _Interrupts:
    """Counts Ctrl-C (SIGINT) and SIGTERM without raising, so shutdown stays orderly."""

    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()

    def __call__(self, _signum: int, _frame: object) -> None:
        self.count += 1
        self.event.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        fired = self.event.wait(timeout_s)
        self.event.clear()
        return fired


@contextlib.contextmanager
def _process(argv: list[str], *, env: dict[str, str], log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    out = open(log, "ab") if log else None  # noqa: SIM115 - closed below
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            _wait_or_kill(proc, timeout=20)
        if out:
            out.close()


def _wait_or_kill(proc: subprocess.Popen[bytes], *, timeout: float) -> None:
    """Waits for a process asked to stop; past the timeout, kills its whole group."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run(args: argparse.Namespace) -> int:
    from origin.contract import ids

    try:
        room = ids.room_id(args.room)
    except Exception as exc:
        print(f"spillway demo: {exc}", file=sys.stderr)
        return 2
    if shutil.which("ffmpeg") is None:
        print("spillway demo: ffmpeg is not installed (run `make demo`, which installs it)", file=sys.stderr)
        return 2
    interrupts = _Interrupts()
    signal.signal(signal.SIGINT, interrupts)
    signal.signal(signal.SIGTERM, interrupts)
    try:
        return _run(args, room, interrupts)
    except (TimeoutError, OSError, RuntimeError) as exc:
        print(f"spillway demo: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, room: str, interrupts: _Interrupts) -> int:
    data = args.data_dir.resolve()
    shutil.rmtree(data / "state", ignore_errors=True)
    shutil.rmtree(data / "storage", ignore_errors=True)
    (data / "logs").mkdir(parents=True, exist_ok=True)
    edge_port, origin_port = _two_ports(args.port)
    origin_url = f"http://127.0.0.1:{origin_port}"
    use_edge = not args.no_edge and _nginx_available()
    listener_base = f"http://127.0.0.1:{edge_port}" if use_edge else origin_url
    admin_token = secrets.token_urlsafe(24)
    ingest_token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "SPILLWAY_STATE_DIR": str(data / "state"),
        "SPILLWAY_STORAGE_ROOT": str(data / "storage"),
        "SPILLWAY_ADMIN_TOKEN": admin_token,
        "SPILLWAY_PUBLIC_BASE_URL": listener_base,
        "SPILLWAY_API_BASE_URL": listener_base,
        "SPILLWAY_SEAT_TOKEN_SECRET": os.environ.get("SPILLWAY_SEAT_TOKEN_SECRET", secrets.token_urlsafe(32)),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    admin = {"Authorization": f"Bearer {admin_token}"}
    with contextlib.ExitStack() as stack:
        _say(f"starting the origin (gunicorn) on {origin_url} — logs in {data / 'logs'}")
        origin = stack.enter_context(
            _process(gunicorn_argv(bind=f"127.0.0.1:{origin_port}", workers=2), env=env, log=data / "logs/origin.log")
        )
        _wait(lambda: httpx.get(f"{origin_url}/readyz", timeout=1).status_code == 200, 30, "the origin")
        if origin.poll() is not None:
            raise RuntimeError("the origin exited; see demo-data/logs/origin.log")
        if use_edge:
            from origin.edge.nginx_process import EdgeOptions, run_edge

            stack.enter_context(
                run_edge(EdgeOptions(origin_url=origin_url, listen_port=edge_port, allowed_origins=("*",)))
            )
            _say(f"nginx edge caching in front of it on {listener_base}")
        else:
            _say("nginx not found: listeners read from the origin directly")
        r = httpx.put(
            f"{origin_url}/v1/rooms/{room}",
            headers=admin,
            json={
                "ingest_token": ingest_token,
                "realtime_cap": args.realtime_cap,
                "title": "Spillway demo room",
                "host": "Spillway",
            },
            timeout=10,
        )
        if r.status_code not in (200, 201):
            raise RuntimeError(f"could not create the room: {r.status_code} {r.text}")
        transcoder = stack.enter_context(
            _process(
                [sys.executable, "-m", "origin.cli", "transcode", "--demo", "--room", room, "--origin", origin_url,
                 "--token", ingest_token, "--segment-seconds", str(args.segment_seconds)],
                env=env,
                log=data / "logs/transcoder.log",
            )
        )  # fmt: skip
        master = f"{listener_base}/rooms/{room}/master.m3u8"
        _wait(lambda: httpx.get(master, timeout=2).status_code == 200, 60, "the first playlist")
        _say("")
        _say(f"  LIVE   listener URL (HLS): {master}")
        _say(f"         player:             {listener_base}/embed/{room}")
        _say(f"         status:             {listener_base}/rooms/{room}/status.json")
        _say(f"         try:  ffplay -nodisp {master}")
        _say("")
        _say("Ctrl-C ends the broadcast (the replay stays online); Ctrl-C again stops everything.")
        interrupts.wait(args.duration)
        _say("ending the broadcast…")
        if transcoder.poll() is None:
            # Only the supervisor: it forwards the stop to ffmpeg, waits for the final segment, then ends the session.
            os.kill(transcoder.pid, signal.SIGINT)
            _wait_or_kill(transcoder, timeout=30)
        httpx.post(f"{origin_url}/v1/rooms/{room}/end", headers=admin, timeout=10)
        replay = f"{listener_base}/rooms/{room}/replay.m3u8"
        _wait(lambda: _replay_final(replay), 30, "the replay")
        _say("")
        _say(f"  REPLAY {replay}")
        _say(f"         player:             {listener_base}/embed/{room}")
        _say("")
        if args.exit_after_replay:  # once the download is built too: the storage left behind is plain files then
            _wait(lambda: httpx.head(f"{listener_base}/rooms/{room}/replay.m4a", timeout=5).status_code == 200, 60,
                  "the replay download")  # fmt: skip
            return 0
        _say("the replay keeps being served; Ctrl-C stops everything.")
        while interrupts.count < 2 and origin.poll() is None:
            interrupts.wait(1.0)
        _say("stopping.")
    return 0


def _replay_final(replay_master_url: str) -> bool:
    """The replay is final once its media playlists carry EXT-X-ENDLIST."""
    text = httpx.get(replay_master_url, timeout=5).text
    uri = next(line for line in text.splitlines() if line and not line.startswith("#"))
    media = replay_master_url.rsplit("/", 1)[0] + "/" + uri
    return "#EXT-X-ENDLIST" in httpx.get(media, timeout=5).text


def _nginx_available() -> bool:
    from origin.edge.nginx_process import find_nginx

    try:
        find_nginx()
    except Exception:
        return False
    return True
