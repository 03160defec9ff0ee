"""Parsing what the edge reports (pure): its JSON access-log lines and nginx's stub_status page.

logs/upstream.log holds one line per request that reached an upstream (storage or origin): it is the
upstream request counter the tests and the benchmark read. The format is `log_format spillway_edge` in
origin/edge/templates/edge.conf.template.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from origin.edge.errors import EdgeError


@dataclass(frozen=True, kw_only=True)
class LogEntry:
    time: str
    remote_addr: str
    method: str
    uri: str
    args: str
    status: int
    bytes: int
    cache: str  # $upstream_cache_status: MISS, HIT, EXPIRED, UPDATING, STALE, REVALIDATED, BYPASS or ""
    upstream_addr: str
    upstream_status: str
    request_time_s: float

    @property
    def went_upstream(self) -> bool:
        return bool(self.upstream_addr)


def parse_log_line(line: str) -> LogEntry:
    try:
        raw = json.loads(line)
        return LogEntry(
            time=str(raw["time"]),
            remote_addr=str(raw["remote_addr"]),
            method=str(raw["method"]),
            uri=str(raw["uri"]),
            args=str(raw["args"]),
            status=int(raw["status"]),
            bytes=int(raw["bytes"]),
            cache=str(raw["cache"]),
            upstream_addr=str(raw["upstream_addr"]),
            upstream_status=str(raw["upstream_status"]),
            request_time_s=float(raw["request_time"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise EdgeError(f"unparseable edge log line {line[:200]!r}: {exc}") from exc


def parse_log(lines: Iterable[str]) -> list[LogEntry]:
    """Entries of complete lines; blank lines are skipped (a partial last line is the caller's to drop)."""
    return [parse_log_line(line) for line in lines if line.strip()]


@dataclass(frozen=True, kw_only=True)
class StubStatus:
    active: int
    accepts: int
    handled: int
    requests: int  # total client requests since start
    reading: int
    writing: int
    waiting: int


_STUB_STATUS = re.compile(
    r"Active connections:\s*(\d+)\s+server accepts handled requests\s+(\d+)\s+(\d+)\s+(\d+)\s+"
    r"Reading:\s*(\d+)\s+Writing:\s*(\d+)\s+Waiting:\s*(\d+)"
)


def parse_stub_status(text: str) -> StubStatus:
    match = _STUB_STATUS.search(text)
    if match is None:
        raise EdgeError(f"unparseable stub_status page {text[:200]!r}")
    a, acc, han, req, rd, wr, wt = (int(g) for g in match.groups())
    return StubStatus(active=a, accepts=acc, handled=han, requests=req, reading=rd, writing=wr, waiting=wt)
