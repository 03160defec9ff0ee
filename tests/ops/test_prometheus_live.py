"""A real Prometheus scrapes a real origin, edge and edge exporters during a short broadcast:

- every expression of the dashboard, and every metric the alert rules name, returns data;
- SpillwayRoomStalled fires when the transcoder is SIGSTOPped (filler off), and resolves once the room ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import m3u8
import pytest
import yaml

from origin.contract import layout
from origin.edge.exporter import run_exporters
from origin.edge.nginx_process import EdgeOptions, EdgeProcess, run_edge
from origin.ops.dashboard import expressions
from tests.support.hls_check import wait_for
from tests.support.net import free_port
from tests.support.origin_server import origin_server
from tests.support.prometheus import PrometheusServer, prometheus
from tests.support.transcoder_proc import transcoder

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "ops" / "prometheus" / "spillway.rules.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "dashboards" / "spillway.json"
ROOM = "opsroom"
TOKEN = "ops-ingest-token-0123456789abcdef"
METRIC_NAME = re.compile(r"\b((?:spillway|nginx)_[a-z0-9_]+|up)\b(?!\s*\()")

pytestmark = pytest.mark.skipif(
    not (shutil.which("prometheus") and shutil.which("prometheus-nginx-exporter")),
    reason="prometheus and prometheus-nginx-exporter (Debian) are needed",
)


def rule_metric_names() -> set[str]:
    doc = yaml.safe_load(RULES.read_text())
    names: set[str] = set()
    for group in doc["groups"]:
        for rule in group["rules"]:
            names |= set(METRIC_NAME.findall(rule["expr"]))
    return names


class Listener(threading.Thread):
    """A player through the edge: the master once, then the media playlist and its newest segment every 0.5 s."""

    def __init__(self, edge: EdgeProcess) -> None:
        super().__init__(daemon=True)
        self.edge = edge
        self.stop = threading.Event()
        self.segments = 0

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            master = m3u8.loads(client.get(f"{self.edge.base_url}/{layout.master_playlist(ROOM)}").text)
            media_url = f"{self.edge.base_url}/rooms/{ROOM}/{master.playlists[0].uri}"
            for _ in range(600):  # bounded: 5 minutes at most
                if self.stop.wait(0.5):
                    return
                with contextlib.suppress(httpx.HTTPError):
                    media = m3u8.loads(client.get(media_url).text)
                    if media.segments:
                        url = f"{media_url.rsplit('/', 1)[0]}/{media.segments[-1].uri}"
                        self.segments += client.get(url).status_code == 200


@pytest.fixture
def stack() -> Iterator[tuple[str, EdgeProcess, PrometheusServer]]:
    env = {"SPILLWAY_FILL_GAPS": "false"}
    with origin_server(workers=2, env=env) as origin, run_edge(EdgeOptions(origin_url=origin.base_url)) as edge:
        origin.create_room(ROOM, ingest_token=TOKEN, realtime_cap=1)
        log_port, nginx_port = free_port(), free_port()
        with run_exporters(log_dir=edge.log_dir, stub_status_url=edge.stub_status_url, log_metrics_port=log_port,
                           nginx_exporter_port=nginx_port):  # fmt: skip
            jobs = {"spillway-origin": origin.base_url.removeprefix("http://"),
                    "spillway-edge": f"127.0.0.1:{log_port}", "nginx": f"127.0.0.1:{nginx_port}"}  # fmt: skip
            with prometheus(jobs=jobs, rule_files=(RULES,)) as prom:
                yield origin.base_url, edge, prom


def test_dashboard_and_rules_have_data_and_a_stalled_room_alerts(
    stack: tuple[str, EdgeProcess, PrometheusServer],
) -> None:
    origin_url, edge, prom = stack
    with transcoder(origin=origin_url, room=ROOM, token=TOKEN, segment_seconds=1.0) as tx:
        wait_for(lambda: httpx.get(f"{edge.base_url}/{layout.master_playlist(ROOM)}").status_code == 200,
                 timeout_s=30, what="the room's master playlist")  # fmt: skip
        player = Listener(edge)
        player.start()
        answers = [httpx.post(f"{origin_url}/v1/rooms/{ROOM}/listeners").json()["mode"] for _ in range(2)]
        assert answers == ["realtime", "hls"]  # cap 1: a seat, then HLS
        wait_for(lambda: bool(prom.query(f'rate(spillway_room_segments_published_total{{room="{ROOM}"}}[10s]) > 0'))
                 and bool(prom.query("rate(spillway_edge_upstream_requests_total[10s]) > 0")),
                 timeout_s=30, what="Prometheus to see the broadcast and the edge", interval_s=0.5)  # fmt: skip
        assert prom.targets_up() == {"spillway-origin": "up", "spillway-edge": "up", "nginx": "up"}
        assert player.segments > 0
        joins = {r["metric"]["answer"] + "/" + r["metric"]["reason"]: float(r["value"][1])  # type: ignore[index]
                 for r in prom.query("sum by (answer, reason) (spillway_joins_total) > 0")}  # fmt: skip
        assert joins == {"seat/granted": 1.0, "hls/full": 1.0}
        seats = prom.query(f'spillway_room_seats_taken{{room="{ROOM}"}}')
        assert float(seats[0]["value"][1]) == 1.0  # type: ignore[index]

        missing = [name for name in sorted(rule_metric_names()) if not prom.query(f"group({name})")]
        assert missing == [], f"rules name metrics nobody exports: {missing}"
        empty = []
        for expr in expressions(json.loads(DASHBOARD.read_text())):
            concrete = expr.replace("$room", ROOM).replace("$__rate_interval", "15s")
            if not prom.query(concrete):
                empty.append(concrete)
        assert empty == [], f"dashboard panels without data: {empty}"
        assert prom.alerts("SpillwayRoomStalled") == [] or all(
            a["state"] == "pending" for a in prom.alerts("SpillwayRoomStalled"))  # fmt: skip

        # The source freezes: ffmpeg (in a process group of its own) and its supervisor are stopped; with
        # filler off, the live edge stops.
        frozen = [tx.ffmpeg_pid(), tx.proc.pid]
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            wait_for(lambda: any(a["state"] == "firing" and a["labels"]["room"] == ROOM
                                 for a in prom.alerts("SpillwayRoomStalled")),
                     timeout_s=45, what="SpillwayRoomStalled to fire", interval_s=0.5)  # fmt: skip
            fired_after_s = time.monotonic() - stopped
            alert = prom.alerts("SpillwayRoomStalled")[0]
            assert alert["labels"]["severity"] == "critical"
            assert 10 <= fired_after_s < 20, fired_after_s  # 2 s stall + `for: 10s`, + scrape and evaluation lag
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        r = httpx.post(f"{origin_url}/v1/rooms/{ROOM}/end", headers={"Authorization": "Bearer test-admin-token"})
        assert r.status_code == 200
        wait_for(lambda: prom.alerts("SpillwayRoomStalled") == [], timeout_s=30,
                 what="SpillwayRoomStalled to resolve once the room ended", interval_s=0.5)  # fmt: skip
        wait_for(lambda: bool(prom.query(f'spillway_room_state{{room="{ROOM}",state="ended"}}')), timeout_s=30,
                 what="the room's end in Prometheus", interval_s=0.5)  # fmt: skip
        player.stop.set()
        player.join(timeout=10)
    print(f"SpillwayRoomStalled fired {fired_after_s:.1f} s after SIGSTOP")
