"""A real origin under gunicorn (uvicorn workers) on a free 127.0.0.1 port, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from origin.server import gunicorn_argv
from tests.support.net import free_port

ADMIN_TOKEN = "test-admin-token"


@dataclass(kw_only=True)
class OriginServer:
    base_url: str
    state_dir: Path
    storage_root: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, n_bytes: int = 6000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-n_bytes:].decode(errors="replace")
        return ""

    def create_room(self, room: str, *, ingest_token: str, realtime_cap: int = 0, **fields: object) -> None:
        """Create the room through the admin API (PUT /v1/rooms/{room})."""
        body = {"ingest_token": ingest_token, "realtime_cap": realtime_cap, **fields}
        r = httpx.put(
            f"{self.base_url}/v1/rooms/{room}",
            json=body,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        assert r.status_code in (200, 201), r.text

    def end_broadcast(self, room: str) -> httpx.Response:
        return httpx.post(
            f"{self.base_url}/v1/rooms/{room}/end", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        )

    def worker_pids(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        return [int(p) for p in out]


def stop_group(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """SIGTERM the process group a test started (start_new_session=True), SIGKILL it after `timeout_s`."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def origin_server(
    *,
    workers: int = 2,
    env: Mapping[str, str] | None = None,
    state_dir: Path | None = None,
    storage_root: Path | None = None,
    port: int | None = None,
    startup_timeout_s: float = 30.0,
) -> Iterator[OriginServer]:
    """Start `spillway origin`'s gunicorn command with SPILLWAY_* settings; stop it (and its workers) after."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spillway-origin-")))
        state = state_dir or tmp / "state"
        storage_root = storage_root or tmp / "storage"
        port = port or free_port()
        base_url = f"http://127.0.0.1:{port}"
        full_env = {
            **os.environ,
            "SPILLWAY_STATE_DIR": str(state),
            "SPILLWAY_STORAGE_ROOT": str(storage_root),
            "SPILLWAY_ADMIN_TOKEN": ADMIN_TOKEN,
            "SPILLWAY_PUBLIC_BASE_URL": base_url,
            "SPILLWAY_SEAT_TOKEN_SECRET": "test-seat-secret-0123456789abcdef",
            **(env or {}),
        }
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        log_path = tmp / "origin.log"
        log = stack.enter_context(open(log_path, "wb"))
        argv = gunicorn_argv(bind=f"127.0.0.1:{port}", workers=workers)
        argv[0] = sys.executable
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=tmp, start_new_session=True
        )
        server = OriginServer(
            base_url=base_url, state_dir=state, storage_root=storage_root, process=process, log_path=log_path
        )
        try:
            deadline = time.monotonic() + startup_timeout_s
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"origin exited early:\n{server.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"origin not ready:\n{server.log_tail()}")
                time.sleep(0.1)
            yield server
        finally:
            stop_group(process)
