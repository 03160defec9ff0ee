"""The player routes on the real app (in-process): status codes, headers, oEmbed per the spec, assets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from origin.player.assets import PlayerAssets
from origin.settings import Settings
from origin.web.app import create_app
from origin.web.errors import CODES

ADMIN = "player-admin-token"
CDN = "https://cdn.example"
REQUIRED_RICH = {"type", "version", "html", "width", "height"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("player-http")
    settings = Settings(
        state_dir=tmp / "state", storage_root=tmp / "storage", admin_token=SecretStr(ADMIN),
        public_base_url=CDN, api_base_url="https://api.example",
    )  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as c:
        for room, body in {
            "town-hall": {"title": "Budget <vote>", "host": "Ada", "embed_origins": ["https://News.Example"]},
            "quiet": {},
        }.items():
            r = c.put(f"/v1/rooms/{room}", json={"realtime_cap": 0, **body},
                      headers={"Authorization": f"Bearer {ADMIN}"})
            assert r.status_code == 201, r.text
        yield c


def test_embed_page(client: TestClient) -> None:
    r = client.get("/embed/town-hall")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=60"
    assert "x-frame-options" not in r.headers
    csp = r.headers["content-security-policy"]
    assert csp.endswith("frame-ancestors 'self' https://news.example")
    assert "Budget &lt;vote&gt;" in r.text and "Hosted by" in r.text
    discovery = "https://cdn.example/oembed?url=https%3A%2F%2Fcdn.example%2Fembed%2Ftown-hall&amp;format=json"
    assert f'<link rel="alternate" type="application/json+oembed" href="{discovery}"' in r.text


def test_room_without_embed_origins_is_framable_by_itself_only(client: TestClient) -> None:
    r = client.get("/embed/quiet")
    assert r.status_code == 200
    assert r.headers["content-security-policy"].endswith("frame-ancestors 'self'")


@pytest.mark.parametrize(("path", "status", "heading"), [
    ("/embed/no-such-room", 404, "Room not found"),
    ("/embed/Bad_Room", 400, "Not a room address"),
    ("/embed/" + "a" * 70, 400, "Not a room address"),
    ("/embed/-x", 400, "Not a room address"),
])
def test_bad_and_unknown_rooms_get_a_clear_page(client: TestClient, path: str, status: int, heading: str) -> None:
    r = client.get(path)
    assert r.status_code == status
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=1"
    assert f'<h1 class="title">{heading}</h1>' in r.text


def test_head_of_the_embed_page(client: TestClient) -> None:
    r = client.head("/embed/town-hall")
    assert r.status_code == 200 and "frame-ancestors" in r.headers["content-security-policy"]


def test_oembed_for_embed_and_room_urls(client: TestClient) -> None:
    for url in (f"{CDN}/embed/town-hall", f"{CDN}/rooms/town-hall", "https://api.example/embed/town-hall"):
        r = client.get("/oembed", params={"url": url, "format": "json", "maxwidth": "360"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json; charset=utf-8"
        assert r.headers["cache-control"] == "public, max-age=300"
        doc = r.json()
        assert doc.keys() >= REQUIRED_RICH
        assert (doc["type"], doc["version"], doc["width"]) == ("rich", "1.0", 360)
        assert doc["author_name"] == "Ada" and doc["title"] == "Budget <vote>"
        assert doc["html"].startswith('<iframe src="https://cdn.example/embed/town-hall" width="360" height="200"')


def test_oembed_format_defaults_to_json(client: TestClient) -> None:
    assert client.get("/oembed", params={"url": f"{CDN}/embed/quiet"}).json()["type"] == "rich"


@pytest.mark.parametrize(("params", "status"), [
    ({"url": f"{CDN}/embed/no-such-room"}, 404),
    ({"url": "https://elsewhere.example/embed/town-hall"}, 404),
    ({"url": f"{CDN}/embed/town-hall", "format": "xml"}, 501),
    ({"url": f"{CDN}/embed/town-hall", "maxwidth": "wide"}, 400),
    ({"format": "json"}, 400),
])
def test_oembed_errors(client: TestClient, params: dict[str, str], status: int) -> None:
    r = client.get("/oembed", params=params)
    assert r.status_code == status
    assert r.headers["cache-control"] == "public, max-age=1"
    assert r.headers["access-control-allow-origin"] == "*"
    body = r.json()  # the origin's one error shape
    assert body.keys() == {"error", "detail"} and body["error"] == CODES[status], body


def test_oembed_repeated_parameter(client: TestClient) -> None:
    r = client.get(f"/oembed?url={CDN}/embed/quiet&url={CDN}/embed/town-hall")
    assert r.status_code == 400


def test_static_assets_are_content_addressed(client: TestClient) -> None:
    assets = PlayerAssets()
    for name, ctype in (("player.js", "text/javascript"), ("player.css", "text/css"),
                        ("hls.light.min.js", "text/javascript")):
        url = assets.url(name)
        assert client.get("/embed/town-hall").text.count(url) == 1
        r = client.get(url)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith(ctype)
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.content == (Path(__file__).parents[3] / "origin" / "player" / (
            "vendor" if name.startswith("hls") else "static") / name).read_bytes()
    stale = client.get("/static/player/0000000000000000/player.js")
    assert stale.status_code == 404 and stale.headers["cache-control"] == "public, max-age=1"
    assert client.get(assets.url("player.js").rsplit("/", 1)[0] + "/secret.py").status_code == 404
    assert client.get(assets.url("LICENSE.hls.js")).text.startswith("Copyright (c) 2017 Dailymotion")
