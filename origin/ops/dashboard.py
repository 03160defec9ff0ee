"""The Grafana dashboard (ops/grafana/dashboards/spillway.json) as data: the fleet, then the rooms chosen in
the `room` variable. Pure; `python -m origin.ops.dashboard > ops/grafana/dashboards/spillway.json` writes it
(tests/ops/test_dashboard.py fails when the committed file differs, and tests/ops/test_prometheus_live.py
runs every expression against a real Prometheus scraping a real origin and edge).

Listener-side lag is estimated: PROGRAM-DATE-TIME follows capture time, so `time() - edge PDT` is how far the
newest published audio is behind real time, and players sit HOLD_BACK_SEGMENTS segments behind that edge
(hls.js's default liveSyncDurationCount, RFC 8216 §6.3.3). Players do not report their own latency.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from origin.admission.decision import HOLD_BACK_SEGMENTS

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
ROOM = 'room=~"$room"'
RATE = "$__rate_interval"
STALLED = ('(time() - spillway_room_live_edge_timestamp_seconds) > 2 * spillway_room_segment_seconds'
           ' and on (instance, room) spillway_room_state{state="live"} == 1')  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Panel:
    title: str
    exprs: tuple[tuple[str, str], ...]  # (expression, legend)
    kind: str = "timeseries"  # or "stat", "table"
    unit: str = "short"
    width: int = 8
    description: str = ""
    thresholds: tuple[tuple[float, str], ...] = field(default_factory=tuple)  # (from value, colour)


FLEET = (
    Panel(title="Rooms live", kind="stat", width=4, exprs=(('sum(spillway_rooms{state="live"})', "live"),)),
    Panel(title="Rooms stalled", kind="stat", width=4, thresholds=((1, "red"),),
          description="Live rooms whose edge has not advanced for 2 segment lengths (SpillwayRoomStalled).",
          exprs=((f"count({STALLED}) or vector(0)", "stalled"),)),
    Panel(title="Segments/s", width=8, unit="ops", exprs=(
        (f"sum(rate(spillway_segments_received_total[{RATE}]))", "received"),
        (f"sum(rate(spillway_segments_published_total[{RATE}]))", "published"),
        (f"sum(rate(spillway_filler_segments_total[{RATE}]))", "filler"),
    )),
    Panel(title="Publish latency", width=8, unit="s", description="Segment received → playlist naming it stored.",
          exprs=tuple((f"histogram_quantile({q}, sum by (le) (rate(spillway_publish_latency_seconds_bucket[{RATE}])))",
                       f"p{round(q * 100)}") for q in (0.5, 0.99))),
    Panel(title="Storage: retry backlog and errors", width=8, exprs=(
        ("sum(spillway_room_retry_backlog)", "objects waiting"),
        (f"sum by (backend, op) (rate(spillway_storage_errors_total[{RATE}]))", "{{backend}} {{op}} errors/s"),
    )),
    Panel(title="Seats taken vs cap", width=8, exprs=(
        ("sum(spillway_room_seats_taken)", "taken"), ("sum(spillway_room_seats_cap)", "cap"),
        ("sum(spillway_room_hls_listeners_recent)", "HLS answers/min"),
    )),
    Panel(title="Joins/s by answer", width=8, unit="reqps",
          exprs=((f"sum by (answer, reason) (rate(spillway_joins_total[{RATE}]))", "{{answer}} {{reason}}"),)),
    Panel(title="Edge hit ratio", width=8, unit="percentunit",
          description="Client requests the edge answered without an upstream request.",
          exprs=((f"1 - sum(rate(spillway_edge_upstream_requests_total[{RATE}]))"
                  f" / sum(rate(nginx_http_requests_total[{RATE}]))", "hit ratio"),)),
    Panel(title="Edge requests/s", width=8, unit="reqps", exprs=(
        (f"sum(rate(nginx_http_requests_total[{RATE}]))", "from clients"),
        (f"sum by (kind) (rate(spillway_edge_upstream_requests_total[{RATE}]))", "upstream {{kind}}"),
        (f'sum(rate(spillway_edge_upstream_requests_total{{status=~"5xx|error"}}[{RATE}]))', "upstream errors"),
        ("sum(nginx_connections_active)", "connections"),
    )),
    Panel(title="Listener-side lag (worst room)", width=8, unit="s",
          description="Estimated: newest published audio behind real time, plus the players' hold-back.",
          exprs=((f"max(time() - spillway_room_live_edge_pdt_seconds"
                  f" + {HOLD_BACK_SEGMENTS} * spillway_room_segment_seconds)", "lag"),)),
    Panel(title="Admission and status.json", width=8, exprs=(
        ("min by (backend) (spillway_admission_backend_up)", "{{backend}} up"),
        ("max(spillway_status_pending_age_seconds)", "oldest unpublished change (s)"),
        ("time() - min(spillway_status_flush_timestamp_seconds)", "since the last publisher run (s)"),
    )),
)  # fmt: skip

ROOMS = (
    Panel(title="Rooms", kind="table", width=24, exprs=(
        (f"spillway_room_state{{{ROOM}}}", "state"),
        (f"time() - spillway_room_live_edge_timestamp_seconds{{{ROOM}}}", "edge age"),
        (f"spillway_room_seats_taken{{{ROOM}}}", "seats"),
    )),
    Panel(title="Live edge age", width=8, unit="s", thresholds=((2, "red"),),
          description="Since the live playlists last advanced; SpillwayRoomStalled past 2 segment lengths.",
          exprs=((f"time() - spillway_room_live_edge_timestamp_seconds{{{ROOM}}}", "{{room}}"),
                 (f"2 * spillway_room_segment_seconds{{{ROOM}}}", "{{room}} stall threshold"))),
    Panel(title="Segments/s per room", width=8, unit="ops",
          exprs=((f"rate(spillway_room_segments_published_total{{{ROOM}}}[{RATE}])", "{{room}}"),)),
    Panel(title="Publish latency p99 per room", width=8, unit="s",
          exprs=((f"spillway_room_publish_latency_p99_seconds{{{ROOM}}}", "{{room}}"),)),
    Panel(title="Retry backlog per room", width=8,
          exprs=((f"spillway_room_retry_backlog{{{ROOM}}}", "{{room}}"),)),
    Panel(title="Seats taken vs cap per room", width=8, exprs=(
        (f"spillway_room_seats_taken{{{ROOM}}}", "{{room}} taken"),
        (f"spillway_room_seats_cap{{{ROOM}}}", "{{room}} cap"),
        (f"spillway_room_hls_listeners_recent{{{ROOM}}}", "{{room}} HLS/min"),
    )),
    Panel(title="Listener-side lag per room", width=8, unit="s", exprs=((
        f"time() - spillway_room_live_edge_pdt_seconds{{{ROOM}}}"
        f" + {HOLD_BACK_SEGMENTS} * spillway_room_segment_seconds{{{ROOM}}}", "{{room}}"),)),
    Panel(title="Source and sessions", width=12, exprs=(
        (f"spillway_room_source_connected{{{ROOM}}}", "{{room}} source connected"),
        (f"increase(spillway_room_sessions_total{{{ROOM}}}[5m])", "{{room}} sessions in 5 min"),
        (f"spillway_room_fillers_in_tail{{{ROOM}}}", "{{room}} filler in tail"),
    )),
)  # fmt: skip


def _panel(p: Panel, pid: int, x: int, y: int) -> dict[str, object]:
    steps: list[dict[str, object]] = [{"color": "green", "value": None}]
    steps += [{"color": colour, "value": v} for v, colour in p.thresholds]
    doc: dict[str, object] = {
        "id": pid, "type": p.kind, "title": p.title, "description": p.description, "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": p.width, "h": 3 if p.kind == "stat" else 8},
        "fieldConfig": {"defaults": {"unit": p.unit, "thresholds": {"mode": "absolute", "steps": steps}},
                        "overrides": []},
        "options": {},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
                     "instant": p.kind == "table", "range": p.kind != "table"}
                    for i, (expr, legend) in enumerate(p.exprs)],
    }  # fmt: skip
    if p.kind == "table":
        doc["transformations"] = [{"id": "merge", "options": {}}]
    return doc


def _rows(title: str, panels: tuple[Panel, ...], pid: int, y: int) -> tuple[list[dict[str, object]], int, int]:
    out: list[dict[str, object]] = [{"id": pid, "type": "row", "title": title, "collapsed": False, "panels": [],
                                     "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}}]  # fmt: skip
    pid, y, x, height = pid + 1, y + 1, 0, 0
    for p in panels:
        if x + p.width > 24:
            x, y, height = 0, y + height, 0
        panel = _panel(p, pid, x, y)
        out.append(panel)
        grid = panel["gridPos"]
        assert isinstance(grid, dict)
        height = max(height, int(grid["h"]))
        pid, x = pid + 1, x + p.width
    return out, pid, y + height


def dashboard() -> dict[str, object]:
    fleet, pid, y = _rows("Fleet", FLEET, 1, 0)
    rooms, _, _ = _rows("Rooms ($room)", ROOMS, pid, y)
    return {
        "uid": "spillway", "title": "Spillway", "tags": ["spillway"], "timezone": "browser", "editable": True,
        "schemaVersion": 39, "version": 1, "refresh": "10s", "time": {"from": "now-1h", "to": "now"},
        "graphTooltip": 1, "annotations": {"list": []}, "links": [],
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0},
            {"name": "room", "label": "Room", "type": "query", "datasource": DATASOURCE,
             "query": {"query": "label_values(spillway_room_state, room)", "refId": "rooms"},
             "definition": "label_values(spillway_room_state, room)", "refresh": 2, "multi": True,
             "includeAll": True, "allValue": ".*", "current": {}, "sort": 1, "hide": 0},
        ]},
        "panels": fleet + rooms,
    }  # fmt: skip


def expressions(doc: dict[str, object]) -> list[str]:
    """Every Prometheus expression of a dashboard document (its panels' targets)."""
    panels = doc.get("panels")
    assert isinstance(panels, list)
    return [str(t["expr"]) for p in panels for t in p.get("targets", [])]


def main() -> int:
    json.dump(dashboard(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
