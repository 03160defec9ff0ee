"""Edge options from the origin's settings, and the `spillway edge render` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from origin.edge.errors import EdgeConfigError
from origin.edge.nginx_process import check_config, find_nginx
from origin.edge.options import (
    chosen_storage,
    edge_options_from_settings,
    origin_url_from_settings,
    storage_from_settings,
)
from origin.settings import Settings


def test_filesystem_storage_is_read_through_the_origin() -> None:
    settings = Settings(bind="0.0.0.0:8080", storage="filesystem")
    assert origin_url_from_settings(settings) == "http://127.0.0.1:8080"
    storage = storage_from_settings(settings)
    assert (storage.kind, storage.upstream.server, storage.path_prefix) == ("origin", "127.0.0.1:8080", "/")


def test_s3_storage_uses_region_endpoint_bucket_and_prefix() -> None:
    settings = Settings(storage="s3", s3_bucket="media-b", s3_prefix="spillway", s3_region="eu-west-1")
    storage = storage_from_settings(settings)
    assert storage.upstream.host_header == "s3.eu-west-1.amazonaws.com"
    assert storage.path_prefix == "/media-b/spillway/"
    local = storage_from_settings(Settings(storage="s3", s3_bucket="media-b", s3_endpoint_url="http://127.0.0.1:9000"))
    assert (local.upstream.server, local.path_prefix) == ("127.0.0.1:9000", "/media-b/")
    with pytest.raises(EdgeConfigError):
        storage_from_settings(Settings(storage="s3", s3_bucket="media-b"))
    options = edge_options_from_settings(settings, listen_port=8000, allowed_origins=("https://news.example",))
    assert options.storage == storage and options.listen_port == 8000


def test_named_storage_wins_over_the_settings() -> None:
    settings = Settings(bind="0.0.0.0:8080", storage="filesystem")
    s3 = chosen_storage(
        settings,
        origin_url="http://10.0.0.5:8080",
        s3_endpoint="http://127.0.0.1:9000",
        s3_bucket="media-b",
        s3_prefix="live",
    )
    assert (s3.kind, s3.upstream.server, s3.path_prefix) == ("s3", "127.0.0.1:9000", "/media-b/live/")
    origin = chosen_storage(settings, origin_url="http://10.0.0.5:8080")
    assert (origin.kind, origin.upstream.server) == ("origin", "10.0.0.5:8080")
    assert chosen_storage(settings) == storage_from_settings(settings)


def test_render_command_output_passes_nginx_t(tmp_path: Path) -> None:
    for sub in ("logs", "tmp", "cache"):
        (tmp_path / sub).mkdir()
    rendered = subprocess.run(
        [sys.executable, "-m", "origin.cli", "edge", "render", "--listen", "127.0.0.1:18000", "--cache-dir",
         str(tmp_path / "cache"), "--origin-url", "http://127.0.0.1:8080", "--allow-origin", "https://news.example"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    conf = tmp_path / "edge.conf"
    conf.write_text(rendered.stdout)
    check_config(find_nginx(), tmp_path, conf)
    assert '"https://news.example" $http_origin;' in rendered.stdout
