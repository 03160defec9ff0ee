"""The edge's metrics for Prometheus: its upstream log as counters, and nginx's stub_status via Debian's
`prometheus-nginx-exporter`.

stub_status (connections, `nginx_http_requests_total`) says how busy the edge is but not what reached
storage; `logs/upstream.log` (one JSON line per request that went upstream, always written) does. So:

    spillway_edge_upstream_requests_total{kind, status}   kind: playlist status segment api page health other
                                                           status: 2xx 3xx 4xx 5xx error (no upstream answer)
    spillway_edge_log_lines_skipped_total                  unparseable lines
    hit ratio = 1 - rate(spillway_edge_upstream_requests_total) / rate(nginx_http_requests_total)

Label values are fixed sets (never a path or a room), so the edge's series stay ~40 whatever the traffic.
`EdgeLogCollector` reads what was appended to the log since the last scrape (pure parsing in `classify`
and `status_class`); `serve_log_metrics` serves it; `NginxExporter` runs the Debian exporter against the
edge's loopback stub_status server.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_wsgi_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from origin.edge.errors import EdgeError, EdgeProcessError
from origin.edge.logs import parse_log_line

logger = logging.getLogger(__name__)

KINDS = ("playlist", "status", "segment", "api", "page", "health", "other")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error")
NGINX_EXPORTER = "prometheus-nginx-exporter"
READ_LIMIT = 8 << 20  # bytes read per scrape at most; the rest is read at the next scrape


def classify(uri: str) -> str:
    """What a request was for, from its path (pure)."""
    if uri.startswith("/rooms/"):
        if uri.endswith(".m3u8"):
            return "playlist"
        return "status" if uri.endswith("/status.json") else "segment"
    if uri.startswith("/v1/"):
        return "api"
    if uri.startswith(("/embed/", "/oembed", "/static/")):
        return "page"
    return "health" if uri == "/healthz" else "other"


def status_class(upstream_status: str) -> str:
    """`$upstream_status` → 2xx…5xx or error. nginx lists every upstream tried ("502, 200", "504 : 200"): the
    last one answered the request; "-" or nothing means no upstream answered (connect failure, timeout)."""
    last = upstream_status.replace(":", ",").split(",")[-1].strip()
    if len(last) == 3 and last.isdigit() and last[0] in "2345":
        return f"{last[0]}xx"
    return "error"


class LogFollower:
    """Complete lines appended to a file since the last call; starts over when the file is replaced or cut
    (a new inode, a smaller size, or different first bytes: inode numbers are reused)."""

    HEAD_BYTES = 64

    def __init__(self, path: Path) -> None:
        self.path = path
        self._inode: int | None = None
        self._head = b""
        self._offset = 0

    def lines(self) -> list[str]:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return []
        with f:
            st = os.fstat(f.fileno())
            head = f.read(min(self.HEAD_BYTES, st.st_size))
            if st.st_ino != self._inode or st.st_size < self._offset or not head.startswith(self._head):
                self._inode, self._offset = st.st_ino, 0
            self._head = head if self._offset == 0 or len(head) > len(self._head) else self._head
            if st.st_size == self._offset:
                return []
            f.seek(self._offset)
            chunk = f.read(min(READ_LIMIT, st.st_size - self._offset))
        end = chunk.rfind(b"\n")
        if end < 0:
            return []  # nginx is mid-line
        self._offset += end + 1
        return chunk[: end + 1].decode(errors="replace").splitlines()


class EdgeLogCollector(Collector):
    """Counters folded from logs/upstream.log at each scrape. Thread-safe (scrapes may overlap)."""

    def __init__(self, log_dir: Path) -> None:
        self.follower = LogFollower(Path(log_dir) / "upstream.log")
        self.counts: Counter[tuple[str, str]] = Counter({(k, s): 0 for k in KINDS for s in STATUS_CLASSES})
        self.skipped = 0
        self._lock = threading.Lock()

    def update(self) -> None:
        with self._lock:
            for line in self.follower.lines():
                if not line.strip():
                    continue
                try:
                    entry = parse_log_line(line)
                except EdgeError:
                    self.skipped += 1
                    continue
                self.counts[(classify(entry.uri), status_class(entry.upstream_status))] += 1

    def collect(self) -> Iterator[Metric]:
        self.update()
        with self._lock:
            requests = CounterMetricFamily("spillway_edge_upstream_requests",
                                           "Requests the edge sent to storage or the origin", labels=["kind", "status"])
            for (kind, status), n in sorted(self.counts.items()):
                requests.add_metric([kind, status], n)
            skipped = CounterMetricFamily("spillway_edge_log_lines_skipped", "Unparseable upstream log lines")
            skipped.add_metric([], self.skipped)
        yield requests
        yield skipped


def serve_log_metrics(log_dir: Path, *, host: str = "127.0.0.1", port: int) -> tuple[WSGIServer, threading.Thread]:
    """Serve `/metrics` for the edge whose logs are in `log_dir` (a daemon thread); `server.shutdown()` stops."""
    registry = CollectorRegistry()
    registry.register(EdgeLogCollector(log_dir))
    return start_wsgi_server(port, addr=host, registry=registry)


def find_nginx_exporter() -> str:
    found = shutil.which(NGINX_EXPORTER) or ("/usr/bin/" + NGINX_EXPORTER if os.access(
        "/usr/bin/" + NGINX_EXPORTER, os.X_OK) else None)  # fmt: skip
    if found is None:
        raise EdgeProcessError(f"{NGINX_EXPORTER} not found (Debian: apt-get install {NGINX_EXPORTER})")
    return found


def nginx_exporter_argv(binary: str, *, stub_status_url: str, host: str, port: int) -> list[str]:
    """The Debian exporter's command line (pure; flags as in its 0.11 `--help`)."""
    return [binary, "-nginx.scrape-uri", stub_status_url, "-web.listen-address", f"{host}:{port}",
            "-nginx.retries", "10", "-nginx.retry-interval", "500ms", "-nginx.timeout", "2s"]  # fmt: skip


