"""A real Prometheus (Debian `prometheus`) on a free 127.0.0.1 port, scraping given targets every second."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from tests.support.net import free_port
from tests.support.process import stop


@dataclass(kw_only=True)
class PrometheusServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def query(self, expr: str) -> list[dict[str, object]]:
        r = httpx.get(f"{self.base_url}/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", f"{expr}: {r.text[:500]}"
        result = body["data"]["result"]
        assert isinstance(result, list)
        return result

    def alerts(self, name: str) -> list[dict[str, object]]:
        """Active alerts (pending or firing) named `name`."""
        body = httpx.get(f"{self.base_url}/api/v1/alerts", timeout=10).json()
        return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == name]

    def targets_up(self) -> dict[str, str]:
        body = httpx.get(f"{self.base_url}/api/v1/targets", timeout=10).json()
        return {t["labels"]["job"]: t["health"] for t in body["data"]["activeTargets"]}

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""


@contextlib.contextmanager
def prometheus(*, jobs: Mapping[str, str], rule_files: tuple[Path, ...] = (), interval_s: float = 1.0,
               startup_timeout_s: float = 30.0) -> Iterator[PrometheusServer]:  # fmt: skip
    """`jobs`: job name -> host:port (scraped at /metrics)."""
    binary = shutil.which("prometheus")
    assert binary is not None, "prometheus missing (Debian package prometheus; `make test` installs it)"
    with tempfile.TemporaryDirectory(prefix="spillway-prometheus-") as tmp:
        config = {
            "global": {"scrape_interval": f"{interval_s:g}s", "evaluation_interval": f"{interval_s:g}s",
                       "scrape_timeout": f"{interval_s:g}s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}
                               for job, target in jobs.items()],
        }  # fmt: skip
        conf = Path(tmp) / "prometheus.yml"
        conf.write_text(yaml.safe_dump(config))
        port = free_port()
        log_path = Path(tmp) / "prometheus.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [binary, f"--config.file={conf}", f"--storage.tsdb.path={tmp}/data",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        server = PrometheusServer(base_url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
        try:
            deadline = time.monotonic() + startup_timeout_s
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"prometheus exited:\n{server.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{server.base_url}/-/ready", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"prometheus not ready:\n{server.log_tail()}")
                time.sleep(0.1)
            yield server
        finally:
            stop(process, timeout_s=15)
