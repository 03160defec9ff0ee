"""The nginx edge config as data (pure): template text + typed parameters → config text.

The template (origin/edge/templates/edge.conf.template) holds the nginx logic; this module holds every value
that varies — listen address, upstreams, storage path, cache dir, CORS origins, process limits — and the
TTLs, taken from origin.contract.cache_policy (the only place they live). Each value is validated so that nothing a
caller passes can break out of its directive (no whitespace, quotes, `;`, `{`, `}` or `$`), and rendering
fails unless the template's placeholders and the values match exactly.

    storage = s3_storage(endpoint_url="https://s3.eu-west-1.amazonaws.com", bucket="b", prefix="live/")
    params = EdgeParams(listen_port=8081, origin=parse_upstream("http://127.0.0.1:8080"),
                        storage=storage, cache_dir="/var/cache/spillway-edge")
    text = render_config(template_text, params)

No I/O here: reading the template and running nginx live in origin/edge/nginx_process.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from origin.contract import cache_policy
from origin.edge.errors import EdgeConfigError

PLACEHOLDER_PATTERN = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")

_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_IPV6_LITERAL = re.compile(r"^\[[0-9A-Fa-f:.]+\]$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KEY_PART = re.compile(r"^[A-Za-z0-9._-]+$")
_EMBED_ORIGIN = re.compile(r"^https?://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?$")
_SYSTEM_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# An absolute path nginx reads as one token: no whitespace, quotes, braces, `;`, `$` or `#`.
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+@=,-]*$")

ANY_ORIGIN = "*"
ErrorLogLevel = Literal["debug", "info", "notice", "warn", "error", "crit"]
Scheme = Literal["http", "https"]
DEFAULT_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"  # Debian/Ubuntu ca-certificates bundle
# How long a blocking reload waits on the edge's cache lock before it looks again. nginx wakes the requests
# waiting on a lock by a timer (every 500 ms, or at proxy_cache_lock_timeout if sooner), never when the leader's
# answer lands: with an 8 s timeout a follower got its part 0-500 ms after the leader (1,000 pollers: p50 249,
# p99 495 ms). Just over a part (~213 ms at the default 0.2 s), a follower that asked right after the last part
# finds the next one cached when it looks; one that finds nothing (the part is late) asks the origin itself.
LL_LOCK_WAIT_MS = 250
# The same wait for a part object (from storage: a fetch of milliseconds): followers look again this soon.
PART_LOCK_WAIT_MS = 50
DEFAULT_STATUS_PORT = 8090  # stub_status server (loopback) read by prometheus-nginx-exporter


# Storage response headers a listener never sees: cookies, Vary (the edge sets its own), storage's CORS (the edge
# answers CORS), and S3's x-amz-* metadata.
STORAGE_HIDDEN_HEADERS = (
    "Set-Cookie",
    "Vary",
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Expose-Headers",
    "Access-Control-Max-Age",
    "Access-Control-Allow-Credentials",
    "x-amz-request-id",
    "x-amz-id-2",
    "x-amz-version-id",
    "x-amz-server-side-encryption",
    "x-amz-expiration",
    "x-amz-storage-class",
    "x-amz-replication-status",
    "x-amz-restore",
    "x-amz-delete-marker",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-checksum-type",
    "x-amz-website-redirect-location",
    "x-amz-bucket-region",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
    "x-amz-tagging-count",
    "x-amz-mp-parts-count",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-content-sha256",
    "x-amzn-requestid",
)


def _check_host(host: str, what: str) -> str:
    if not (_HOSTNAME.fullmatch(host) or _IPV6_LITERAL.fullmatch(host)):
        raise EdgeConfigError(f"invalid {what} host {host[:80]!r}")
    return host


def _check_port(port: int, what: str) -> int:
    if not 0 < port < 65536:
        raise EdgeConfigError(f"invalid {what} port {port}")
    return port


@dataclass(frozen=True, kw_only=True)
class Upstream:
    """An HTTP(S) server nginx proxies to: `scheme://host:port`, no path."""

    scheme: Scheme
    host: str
    port: int

    def __post_init__(self) -> None:
        if self.scheme not in ("http", "https"):
            raise EdgeConfigError(f"invalid upstream scheme {self.scheme!r}")
        _check_host(self.host, "upstream")
        _check_port(self.port, "upstream")

    @property
    def server(self) -> str:
        """`host:port` for an nginx `upstream { server ...; }` line."""
        return f"{self.host}:{self.port}"

    @property
    def host_header(self) -> str:
        """The Host header a client of this URL sends (port omitted when it is the scheme's default)."""
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else self.server


def parse_upstream(url: str) -> Upstream:
    """`http(s)://host[:port][/]` → Upstream. Paths, queries, fragments and credentials are rejected."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise EdgeConfigError(f"upstream URL {url[:120]!r} must be http:// or https://")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise EdgeConfigError(f"upstream URL {url[:120]!r} must be scheme://host[:port] only")
    if not parts.hostname:
        raise EdgeConfigError(f"upstream URL {url[:120]!r} has no host")
    try:
        port = parts.port
    except ValueError as exc:
        raise EdgeConfigError(f"upstream URL {url[:120]!r} has an invalid port") from exc
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    scheme: Scheme = "https" if parts.scheme == "https" else "http"
    return Upstream(scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80))


@dataclass(frozen=True, kw_only=True)
class StorageBackend:
    """Where the edge reads `/rooms/...`: `{upstream}{path_prefix}rooms/...`."""

    kind: Literal["origin", "s3"]
    upstream: Upstream
    path_prefix: str  # starts and ends with "/": "/" for the origin, "/{bucket}/{prefix}" for S3

    def __post_init__(self) -> None:
        if not (self.path_prefix.startswith("/") and self.path_prefix.endswith("/")):
            raise EdgeConfigError(f"storage path prefix {self.path_prefix!r} must start and end with '/'")
        inner = self.path_prefix.strip("/")
        if inner and not all(_KEY_PART.fullmatch(p) and p not in (".", "..") for p in inner.split("/")):
            raise EdgeConfigError(f"invalid storage path prefix {self.path_prefix[:120]!r}")


def origin_storage(origin_url: str) -> StorageBackend:
    """Filesystem storage, read through the origin's `GET /rooms/{path}` router."""
    return StorageBackend(kind="origin", upstream=parse_upstream(origin_url), path_prefix="/")


def normalize_prefix(prefix: str) -> str:
    """'' → ''; 'a/b', '/a/b/' → 'a/b/' — the same reading of SPILLWAY_S3_PREFIX as the S3 backend."""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    for part in stripped.split("/"):
        if not _KEY_PART.fullmatch(part) or part in (".", ".."):
            raise EdgeConfigError(f"invalid storage prefix {prefix[:120]!r}")
    return stripped + "/"


def s3_storage(*, endpoint_url: str, bucket: str, prefix: str = "") -> StorageBackend:
    """An S3 bucket addressed path-style: `/rooms/x` → `{endpoint}/{bucket}/{prefix}rooms/x`."""
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise EdgeConfigError(f"invalid S3 bucket name {bucket[:80]!r}")
    return StorageBackend(
        kind="s3", upstream=parse_upstream(endpoint_url), path_prefix=f"/{bucket}/{normalize_prefix(prefix)}"
    )


def s3_regional_endpoint(region: str) -> str:
    """AWS S3's regional endpoint URL (path-style requests work against it)."""
    if not re.fullmatch(r"[a-z]{2}(?:-[a-z]+)+-\d", region):
        raise EdgeConfigError(f"invalid AWS region {region!r}")
    return f"https://s3.{region}.amazonaws.com"


@dataclass(frozen=True, kw_only=True)
class EdgeParams:
    listen_host: str = "127.0.0.1"
    listen_port: int
    listen_backlog: int = 4096
    origin: Upstream  # the origin service: API paths (and storage when storage.kind == "origin")
    storage: StorageBackend
    cache_dir: str  # absolute; live/, media/ and api/ cache trees are created under it
    allowed_origins: tuple[str, ...] = ()  # embed origins that get CORS, e.g. ("https://news.example",)
    worker_processes: int | Literal["auto"] = "auto"
    worker_connections: int = 4096
    worker_rlimit_nofile: int = 16384
    worker_user: tuple[str, str] | None = None  # (user, group) for workers when the master runs as root
    log_every_request: bool = False  # logs/access.log; logs/upstream.log is always written
    error_log_level: ErrorLogLevel = "warn"
    live_cache_inactive_s: int = 20  # playlists nobody asked for this long are dropped (see README)
    live_cache_max_mb: int = 64
    media_cache_inactive_s: int = 3600
    media_cache_max_mb: int = 1024
    storage_ca_file: str = DEFAULT_CA_FILE  # verifies an https storage endpoint's certificate
    status_host: str = "127.0.0.1"  # stub_status for the metrics exporter: its own server, loopback
    status_port: int = DEFAULT_STATUS_PORT
    ll_lock_wait_ms: int = LL_LOCK_WAIT_MS  # just over the rooms' part duration (see LL_LOCK_WAIT_MS)

    def __post_init__(self) -> None:
        _check_host(self.listen_host, "listen")
        _check_port(self.listen_port, "listen")
        if self.status_host not in ("127.0.0.1", "::1", "[::1]", "localhost"):
            raise EdgeConfigError(f"status_host {self.status_host[:80]!r} must be a loopback address")
        _check_port(self.status_port, "status")
        if self.status_port == self.listen_port:
            raise EdgeConfigError("status_port must differ from listen_port")
        if not _SAFE_PATH.fullmatch(self.cache_dir) or "/../" in f"{self.cache_dir}/":
            raise EdgeConfigError(f"cache_dir {self.cache_dir[:120]!r} must be a plain absolute path")
        if not _SAFE_PATH.fullmatch(self.storage_ca_file):
            raise EdgeConfigError(f"storage_ca_file {self.storage_ca_file[:120]!r} must be a plain absolute path")
        for origin in self.allowed_origins:
            if origin != ANY_ORIGIN and not _EMBED_ORIGIN.fullmatch(origin):
                raise EdgeConfigError(
                    f"allowed origin {origin[:120]!r} must be '*' or scheme://host[:port] in lowercase"
                )
        if self.worker_processes != "auto" and not 0 < self.worker_processes <= 256:
            raise EdgeConfigError(f"worker_processes {self.worker_processes} out of range")
        if self.worker_user is not None and not all(_SYSTEM_NAME.fullmatch(n) for n in self.worker_user):
            raise EdgeConfigError(f"invalid worker user/group {self.worker_user!r}")
        for name in (
            "listen_backlog",
            "worker_connections",
            "worker_rlimit_nofile",
            "live_cache_inactive_s",
            "live_cache_max_mb",
            "media_cache_inactive_s",
            "media_cache_max_mb",
        ):
            if getattr(self, name) <= 0:
                raise EdgeConfigError(f"{name} must be positive")
        if not 20 <= self.ll_lock_wait_ms <= 3000:
            raise EdgeConfigError(f"ll_lock_wait_ms {self.ll_lock_wait_ms} out of range 20-3000")
        if self.worker_rlimit_nofile < self.worker_connections:
            # each proxied request holds a client and an upstream connection, plus cache files
            raise EdgeConfigError("worker_rlimit_nofile must be at least worker_connections")

    @property
    def base_url(self) -> str:
        return f"http://{self.listen_host}:{self.listen_port}"


def _cors_map_entries(allowed_origins: tuple[str, ...]) -> str:
    indent = " " * 8
    lines = []
    for origin in dict.fromkeys(allowed_origins):  # de-duplicated, order kept
        key = "~." if origin == ANY_ORIGIN else f'"{origin}"'
        lines.append(f"{indent}{key} $http_origin;")
    return "\n".join(lines) if lines else f"{indent}# no embed origins allowed"


def _storage_response_directives() -> str:
    indent = "\n" + " " * 12
    ignore = ("proxy_ignore_headers Set-Cookie Vary X-Accel-Expires X-Accel-Redirect X-Accel-Limit-Rate"
              + indent + "                     X-Accel-Buffering X-Accel-Charset;")  # fmt: skip
    return indent.join([ignore, *(f"proxy_hide_header {name};" for name in STORAGE_HIDDEN_HEADERS)])


def _storage_tls_directives(params: EdgeParams) -> str:
    if params.storage.upstream.scheme != "https":
        return "# storage is plain http: no TLS settings"
    indent = "\n" + " " * 12
    return indent.join(
        [
            "proxy_ssl_server_name on;",
            f"proxy_ssl_name {params.storage.upstream.host};",
            "proxy_ssl_verify on;",
            "proxy_ssl_verify_depth 4;",
            f"proxy_ssl_trusted_certificate {params.storage_ca_file};",
            "proxy_ssl_session_reuse on;",
        ]
    )


def template_values(params: EdgeParams) -> dict[str, str]:
    """Every placeholder's value (pure). TTLs come from origin.contract.cache_policy, nowhere else."""
    user = params.worker_user
    return {
        "worker_user_directive": (
            f"user {user[0]} {user[1]};" if user else "# user: not set (workers keep the master's user)"
        ),
        "worker_processes": str(params.worker_processes),
        "worker_rlimit_nofile": str(params.worker_rlimit_nofile),
        "worker_connections": str(params.worker_connections),
        "error_log_level": params.error_log_level,
        "log_every_request": "1" if params.log_every_request else "0",
        "cors_origin_map_entries": _cors_map_entries(params.allowed_origins),
        "cache_dir": params.cache_dir.rstrip("/") or "/",
        "live_cache_max_mb": str(params.live_cache_max_mb),
        "live_cache_inactive_s": str(params.live_cache_inactive_s),
        "media_cache_max_mb": str(params.media_cache_max_mb),
        "media_cache_inactive_s": str(params.media_cache_inactive_s),
        "storage_server": params.storage.upstream.server,
        "origin_server": params.origin.server,
        "listen_address": f"{params.listen_host}:{params.listen_port}",
        "listen_backlog": str(params.listen_backlog),
        "status_listen_address": f"{params.status_host}:{params.status_port}",
        "storage_host_header": params.storage.upstream.host_header,
        "storage_tls_directives": _storage_tls_directives(params),
        "storage_response_directives": _storage_response_directives(),
        "storage_scheme": params.storage.upstream.scheme,
        "storage_path_prefix": params.storage.path_prefix,
        "live_playlist_max_age_s": str(cache_policy.LIVE_PLAYLIST_MAX_AGE_S),
        "segment_max_age_s": str(cache_policy.SEGMENT_MAX_AGE_S),
        "error_max_age_s": str(cache_policy.ERROR_MAX_AGE_S),
        "ll_lock_wait_ms": str(params.ll_lock_wait_ms),
        "part_lock_wait_ms": str(PART_LOCK_WAIT_MS),
    }


def placeholders(template: str) -> set[str]:
    return set(PLACEHOLDER_PATTERN.findall(template))


def render_config(template: str, params: EdgeParams) -> str:
    """Fill `template` with `params`. Raises EdgeConfigError if a placeholder is unknown or unused."""
    values = template_values(params)
    wanted = placeholders(template)
    if missing := wanted - values.keys():
        raise EdgeConfigError(f"template placeholders without a value: {sorted(missing)}")
    if unused := values.keys() - wanted:
        raise EdgeConfigError(f"values the template does not use: {sorted(unused)}")
    return PLACEHOLDER_PATTERN.sub(lambda m: values[m.group(1)], template)
