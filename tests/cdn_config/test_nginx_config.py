"""The pure renderer: values are validated, placeholders and values match exactly, and the rendered
configs pass `nginx -t` (real nginx) for the origin read path and S3 over http and https."""

from __future__ import annotations

from pathlib import Path

import pytest

from origin.edge.errors import EdgeConfigError, EdgeError
from origin.edge.logs import parse_log_line, parse_stub_status
from origin.edge.nginx_config import (
    EdgeParams,
    StorageBackend,
    normalize_prefix,
    origin_storage,
    parse_upstream,
    placeholders,
    render_config,
    s3_regional_endpoint,
    s3_storage,
    template_values,
)
from origin.edge.nginx_process import TEMPLATE_PATH, check_config, find_nginx
from origin.errors import OriginError, ValidationError
from origin.storage.s3 import normalize_prefix as backend_normalize_prefix

ORIGIN = "http://127.0.0.1:8080"


def _params(storage: StorageBackend | None = None, **kw: object) -> EdgeParams:
    base: dict[str, object] = {
        "listen_port": 8081,
        "origin": parse_upstream(ORIGIN),
        "storage": storage or origin_storage(ORIGIN),
        "cache_dir": "/tmp/edge-cache",
    }
    base.update(kw)
    return EdgeParams(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def template() -> str:
    return TEMPLATE_PATH.read_text()


@pytest.mark.parametrize(
    "storage",
    [
        origin_storage(ORIGIN),
        s3_storage(endpoint_url="http://127.0.0.1:9000", bucket="media-bucket", prefix="live/edge"),
        s3_storage(endpoint_url="https://127.0.0.1:9443", bucket="media-bucket"),
    ],
    ids=["origin", "s3-http", "s3-https"],
)
def test_rendered_configs_pass_nginx_t(tmp_path: Path, template: str, storage: StorageBackend) -> None:
    for sub in ("logs", "tmp", "cache", "conf"):
        (tmp_path / sub).mkdir()
    conf = tmp_path / "conf" / "edge.conf"
    conf.write_text(render_config(template, _params(storage, cache_dir=str(tmp_path / "cache"),
                                                    allowed_origins=("https://news.example", "*"))))
    check_config(find_nginx(), tmp_path, conf)


def test_nginx_t_failure_carries_nginx_message(tmp_path: Path, template: str) -> None:
    (tmp_path / "logs").mkdir()
    conf = tmp_path / "edge.conf"
    conf.write_text(render_config(template, _params()).replace("keepalive 64;", "keepalive sixty-four;"))
    with pytest.raises(EdgeError, match="sixty-four"):
        check_config(find_nginx(), tmp_path, conf)


def test_every_placeholder_has_a_value_and_every_value_a_placeholder(template: str) -> None:
    assert placeholders(template) == set(template_values(_params()))
    rendered = render_config(template, _params())
    assert "{{" not in rendered and "}}" not in rendered


def test_render_rejects_unknown_and_unused_placeholders(template: str) -> None:
    with pytest.raises(EdgeConfigError, match="without a value"):
        render_config(template + "\n# {{ surprise }}\n", _params())
    with pytest.raises(EdgeConfigError, match="does not use"):
        render_config(template.replace("{{ worker_connections }}", "1024"), _params())


def test_storage_path_prefixes() -> None:
    assert origin_storage(ORIGIN).path_prefix == "/"
    assert s3_storage(endpoint_url=ORIGIN, bucket="b-1", prefix="").path_prefix == "/b-1/"
    assert s3_storage(endpoint_url=ORIGIN, bucket="b-1", prefix="/a/b/").path_prefix == "/b-1/a/b/"
    assert s3_regional_endpoint("eu-west-1") == "https://s3.eu-west-1.amazonaws.com"


@pytest.mark.parametrize("prefix", ["", "/", "live", "live/", "/a/b/", "a.b-c_d/e"])
def test_prefix_is_read_like_the_s3_backend_reads_it(prefix: str) -> None:
    assert normalize_prefix(prefix) == backend_normalize_prefix(prefix)


def test_upstream_urls() -> None:
    https = parse_upstream("https://s3.eu-west-1.amazonaws.com")
    assert (https.server, https.host_header) == ("s3.eu-west-1.amazonaws.com:443", "s3.eu-west-1.amazonaws.com")
    local = parse_upstream("http://127.0.0.1:9000/")
    assert (local.server, local.host_header) == ("127.0.0.1:9000", "127.0.0.1:9000")
    assert parse_upstream("http://[::1]:9000").server == "[::1]:9000"


@pytest.mark.parametrize(
    "url", ["ftp://x", "http://x/path", "http://x?q=1", "http://u:p@x", "http://x#f", "http://", "http://x:99999"]
)
def test_upstream_urls_that_are_not_a_bare_server_are_rejected(url: str) -> None:
    with pytest.raises(EdgeConfigError):
        parse_upstream(url)


@pytest.mark.parametrize(
    "bad",
    [
        {"allowed_origins": ("https://news.example; return 200",)},
        {"allowed_origins": ("https://news.example/path",)},
        {"allowed_origins": ("HTTPS://NEWS.EXAMPLE",)},
        {"cache_dir": "/tmp/a b"},
        {"cache_dir": "/tmp/a;b"},
        {"cache_dir": "relative/dir"},
        {"cache_dir": "/tmp/../etc"},
        {"listen_host": "127.0.0.1; x"},
        {"listen_port": 0},
        {"worker_user": ("nobody;", "nogroup")},
        {"worker_connections": 0},
        {"worker_connections": 4096, "worker_rlimit_nofile": 1024},
        {"storage_ca_file": "/etc/ssl/ca file.pem"},
    ],
)
def test_values_that_could_break_out_of_a_directive_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(EdgeConfigError):
        _params(**bad)


@pytest.mark.parametrize("bucket,prefix", [("Bad_Bucket", ""), ("b/x", ""), ("ok-bucket", "a/../b"),
                                           ("ok-bucket", "a b"), ("ok-bucket", "a;b")])
def test_bad_buckets_and_prefixes_are_rejected(bucket: str, prefix: str) -> None:
    with pytest.raises(EdgeConfigError):
        s3_storage(endpoint_url=ORIGIN, bucket=bucket, prefix=prefix)


def test_edge_errors_share_the_origin_root() -> None:
    assert issubclass(EdgeConfigError, OriginError)
    assert not issubclass(EdgeConfigError, ValidationError)  # not an HTTP 4xx


def test_cors_origins_render_as_an_exact_match_map() -> None:
    values = template_values(_params(allowed_origins=("https://a.example", "https://a.example", "http://b:3000")))
    lines = [line.strip() for line in values["cors_origin_map_entries"].splitlines()]
    assert lines == ['"https://a.example" $http_origin;', '"http://b:3000" $http_origin;']
    assert template_values(_params(allowed_origins=("*",)))["cors_origin_map_entries"].strip() == "~. $http_origin;"
    assert template_values(_params())["cors_origin_map_entries"].strip().startswith("#")


def test_worker_user_and_tls_directives() -> None:
    assert template_values(_params(worker_user=("nobody", "nogroup")))["worker_user_directive"] == (
        "user nobody nogroup;"
    )
    assert template_values(_params())["worker_user_directive"].startswith("#")
    https = template_values(_params(s3_storage(endpoint_url="https://s3.eu-west-1.amazonaws.com", bucket="b-1")))
    assert "proxy_ssl_verify on;" in https["storage_tls_directives"]
    assert "proxy_ssl_name s3.eu-west-1.amazonaws.com;" in https["storage_tls_directives"]
    assert https["storage_host_header"] == "s3.eu-west-1.amazonaws.com"
    assert https["storage_scheme"] == "https"


def test_log_and_stub_status_parsing() -> None:
    entry = parse_log_line(
        '{"time":"2026-11-26T09:00:00+00:00","remote_addr":"127.0.0.1","method":"GET",'
        '"uri":"/rooms/r/live/a64.m3u8","args":"x=1","status":200,"bytes":512,"cache":"EXPIRED",'
        '"upstream_addr":"127.0.0.1:9000","upstream_status":"200","request_time":0.004}'
    )
    assert (entry.uri, entry.status, entry.cache) == ("/rooms/r/live/a64.m3u8", 200, "EXPIRED")
    assert entry.went_upstream
    with pytest.raises(EdgeError):
        parse_log_line('{"time": 1}')
    status = parse_stub_status(
        "Active connections: 3 \nserver accepts handled requests\n 10 10 42 \nReading: 0 Writing: 1 Waiting: 2 \n"
    )
    assert (status.active, status.accepts, status.requests, status.waiting) == (3, 10, 42, 2)