class NginxExporter:
    """prometheus-nginx-exporter as a child process, serving `http://{host}:{port}/metrics`."""

    def __init__(self, *, stub_status_url: str, host: str = "127.0.0.1", port: int, log_path: Path) -> None:
        self.host, self.port, self.log_path = host, port, log_path
        self.argv = nginx_exporter_argv(find_nginx_exporter(), stub_status_url=stub_status_url, host=host, port=port)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def start(self, ready_timeout_s: float = 10.0) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + ready_timeout_s
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
                raise EdgeProcessError(f"{NGINX_EXPORTER} not ready on {self.url}", stderr_tail=tail)
            time.sleep(0.05)
        logger.info("%s on %s (pid %d)", NGINX_EXPORTER, self.url, self.proc.pid)

    def _answers(self) -> bool:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=1)
        try:
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            return resp.status == 200 and b"nginx_up 1" in resp.read()
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def run_exporters(*, log_dir: Path, stub_status_url: str, log_metrics_port: int, nginx_exporter_port: int | None,
                  host: str = "127.0.0.1") -> Iterator[tuple[str, str | None]]:  # fmt: skip
    """The log exporter (this process) and, when a port is given, the nginx exporter (a child). Yields their
    metrics URLs."""
    server, _thread = serve_log_metrics(log_dir, host=host, port=log_metrics_port)
    exporter = None
    try:
        if nginx_exporter_port is not None:
            exporter = NginxExporter(stub_status_url=stub_status_url, host=host, port=nginx_exporter_port,
                                     log_path=Path(log_dir) / "nginx-exporter.log")  # fmt: skip
            exporter.start()
        yield f"http://{host}:{log_metrics_port}/metrics", exporter.url if exporter else None
    finally:
        if exporter is not None:
            exporter.stop()
        server.shutdown()
        server.server_close()
