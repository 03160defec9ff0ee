"""Issue 14 finding 8: the edge keys /embed/ and /oembed on what the origin's answer varies on, so random
query strings are served from the cache instead of reaching the origin once each (the old template keyed
on the whole request URI: 1,000 random query strings reached the origin 1,000 times)."""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from origin.edge.nginx_process import EdgeOptions, EdgeProcess, run_edge
from tests.support.origin_server import OriginServer, origin_server

ROOM = "edge-keys"
QUERIES = 300


@pytest.fixture(scope="module")
def origin() -> Iterator[OriginServer]:
    with origin_server(workers=1) as server:
        server.create_room(ROOM, ingest_token="edge-keys-ingest-token-0123456789", title="Keys")
        yield server


@pytest.fixture(scope="module")
def edge(origin: OriginServer) -> Iterator[EdgeProcess]:
    with run_edge(EdgeOptions(origin_url=origin.base_url)) as running:
        yield running


def reached_origin(edge: EdgeProcess, uri: str) -> int:
    return sum(1 for e in edge.upstream_log() if e.uri == uri)


def test_random_query_strings_on_the_embed_page_hit_the_cache(edge: EdgeProcess) -> None:
    with httpx.Client(timeout=10) as http:
        for _ in range(QUERIES):
            r = http.get(f"{edge.base_url}/embed/{ROOM}?{secrets.token_hex(6)}={secrets.token_hex(6)}")
            assert r.status_code == 200 and "Keys" in r.text
    # one fetch, plus one per expiry of the page's short max-age while the loop ran
    assert reached_origin(edge, f"/embed/{ROOM}") <= 6


def test_oembed_is_keyed_on_its_four_parameters_only(origin: OriginServer, edge: EdgeProcess) -> None:
    page = quote(f"{origin.base_url}/embed/{ROOM}", safe="")
    with httpx.Client(timeout=10) as http:
        for i in range(QUERIES):
            params = [f"url={page}", "format=json", f"junk{i}={secrets.token_hex(4)}", f"_={i}"]
            random.shuffle(params)
            r = http.get(f"{edge.base_url}/oembed?{'&'.join(params)}")
            assert r.status_code == 200 and r.json()["title"] == "Keys", r.text
        assert reached_origin(edge, "/oembed") <= 6
        # What the answer varies on still reaches the origin, each value once.
        before = reached_origin(edge, "/oembed")
        for width in (320, 480):
            for _ in range(5):
                r = http.get(f"{edge.base_url}/oembed?url={page}&maxwidth={width}&x={secrets.token_hex(4)}")
                assert r.status_code == 200 and r.json()["width"] <= width, r.text
        assert reached_origin(edge, "/oembed") - before == 2
        assert http.get(f"{edge.base_url}/oembed?url={page}&format=xml").status_code == 501
        assert http.get(f"{edge.base_url}/oembed?format=json").status_code == 400
