"""The embed page as data: escaping, the config block, oEmbed discovery, CSP frame-ancestors (pure)."""

from __future__ import annotations

import html
import json
import re

import pytest

from origin.player.page import (
    TEMPLATE_PATH,
    AssetUrls,
    content_security_policy,
    embed_page,
    frame_ancestors,
    page_headers,
    player_config,
    render_embed_page,
    render_error_page,
    web_origin,
)
from origin.rooms import Room

ASSETS = AssetUrls(stylesheet="/static/player/aaaa/player.css", hls_js="/static/player/bbbb/hls.light.min.js",
                   player_js="/static/player/cccc/player.js")
BASE = "https://cdn.example"


def _render(room: Room) -> str:
    return render_embed_page(embed_page(room, public_base_url=BASE, assets=ASSETS), TEMPLATE_PATH.read_text())


def _config(text: str) -> dict[str, object]:
    match = re.search(r'<script type="application/json" id="spillway-config">(.*?)</script>', text, re.S)
    assert match is not None
    doc: dict[str, object] = json.loads(match.group(1))
    return doc


def test_page_names_the_room_its_urls_and_assets() -> None:
    text = _render(Room(id="town-hall", ingest_token="t" * 32, title="Budget vote", host="Ada"))
    assert "<title>Budget vote</title>" in text
    assert '<h1 class="title" id="room-title">Budget vote</h1>' in text
    assert 'Hosted by <span id="room-host-name">Ada</span>' in text
    assert '<link rel="stylesheet" href="/static/player/aaaa/player.css">' in text
    assert '<script src="/static/player/bbbb/hls.light.min.js" defer></script>' in text
    assert '<script src="/static/player/cccc/player.js" defer></script>' in text
    assert "<script>" not in text  # no inline script: script-src 'self' holds
    config = _config(text)
    assert config["statusUrl"] == "https://cdn.example/rooms/town-hall/status.json"
    assert config["hlsUrl"] == "https://cdn.example/rooms/town-hall/master.m3u8"
    assert config["replayUrl"] == "https://cdn.example/rooms/town-hall/replay.m3u8"
    assert "${" not in text


def test_oembed_discovery_link() -> None:
    text = _render(Room(id="town-hall", ingest_token="t" * 32, title="Budget vote"))
    (href,) = re.findall(r'<link rel="alternate" type="application/json\+oembed" href="([^"]+)"', text)
    assert html.unescape(href) == (
        "https://cdn.example/oembed?url=https%3A%2F%2Fcdn.example%2Fembed%2Ftown-hall&format=json"
    )


def test_untitled_room_and_missing_host() -> None:
    text = _render(Room(id="r1", ingest_token="t" * 32))
    assert "<title>Live audio: r1</title>" in text
    assert 'id="room-host" hidden>' in text


def test_hostile_title_and_host_are_escaped() -> None:
    evil = '</script><script>alert(1)</script>"&'
    text = _render(Room(id="r1", ingest_token="t" * 32, title=evil, host=evil))
    assert "<script>alert(1)" not in text
    assert text.count("</script>") == 3  # the config block and the two script tags, nothing injected
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;" in text


def test_config_json_cannot_close_its_script_block() -> None:
    page = embed_page(Room(id="r1", ingest_token="t" * 32, title="</script>"), public_base_url=BASE, assets=ASSETS)
    text = render_embed_page(page, TEMPLATE_PATH.read_text())
    block = text.split('id="spillway-config">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block and ">" not in block
    assert player_config(page)["hlsConfig"] == _config(text)["hlsConfig"]


def test_frame_ancestors_self_only_without_embed_origins() -> None:
    assert frame_ancestors(()) == "'self'"
    assert frame_ancestors(("https://news.example", "http://127.0.0.1:8081", "https://news.example")) == (
        "'self' https://news.example http://127.0.0.1:8081"
    )


def test_csp_allows_the_cdn_for_media_and_nothing_inline() -> None:
    csp = content_security_policy(public_base_url="https://cdn.example:8443/spill", embed_origins=("https://a.example",))
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self' https://cdn.example:8443"
    assert directives["media-src"] == "'self' https://cdn.example:8443 blob: data:"
    assert directives["frame-ancestors"] == "'self' https://a.example"
    assert "unsafe" not in csp


def test_headers_have_no_contradicting_x_frame_options() -> None:
    ok = page_headers(public_base_url=BASE, embed_origins=("https://a.example",), ok=True)
    assert not any(k.lower() == "x-frame-options" for k in ok)
    assert ok["Cache-Control"] == "public, max-age=60"
    assert page_headers(public_base_url=BASE, embed_origins=(), ok=False)["Cache-Control"] == "public, max-age=1"


def test_error_page_is_escaped_and_plain() -> None:
    text = render_error_page(status=404, heading="Room <x>", detail="a & b", stylesheet_url="/s.css")
    assert "<h1 class=\"title\">Room &lt;x&gt;</h1>" in text and "a &amp; b" in text and "<script" not in text


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://cdn.example", "https://cdn.example"),
        ("https://CDN.example:443/x", "https://cdn.example"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://[::1]:80", "http://[::1]"),
    ],
)
def test_web_origin(url: str, origin: str) -> None:
    assert web_origin(url) == origin


@pytest.mark.parametrize("url", ["ftp://x.example", "/embed/r1", "https://"])
def test_web_origin_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        web_origin(url)


def test_status_is_polled_every_2_to_5_seconds_per_state() -> None:
    page = embed_page(Room(id="r1", ingest_token="t" * 32), public_base_url=BASE, assets=ASSETS)
    intervals = player_config(page)["statusPollSeconds"]
    assert isinstance(intervals, dict) and set(intervals) == {"waiting", "live", "replay"}
    assert all(2.0 <= v <= 5.0 for v in intervals.values())


def test_realtime_rooms_load_janus_js_and_tell_the_player() -> None:
    from origin.player.page import Realtime

    assets = AssetUrls(stylesheet="/s/player.css", hls_js="/s/hls.js", player_js="/s/player.js",
                       janus_js="/s/janus.js", realtime_js="/s/realtime.js")  # fmt: skip
    seated = Room(id="seats", ingest_token="t" * 32, realtime_cap=5)
    text = render_embed_page(
        embed_page(seated, public_base_url=BASE, assets=assets, realtime=Realtime()), TEMPLATE_PATH.read_text()
    )
    assert text.index('src="/s/hls.js"') < text.index('src="/s/janus.js"') < text.index('src="/s/realtime.js"')
    assert text.index('src="/s/realtime.js"') < text.index('src="/s/player.js"')  # defer keeps this order
    realtime = _config(text)["realtime"]
    assert isinstance(realtime, dict) and realtime["kind"] == "janus" and realtime["iceServers"] == []
    hls_only = Room(id="hls-only", ingest_token="t" * 32, realtime_cap=0)  # cap 0: nobody gets a seat
    text = render_embed_page(
        embed_page(hls_only, public_base_url=BASE, assets=assets, realtime=Realtime()), TEMPLATE_PATH.read_text()
    )
    assert "janus.js" not in text and _config(text)["realtime"] is None


def test_csp_lets_the_player_reach_the_api_and_janus() -> None:
    csp = content_security_policy(
        public_base_url=BASE, embed_origins=(),
        connect_urls=("https://api.example/v1", "https://janus.example:8089/janus"),
    )  # fmt: skip
    connect = next(d for d in csp.split("; ") if d.startswith("connect-src"))
    assert connect == "connect-src 'self' https://cdn.example https://api.example https://janus.example:8089"
