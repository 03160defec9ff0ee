"""Run the nginx edge as a child process: temp prefix, rendered config, `nginx -t`, start, stop.

    with run_edge(EdgeOptions(origin_url="http://127.0.0.1:8080")) as edge:
        edge.base_url            # "http://127.0.0.1:<free port>"
        edge.upstream_log()      # requests that reached storage/origin (logs/upstream.log)

nginx runs in the foreground (`daemon off`) in its own process group, with every path (pid, logs, temp,
cache) inside the prefix directory, so it needs no privilege and leaves nothing behind when the prefix is
a temporary one. When the caller is root, workers drop to `nobody` if they can reach the prefix, else they
keep the caller's user. Stopping sends SIGTERM (fast shutdown) and, after a timeout, SIGKILL to the group.
"""

from __future__ import annotations

import contextlib
import grp
import http.client
import logging
import os
import pwd
import resource
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from origin.edge.errors import EdgeProcessError
from origin.edge.logs import LogEntry, StubStatus, parse_log, parse_stub_status
from origin.edge.nginx_config import (
    LL_LOCK_WAIT_MS,
    EdgeParams,
    StorageBackend,
    origin_storage,
    parse_upstream,
    render_config,
)

logger = logging.getLogger(__name__)

TEMPLATE_PATH = Path(__file__).with_name("templates") / "edge.conf.template"  # package data: works from a wheel
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
STDERR_TAIL_CHARS = 4000
UNPRIVILEGED_USER = "nobody"


def find_nginx() -> str:
    found = shutil.which("nginx") or next((p for p in NGINX_CANDIDATES if os.access(p, os.X_OK)), None)
    if found is None:
        raise EdgeProcessError("nginx not found on PATH or in /usr/sbin (run `make demo` to install it)")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, kw_only=True)
class EdgeOptions:
    """What a caller chooses; run_edge fills in the rest (port, prefix, cache dir, limits)."""

    origin_url: str  # the origin service (API paths; storage too unless `storage` is given)
    storage: StorageBackend | None = None  # None: filesystem storage read through the origin
    allowed_origins: tuple[str, ...] = ()
    listen_host: str = "127.0.0.1"
    listen_port: int | None = None  # None: a free port
    status_port: int | None = None  # stub_status server on loopback; None: a free port
    worker_processes: int | Literal["auto"] = 1
    worker_connections: int = 4096
    log_every_request: bool = True
    prefix_dir: Path | None = None  # None: a temporary directory, removed on stop
    nginx_bin: str | None = None
    template_path: Path = TEMPLATE_PATH
    ready_timeout_s: float = 10.0
    live_cache_inactive_s: int = 20
    ll_lock_wait_ms: int = LL_LOCK_WAIT_MS


def _nofile_limit(worker_connections: int) -> int:
    """A file-descriptor limit for workers: 2 × connections + slack, within the hard limit."""
    wanted = 2 * worker_connections + 1024
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return wanted
    if hard < worker_connections:
        raise EdgeProcessError(f"RLIMIT_NOFILE hard limit {hard} < worker_connections {worker_connections}")
    return min(wanted, hard)


def _reachable_by_others(path: Path) -> bool:
    """True if every directory from / down to `path` lets other users traverse it."""
    return all(os.stat(part).st_mode & stat.S_IXOTH for part in [path, *path.parents])


def _worker_user(prefix: Path) -> tuple[str, str] | None:
    if os.geteuid() != 0:
        return None  # the `user` directive only applies when the master is root
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
        group = grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:
        return None
    if not _reachable_by_others(prefix):
        logger.info("edge prefix %s is not reachable by %s: workers keep running as root", prefix, entry.pw_name)
        return None
    return (entry.pw_name, group)


def edge_params(options: EdgeOptions, *, prefix: Path, port: int, status_port: int) -> EdgeParams:
    """The full parameter set for a prefix directory and port (no I/O beyond getrlimit/getpwnam)."""
    return EdgeParams(
        listen_host=options.listen_host,
        listen_port=port,
        status_port=status_port,
        origin=parse_upstream(options.origin_url),
        storage=options.storage or origin_storage(options.origin_url),
        cache_dir=str(prefix / "cache"),
        allowed_origins=options.allowed_origins,
        worker_processes=options.worker_processes,
        worker_connections=options.worker_connections,
        worker_rlimit_nofile=_nofile_limit(options.worker_connections),
        worker_user=_worker_user(prefix),
        log_every_request=options.log_every_request,
        live_cache_inactive_s=options.live_cache_inactive_s,
        ll_lock_wait_ms=options.ll_lock_wait_ms,
    )


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-STDERR_TAIL_CHARS:]
    except OSError:
        return ""


