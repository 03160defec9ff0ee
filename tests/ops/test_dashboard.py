"""The Grafana dashboard: the committed JSON is what origin/ops/dashboard.py makes, and it is well formed."""

from __future__ import annotations

import json
from pathlib import Path

from origin.ops.dashboard import dashboard, expressions

JSON = Path(__file__).resolve().parents[2] / "ops" / "grafana" / "dashboards" / "spillway.json"


def test_committed_dashboard_is_the_generated_one() -> None:
    committed = json.loads(JSON.read_text())
    assert committed == json.loads(json.dumps(dashboard())), (
        "regenerate: .venv/bin/python -m origin.ops.dashboard > ops/grafana/dashboards/spillway.json"
    )


def test_panels_are_well_formed_for_provisioning() -> None:
    doc = json.loads(JSON.read_text())
    assert doc["uid"] == "spillway" and "id" not in doc  # provisioning assigns the numeric id
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["room"]["includeAll"]
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in doc["panels"]:
        grid = p["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, p["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps another panel"
                cells.add((x, y))
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs))
    exprs = expressions(doc)
    assert len(exprs) >= 30
    for needed in ("spillway_room_live_edge_timestamp_seconds", "spillway_publish_latency_seconds_bucket",
                   "spillway_room_retry_backlog", "spillway_room_seats_taken", "spillway_room_seats_cap",
                   "spillway_joins_total", "spillway_edge_upstream_requests_total", "nginx_http_requests_total",
                   "spillway_room_live_edge_pdt_seconds", "spillway_segments_published_total"):  # fmt: skip
        assert any(needed in e for e in exprs), needed
