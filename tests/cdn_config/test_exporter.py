"""The edge's metrics: upstream.log folded into counters, and prometheus-nginx-exporter on stub_status."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from origin.contract.cache_policy import ObjectKind, headers_for
from origin.edge.exporter import (
    KINDS,
    STATUS_CLASSES,
    EdgeLogCollector,
    LogFollower,
    classify,
    run_exporters,
    status_class,
)
from origin.edge.nginx_process import EdgeOptions, run_edge
from tests.cdn_config.conftest import fresh_room
from tests.cdn_config.upstream import CountingStore
from tests.support.net import free_port


@pytest.mark.parametrize(("uri", "kind"), [
    ("/rooms/r/live/a48.m3u8", "playlist"), ("/rooms/r/master.m3u8", "playlist"), ("/rooms/r/status.json", "status"),
    ("/rooms/r/media/s/a48/000001.m4s", "segment"), ("/rooms/r/replay.m4a", "segment"),
    ("/v1/rooms/r/listeners", "api"), ("/embed/r", "page"), ("/oembed", "page"), ("/static/player/p.js", "page"),
    ("/healthz", "health"), ("/x", "other"),
])  # fmt: skip
def test_classify(uri: str, kind: str) -> None:
    assert classify(uri) == kind


@pytest.mark.parametrize(("raw", "cls"), [("200", "2xx"), ("304", "3xx"), ("404", "4xx"), ("503", "5xx"),
                                          ("502, 200", "2xx"), ("504 : 502", "5xx"), ("-", "error"), ("", "error"),
                                          ("999", "error")])  # fmt: skip
def test_status_class_takes_the_last_upstream_tried(raw: str, cls: str) -> None:
    assert status_class(raw) == cls


def test_follower_reads_complete_lines_and_starts_over_on_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "upstream.log"
    follower = LogFollower(path)
    assert follower.lines() == []
    path.write_text("one\ntw")
    assert follower.lines() == ["one"]
    with path.open("a") as f:
        f.write("o\n")
    assert follower.lines() == ["two"]
    path.write_text("three\n")  # cut (rotated by copytruncate)
    assert follower.lines() == ["three"]
    path.unlink()
    path.write_text("a much longer first line\n")  # replaced
    assert follower.lines() == ["a much longer first line"]


def test_collector_skips_garbage_and_counts_fixed_label_sets_only(tmp_path: Path) -> None:
    (tmp_path / "upstream.log").write_text('not json\n{"time":"t","remote_addr":"a","method":"GET",'
                                           '"uri":"/rooms/x/a?secret","args":"","status":502,"bytes":0,"cache":"MISS",'
                                           '"upstream_addr":"1.2.3.4:80","upstream_status":"-","request_time":0.1}\n')
    collector = EdgeLogCollector(tmp_path)
    collector.update()
    assert collector.skipped == 1 and collector.counts[("segment", "error")] == 1
    assert set(collector.counts) == {(k, s) for k in KINDS for s in STATUS_CLASSES}  # no path became a label


@pytest.mark.skipif(shutil.which("prometheus-nginx-exporter") is None, reason="Debian prometheus-nginx-exporter")
def test_exporters_on_a_real_edge() -> None:
    room = fresh_room("exporter")
    with CountingStore() as store, run_edge(EdgeOptions(origin_url=store.url)) as edge:
        store.put(f"rooms/{room}/live/a48.m3u8", b"#EXTM3U\n", headers_for(ObjectKind.LIVE_PLAYLIST))
        log_port, nginx_port = free_port(), free_port()
        with run_exporters(log_dir=edge.log_dir, stub_status_url=edge.stub_status_url, log_metrics_port=log_port,
                           nginx_exporter_port=nginx_port) as (log_url, nginx_url):  # fmt: skip
            for _ in range(5):  # one upstream request, four answered from the cache
                assert httpx.get(f"{edge.base_url}/rooms/{room}/live/a48.m3u8").status_code == 200
            assert httpx.get(f"{edge.base_url}/rooms/{room}/none.m4s").status_code == 404
            assert httpx.get(edge.base_url + "/_edge/status").status_code == 200  # the old page still answers
            text = httpx.get(log_url).text
            assert 'spillway_edge_upstream_requests_total{kind="playlist",status="2xx"} 1.0' in text
            assert 'spillway_edge_upstream_requests_total{kind="segment",status="4xx"} 1.0' in text
            assert nginx_url is not None
            nginx = httpx.get(nginx_url).text
            assert "nginx_up 1" in nginx
            requests = float(next(line.split()[1] for line in nginx.splitlines()
                                  if line.startswith("nginx_http_requests_total")))  # fmt: skip
            assert requests >= 7
        # stub_status is on a loopback server of its own, not on the listeners' port
        assert httpx.get(f"{edge.base_url}/stub_status").status_code == 404
        assert httpx.get(edge.stub_status_url).text.startswith("Active connections")