def check_config(nginx_bin: str, prefix: Path, conf: Path) -> None:
    """`nginx -t` on a rendered config. Raises EdgeProcessError with nginx's message when it fails."""
    result = subprocess.run(
        [nginx_bin, "-t", "-q", "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise EdgeProcessError(
            f"nginx -t rejected {conf}", stderr_tail=result.stderr[-STDERR_TAIL_CHARS:], exit_code=result.returncode
        )


@dataclass(kw_only=True, eq=False)
class EdgeProcess:
    """One nginx edge. Create with `start_edge` or `run_edge`; `stop()` is idempotent."""

    params: EdgeParams
    prefix: Path
    conf: Path
    proc: subprocess.Popen[bytes]
    owns_prefix: bool  # the prefix is a temporary directory: stop() removes it

    @property
    def base_url(self) -> str:
        return self.params.base_url

    @property
    def port(self) -> int:
        return self.params.listen_port

    @property
    def stub_status_url(self) -> str:
        """nginx's stub_status on the edge's loopback status server (what prometheus-nginx-exporter reads)."""
        return f"http://{self.params.status_host}:{self.params.status_port}/stub_status"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log_dir(self) -> Path:
        return self.prefix / "logs"

    def _read_log(self, name: str) -> list[LogEntry]:
        try:
            text = (self.log_dir / name).read_text()
        except FileNotFoundError:
            return []
        complete = text[: text.rfind("\n") + 1]  # nginx may be mid-line
        return parse_log(complete.splitlines())

    def upstream_log(self) -> list[LogEntry]:
        """Every request that reached an upstream so far (written unbuffered)."""
        return self._read_log("upstream.log")

    def access_log(self) -> list[LogEntry]:
        """Every request (needs log_every_request; buffered up to 1 s)."""
        return self._read_log("access.log")

    def stderr_tail(self) -> str:
        return _tail(self.log_dir / "stderr.log")

    def status(self) -> StubStatus:
        """nginx's connection and request counters (stub_status)."""
        return parse_stub_status(self._get("/_edge/status"))

    def _get(self, path: str, timeout_s: float = 2.0) -> str:
        conn = http.client.HTTPConnection(self.params.listen_host, self.port, timeout=timeout_s)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read().decode(errors="replace")
            if resp.status != 200:
                raise EdgeProcessError(f"edge answered {resp.status} on {path}")
            return body
        finally:
            conn.close()

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            code = self.proc.poll()
            if code is not None:
                tail = self.stderr_tail()
                self.stop()
                raise EdgeProcessError("nginx exited during start", stderr_tail=tail, exit_code=code)
            try:
                self._get("/_edge/healthz", timeout_s=0.5)
                return
            except (OSError, http.client.HTTPException, EdgeProcessError):
                if time.monotonic() > deadline:
                    tail = self.stderr_tail()
                    self.stop()
                    raise EdgeProcessError(
                        f"nginx not ready on {self.base_url} after {timeout_s}s", stderr_tail=tail
                    ) from None
                time.sleep(0.05)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown: master stops its workers
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("nginx %d ignored SIGTERM for %.0fs: killing its process group", self.pid, timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout_s)
        # Workers share the master's process group; make sure none outlived it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.owns_prefix:
            shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self) -> EdgeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_edge(options: EdgeOptions) -> EdgeProcess:
    """Render, check and start an edge; returns once it answers on its port."""
    nginx_bin = options.nginx_bin or find_nginx()
    owns_prefix = options.prefix_dir is None
    prefix = Path(tempfile.mkdtemp(prefix="spillway-edge-")) if owns_prefix else Path(options.prefix_dir or "")
    try:
        prefix = prefix.resolve()
        if owns_prefix:
            prefix.chmod(0o755)  # so unprivileged workers can reach their cache (root callers only)
        for sub in ("conf", "logs", "tmp", "cache"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        port = options.listen_port or free_port(options.listen_host)
        status_port = options.status_port or free_port("127.0.0.1")
        while status_port == port:
            status_port = free_port("127.0.0.1")
        params = edge_params(options, prefix=prefix, port=port, status_port=status_port)
        conf = prefix / "conf" / "edge.conf"
        conf.write_text(render_config(options.template_path.read_text(), params))
        check_config(nginx_bin, prefix, conf)
        stderr = (prefix / "logs" / "stderr.log").open("ab")
        try:
            proc = subprocess.Popen(
                [nginx_bin, "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr"],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        finally:
            stderr.close()
    except BaseException:
        if owns_prefix:
            shutil.rmtree(prefix, ignore_errors=True)
        raise
    edge = EdgeProcess(params=params, prefix=prefix, conf=conf, proc=proc, owns_prefix=owns_prefix)
    edge.wait_ready(options.ready_timeout_s)
    logger.info(
        "edge %s up (nginx pid %d, prefix %s, storage %s)", edge.base_url, edge.pid, prefix, params.storage.kind
    )
    return edge


@contextlib.contextmanager
def run_edge(options: EdgeOptions) -> Iterator[EdgeProcess]:
    edge = start_edge(options)
    try:
        yield edge
    finally:
        edge.stop()
