"""Low-latency HLS through the nginx edge in front of the real origin and the real transcoder (--low-latency):
identical blocking reloads collapse into one upstream request, other query strings do not reach the key, the
origin unreachable falls back to storage's playlist, and the embed page's hls.js plays in LL mode (parts,
blocking reloads through the edge) close to the live edge."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import m3u8
import pytest

from origin.broadcast.playlist_ll import edge_of
from origin.edge.logs import LogEntry
from origin.edge.nginx_process import EdgeOptions, EdgeProcess, run_edge
from tests.origin.player.browser import Console, chromium
from tests.support.hls_check import wait_for
from tests.support.net import free_port
from tests.support.origin_server import OriginServer, origin_server
from tests.support.transcoder_proc import transcoder

ROOM = "edge-ll"
TOKEN = "edge-ll-ingest-token-0123456789abcdef"
CLIENTS = 60
STANDARD_PAGE = """<!doctype html><html><body><audio id="a"></audio><script src="{hls_js}"></script><script>
window.audio = document.getElementById('a'); window.hls = new Hls({{lowLatencyMode: false}});
hls.loadSource('{master}'); hls.attachMedia(audio); hls.on(Hls.Events.MANIFEST_PARSED, () => audio.play());
</script></body></html>"""


@dataclass(kw_only=True)
class Rig:
    origin: OriginServer
    edge: EdgeProcess

    def url(self, rendition: str = "a64") -> str:
        return f"{self.edge.base_url}/rooms/{ROOM}/live/{rendition}.m3u8"


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    edge_port = free_port()
    env = {"SPILLWAY_PUBLIC_BASE_URL": f"http://127.0.0.1:{edge_port}"}  # the embed page fetches via the edge
    with origin_server(workers=2, env=env) as origin:
        origin.create_room(ROOM, ingest_token=TOKEN)
        # Followers look once, ll_lock_wait_ms after they came (nginx polls its cache lock): the default (just
        # over a part) fits requests for the next part; these tests ask two parts ahead, so they wait longer.
        options = EdgeOptions(origin_url=origin.base_url, listen_port=edge_port, log_every_request=True,
                              ll_lock_wait_ms=1000)  # fmt: skip
        with run_edge(options) as edge, transcoder(origin=origin.base_url, room=ROOM, token=TOKEN,
                                                   extra=("--low-latency",)):  # fmt: skip
            r = Rig(origin=origin, edge=edge)
            wait_for(lambda: httpx.get(r.url()).text.count("#EXTINF") >= 3, timeout_s=40, what="LL segments")
            yield r


def _next_part(text: str, ahead: int = 1) -> tuple[int, int]:
    edge = edge_of(text)
    n = edge.next_parts + ahead - 1  # 5 parts per segment
    return edge.last_msn + 1 + n // 5, n % 5


def test_identical_blocking_reloads_collapse_into_one_upstream_request(rig: Rig) -> None:
    msn, part = _next_part(httpx.get(rig.url()).text, ahead=2)
    junk = ["", "&utm=x", "&token=abc", "&_hls_MSNX=1"]

    async def held() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=15) as client:
            return await asyncio.gather(*(
                client.get(f"{rig.url()}?_HLS_msn={msn}&_HLS_part={part}{junk[i % len(junk)]}")
                for i in range(CLIENTS)
            ))  # fmt: skip

    answers = asyncio.run(held())
    assert [a.status_code for a in answers] == [200] * CLIENTS
    for a in answers:
        got = edge_of(a.text)
        assert got.last_msn >= msn or (got.last_msn == msn - 1 and got.next_parts > part)
    time.sleep(1.2)  # the access log is buffered up to 1 s

    def asked(entries: list[LogEntry]) -> list[LogEntry]:  # logs hold the client's own query ($args)
        mine = f"_HLS_msn={msn}&_HLS_part={part}"
        return [e for e in entries if e.uri == f"/rooms/{ROOM}/live/a64.m3u8" and e.args.startswith(mine)]

    upstream, served = asked(rig.edge.upstream_log()), asked(rig.edge.access_log())
    assert len(served) == CLIENTS
    assert len(upstream) == 1, upstream  # one held request at the origin for the sixty at the edge


def test_the_answer_a_client_gets_is_the_one_it_asked_for(rig: Rig) -> None:
    # A delta update skips what is older than CAN-SKIP-UNTIL (6 target durations): wait for such a window.
    wait_for(lambda: "#EXT-X-SKIP:" in httpx.get(rig.url(), params={"_HLS_skip": "YES"}).text, timeout_s=40,
             what="a window long enough to skip")  # fmt: skip
    text = httpx.get(rig.url()).text
    msn, part = _next_part(text)
    delta = httpx.get(rig.url(), params={"_HLS_msn": msn, "_HLS_part": part, "_HLS_skip": "YES"})
    full = httpx.get(rig.url(), params={"_HLS_msn": msn, "_HLS_part": part})
    assert delta.status_code == full.status_code == 200
    assert "#EXT-X-SKIP:" in delta.text and "#EXT-X-SKIP:" not in full.text
    assert m3u8.loads(full.text).server_control.can_block_reload == "YES"
    too_far = httpx.get(rig.url(), params={"_HLS_msn": edge_of(full.text).last_msn + 5})
    assert too_far.status_code == 400 and too_far.json()["error"] == "invalid_request"  # the origin's error shape


def test_hls_js_plays_low_latency_through_the_edge() -> None:
    # Its own rig: a page's requests are counted from a clean log, and nothing else shares the edge.
    edge_port = free_port()
    env = {"SPILLWAY_PUBLIC_BASE_URL": f"http://127.0.0.1:{edge_port}"}
    with origin_server(workers=2, env=env) as origin:
        origin.create_room(ROOM, ingest_token=TOKEN)
        options = EdgeOptions(origin_url=origin.base_url, listen_port=edge_port, log_every_request=True)
        with run_edge(options) as edge, transcoder(origin=origin.base_url, room=ROOM, token=TOKEN,
                                                   extra=("--low-latency",)), chromium() as browser:  # fmt: skip
            live = f"{edge.base_url}/rooms/{ROOM}/live/a64.m3u8"
            wait_for(lambda: httpx.get(live).text.count("#EXTINF") >= 3, timeout_s=40, what="LL segments")
            console = Console()
            page = console.attach(browser.new_page())
            page.goto(f"{edge.base_url}/embed/{ROOM}")
            page.wait_for_function("() => window.spillway && window.spillway.mode === 'live'", timeout=40_000)
            page.click("#play")
            page.wait_for_function("() => window.spillway.audio.currentTime > 2", timeout=40_000)
            time.sleep(8)
            state = page.evaluate("""() => { const h = window.spillway.hls, d = h.latestLevelDetails;
                return {parts: d.partList ? d.partList.length : 0, block: d.canBlockReload, latency: h.latency,
                        target: h.targetLatency, playing: !window.spillway.audio.paused,
                        holdBack: d.partHoldBack}; }""")
            t0 = page.evaluate("() => window.spillway.audio.currentTime")
            time.sleep(3)
            t1 = page.evaluate("() => window.spillway.audio.currentTime")
            # Fallen 2 s behind (a stall, a slow start): more than hls.js (>1 TD off target: "DVR") would catch up.
            page.evaluate("""() => { const a = window.spillway.audio; window.__rates = [];
                a.addEventListener('ratechange', () => window.__rates.push(a.playbackRate));
                a.currentTime = a.currentTime - 2.0; }""")
            page.wait_for_function("() => window.spillway.hls.latency > window.spillway.hls.targetLatency + 1",
                                   timeout=10_000)  # fmt: skip
            page.wait_for_function("""() => { const h = window.spillway.hls;
                return h.latency < h.targetLatency + 0.6 && window.spillway.audio.playbackRate === 1; }""",
                                   timeout=40_000)  # fmt: skip
            rates = page.evaluate("() => window.__rates")
            page.close()
            # Pressing play after the page sat a while plays live, not from where it buffered at load.
            late = console.attach(browser.new_page())
            late.goto(f"{edge.base_url}/embed/{ROOM}")
            late.wait_for_function("() => window.spillway && window.spillway.mode === 'live'", timeout=40_000)
            time.sleep(4)
            late.click("#play")
            late.wait_for_function("() => window.spillway.audio.currentTime > 0 && !window.spillway.audio.paused",
                                   timeout=40_000)  # fmt: skip
            time.sleep(1.5)
            start = late.evaluate(
                "() => ({latency: window.spillway.hls.latency, target: window.spillway.hls.targetLatency})"
            )
            late.close()
            # A standard player on the same URLs: hls.js with lowLatencyMode off ignores the parts and plays.
            embed_html = httpx.get(f"{edge.base_url}/embed/{ROOM}").text
            hls_js = re.search(r'<script[^>]+src="([^"]*hls[^"]*\.js)"', embed_html)
            assert hls_js
            bare_url = f"{edge.base_url}/standard-hls-js.html"
            bare = console.attach(browser.new_page())
            bare.route(bare_url, lambda route: route.fulfill(content_type="text/html", body=STANDARD_PAGE.format(
                hls_js=hls_js.group(1), master=f"{edge.base_url}/rooms/{ROOM}/master.m3u8")))  # fmt: skip
            bare.goto(bare_url)
            bare.wait_for_function("() => window.audio.currentTime > 3", timeout=40_000)
            standard = bare.evaluate("() => ({ll: window.hls.config.lowLatencyMode, latency: window.hls.latency})")
            bare.close()
            time.sleep(1.2)  # the access log is buffered up to 1 s
            log = edge.access_log()
    assert state["playing"] and state["block"] and state["parts"] > 0, state
    assert state["target"] < 2.0, state  # PART-HOLD-BACK (0.64 s), not 3 target durations
    assert state["latency"] < 2.5, state  # a standard listener sits ≥ 3 s back (HOLD-BACK)
    assert t1 - t0 > 2.5  # still playing in real time
    assert rates and max(rates) > 1 and rates[-1] == 1, rates  # caught up by speed, then back to normal
    assert start["latency"] < start["target"] + 1.0, start
    assert standard["ll"] is False and standard["latency"] > 2.0, standard  # HOLD-BACK: 3 target durations
    blocking = [e for e in log if "/live/" in e.uri and "_HLS_part=" in e.args]
    parts = [e for e in log if ".p" in e.uri.rsplit("/", 1)[-1] and e.uri.endswith(".m4s")]
    assert len(blocking) >= 20, "hls.js asked for every part: ~5 blocking reloads a second"
    assert parts and all(e.status == 200 for e in parts)
    assert all(e.status == 200 for e in blocking)
    assert not console.errors, console.errors
