"""Browser-side helpers for the player tests: Chromium from the system (never downloaded), console capture."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Response, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass(kw_only=True)
class Console:
    """Every console message and uncaught page error of a page (and its frames)."""

    messages: list[tuple[str, str]] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)  # "status url", to explain a console error

    def attach(self, page: Page) -> Page:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_error)
        page.on("response", self._on_response)
        return page

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed_responses.append(f"{response.status} {response.url}")

    def _on_console(self, msg: ConsoleMessage) -> None:
        self.messages.append((msg.type, msg.text))

    def _on_error(self, exc: Error) -> None:
        self.messages.append(("pageerror", str(exc)))

    @property
    def errors(self) -> list[str]:
        return [text for kind, text in self.messages if kind in ("error", "pageerror")]


def js(page: Page, expression: str) -> object:
    """Evaluate a JS expression as a function (the page's CSP forbids eval of strings)."""
    return page.evaluate(f"() => ({expression})")


def wait_js(page: Page, expression: str, *, timeout_s: float) -> None:
    page.wait_for_function(f"() => ({expression})", timeout=timeout_s * 1000)


@contextlib.contextmanager
def parent_site(embed_url: str) -> Iterator[str]:
    """A news-site page on its own 127.0.0.1 port that frames `embed_url`. Yields the site's URL."""
    body = (
        "<!doctype html><html><head><title>News site</title><link rel=\"icon\" href=\"data:,\"></head>"
        "<body><h1>Story</h1>"
        f'<iframe id="player" src="{embed_url}" width="480" height="200" title="Live audio"></iframe>'
        "</body></html>"
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="parent-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
