"""Fixtures for edge tests: a generated HLS stream, real upstreams (a counting HTTP store standing in for
the origin's read path, moto's S3 server) and real nginx edges in front of them, on free loopback ports."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from origin.edge.logs import LogEntry
from origin.edge.nginx_config import StorageBackend, s3_storage
from origin.edge.nginx_process import EdgeOptions, EdgeProcess, run_edge
from origin.storage.s3 import S3Storage
from tests.cdn_config.stream import HlsStream, Putter, make_stream
from tests.cdn_config.upstream import CountingStore
from tests.support.moto_server import MotoServer, moto_server

ALLOWED_ORIGIN = "https://news.example"
OTHER_ALLOWED_ORIGIN = "http://localhost:3000"
BUCKET = "spillway-edge"
S3_PREFIX = "published"

_rooms = itertools.count(1)


def fresh_room(stem: str = "room") -> str:
    """A room id no other test in this session uses (the edge caches are shared per module)."""
    return f"{stem}-{next(_rooms)}"


@pytest.fixture(scope="session")
def hls_stream(tmp_path_factory: pytest.TempPathFactory) -> HlsStream:
    return make_stream(tmp_path_factory.mktemp("edge-hls"))


@pytest.fixture(scope="module")
def counting_store() -> Iterator[CountingStore]:
    with CountingStore() as store:
        yield store


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with moto_server(buckets=[BUCKET]) as server:
        yield server


@dataclass(kw_only=True)
class EdgeRig:
    """A running edge and the storage behind it."""

    kind: str  # "origin" (HTTP read path) or "s3"
    edge: EdgeProcess
    store: Putter  # put(key, data, headers) into the storage the edge reads

    @property
    def url(self) -> str:
        return self.edge.base_url

    def upstream_hits(self, key: str) -> list[LogEntry]:
        """Requests for `key` that reached storage, from nginx's upstream log."""
        return [e for e in self.edge.upstream_log() if e.uri == f"/{key}"]


def _options(*, origin_url: str, storage: StorageBackend | None = None) -> EdgeOptions:
    # These rigs serve standard live playlists under thousands of pollers. The first fill of a playlist's cache
    # entry waits ll_lock_wait_ms (250 ms, sized for low-latency parts); moto on a loaded CI machine can take
    # longer, and then that first wave of followers each asks upstream once (docs/edge.md). Refreshes are served
    # stale-while-updating and never wait. The collapse tests count per-TTL requests, so they get a longer wait.
    return EdgeOptions(origin_url=origin_url, storage=storage, allowed_origins=(ALLOWED_ORIGIN, OTHER_ALLOWED_ORIGIN),
                       ll_lock_wait_ms=2000)  # fmt: skip


@pytest.fixture(scope="module")
def origin_rig(counting_store: CountingStore) -> Iterator[EdgeRig]:
    with run_edge(_options(origin_url=counting_store.url)) as edge:
        yield EdgeRig(kind="origin", edge=edge, store=counting_store)


def s3_putter(moto: MotoServer, *, prefix: str = S3_PREFIX) -> S3Storage:
    """The origin's S3 backend writing to moto, world-readable like a public bucket."""
    return S3Storage(bucket=BUCKET, prefix=prefix, acl="public-read", client=moto.client())


@pytest.fixture(scope="module")
def s3_rig(moto: MotoServer, counting_store: CountingStore) -> Iterator[EdgeRig]:
    storage = s3_storage(endpoint_url=moto.endpoint_url, bucket=BUCKET, prefix=S3_PREFIX)
    with run_edge(_options(origin_url=counting_store.url, storage=storage)) as edge:
        yield EdgeRig(kind="s3", edge=edge, store=s3_putter(moto))


@pytest.fixture(scope="module", params=["origin", "s3"])
def rig(request: pytest.FixtureRequest) -> EdgeRig:
    result: EdgeRig = request.getfixturevalue(f"{request.param}_rig")
    return result
