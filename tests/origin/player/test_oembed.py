"""oEmbed request validation, URL matching and the rich response (pure; HTTP codes in test_http.py)."""

from __future__ import annotations

import re

import pytest

from origin.errors import NotFoundError, ValidationError
from origin.player.oembed import (
    DEFAULT_HEIGHT_PX,
    DEFAULT_WIDTH_PX,
    FormatNotImplemented,
    OEmbedRequest,
    frame_size,
    oembed_response,
    parse_request,
    room_for_url,
)
from origin.rooms import Room
from origin.web.errors import status_of

BASES = ("https://cdn.example", "https://api.example/spill")
URL = "https://cdn.example/embed/town-hall"


def test_minimal_request() -> None:
    assert parse_request([("url", URL)]) == OEmbedRequest(url=URL)
    assert parse_request([("url", URL), ("format", "json"), ("maxwidth", "400"), ("maxheight", "150"),
                          ("dnt", "1")]) == OEmbedRequest(url=URL, maxwidth=400, maxheight=150)


@pytest.mark.parametrize("fmt", ["xml", "jsonp", "yaml"])
def test_other_formats_are_not_implemented(fmt: str) -> None:
    with pytest.raises(FormatNotImplemented) as info:
        parse_request([("url", URL), ("format", fmt)])
    assert status_of(info.value) == 501


@pytest.mark.parametrize(
    "params",
    [
        [],
        [("url", "")],
        [("url", URL), ("url", URL)],
        [("url", URL + " x")],
        [("url", "https://cdn.example/" + "a" * 2100)],
        [("url", "https://cdn.example/embed/é")],
        [("url", URL), ("format", "JSON ")],
        [("url", URL), ("format", "json"), ("format", "json")],
        [("url", URL), ("maxwidth", "0")],
        [("url", URL), ("maxwidth", "-5")],
        [("url", URL), ("maxwidth", "12.5")],
        [("url", URL), ("maxwidth", "0400")],
        [("url", URL), ("maxheight", "99999")],
        [("url", URL), ("maxheight", "")],
    ],
)
def test_malformed_values_are_rejected(params: list[tuple[str, str]]) -> None:
    with pytest.raises(ValidationError):
        parse_request(params)


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example/embed/town-hall",
        "https://CDN.example:443/embed/town-hall",
        "https://cdn.example/rooms/town-hall",
        "https://cdn.example/rooms/town-hall/",
        "https://cdn.example/rooms/town-hall/master.m3u8",
        "https://cdn.example/rooms/town-hall/replay.m3u8",
        "https://api.example/spill/embed/town-hall",
    ],
)
def test_our_urls_name_the_room(url: str) -> None:
    assert room_for_url(url, base_urls=BASES) == "town-hall"


@pytest.mark.parametrize(
    "url",
    [
        "https://news.example/embed/town-hall",
        "http://cdn.example/embed/town-hall",  # another origin (scheme)
        "https://cdn.example:8443/embed/town-hall",
        "https://cdn.example/embed/Town-Hall",
        "https://cdn.example/embed/town-hall?autoplay=1",
        "https://cdn.example/embed/town-hall#t=10",
        "https://cdn.example/embed/town-hall/extra",
        "https://cdn.example/rooms/town-hall/status.json",
        "https://cdn.example/rooms/town-hall/live/a64.m3u8",
        "https://cdn.example/embed/",
        "https://user:pw@cdn.example/embed/town-hall",
        "https://api.example/embed/town-hall",  # outside the API base path
        "https://[::1/embed/x",
        "javascript:alert(1)",
    ],
)
def test_other_urls_have_no_answer(url: str) -> None:
    with pytest.raises(NotFoundError):
        room_for_url(url, base_urls=BASES)


@pytest.mark.parametrize(
    ("maxwidth", "maxheight", "size"),
    [
        (None, None, (DEFAULT_WIDTH_PX, DEFAULT_HEIGHT_PX)),
        (1000, 1000, (DEFAULT_WIDTH_PX, DEFAULT_HEIGHT_PX)),
        (320, None, (320, DEFAULT_HEIGHT_PX)),
        (None, 120, (DEFAULT_WIDTH_PX, 120)),
        (1, 1, (1, 1)),  # the spec: never larger than asked
    ],
)
def test_frame_size_respects_max_dimensions(maxwidth: int | None, maxheight: int | None,
                                            size: tuple[int, int]) -> None:
    assert frame_size(OEmbedRequest(url=URL, maxwidth=maxwidth, maxheight=maxheight)) == size


def test_rich_response_has_the_required_fields() -> None:
    room = Room(id="town-hall", ingest_token="t" * 32, title='Vote "now" <live>', host="Ada")
    doc = oembed_response(room, OEmbedRequest(url=URL, maxwidth=300), public_base_url="https://cdn.example")
    assert {k: doc[k] for k in ("type", "version", "width", "height")} == {
        "type": "rich", "version": "1.0", "width": 300, "height": DEFAULT_HEIGHT_PX,
    }
    assert doc["title"] == 'Vote "now" <live>' and doc["author_name"] == "Ada"
    assert doc["provider_name"] == "Spillway" and doc["provider_url"] == "https://cdn.example/"
    assert doc["cache_age"] == 300
    html = str(doc["html"])
    assert re.fullmatch(r'<iframe src="https://cdn\.example/embed/town-hall" width="300" height="200" [^<>]*></iframe>',
                        html)
    assert 'title="Vote &quot;now&quot; &lt;live&gt;"' in html


def test_no_author_without_a_host() -> None:
    doc = oembed_response(Room(id="r1", ingest_token="t" * 32), OEmbedRequest(url=URL),
                          public_base_url="https://cdn.example")
    assert "author_name" not in doc and doc["title"] == "Live audio: r1"
