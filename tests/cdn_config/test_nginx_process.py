"""Starting and stopping a real nginx edge: temp prefix, readiness, clean stop, startup failures."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx
import pytest

from origin.edge.errors import EdgeProcessError
from origin.edge.nginx_process import EdgeOptions, run_edge, start_edge
from tests.cdn_config.upstream import CountingStore


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_edge_starts_serves_and_cleans_up(counting_store: CountingStore) -> None:
    with run_edge(EdgeOptions(origin_url=counting_store.url)) as edge:
        assert httpx.get(f"{edge.base_url}/_edge/healthz", timeout=5).text == "ok\n"
        assert (edge.prefix / "conf" / "edge.conf").is_file()
        before = edge.status().requests
        for _ in range(3):
            httpx.get(f"{edge.base_url}/healthz", timeout=5)
        assert edge.status().requests >= before + 3
        assert [e.uri for e in edge.upstream_log()][-3:] == ["/healthz"] * 3
        prefix, pid = edge.prefix, edge.pid
    assert not prefix.exists()
    assert edge.proc.poll() is not None
    assert not _group_alive(pid)  # no worker outlived the master
    edge.stop()  # idempotent


def test_edge_that_cannot_bind_fails_with_nginx_message(counting_store: CountingStore) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EdgeProcessError, match="Address already in use") as info:
            start_edge(EdgeOptions(origin_url=counting_store.url, listen_port=port, ready_timeout_s=5))
    assert info.value.exit_code is not None


def test_caller_owned_prefix_is_kept(tmp_path: Path, counting_store: CountingStore) -> None:
    prefix = tmp_path / "edge"  # under pytest's 0700 dir: as root, workers keep root instead of nobody
    with run_edge(EdgeOptions(origin_url=counting_store.url, prefix_dir=prefix)) as edge:
        assert httpx.get(f"{edge.base_url}/_edge/healthz", timeout=5).status_code == 200
    assert (prefix / "conf" / "edge.conf").is_file()
    assert (prefix / "logs" / "upstream.log").exists()
