"""The listener experience: the embeddable player page, oEmbed and the player's static files.

    page.py     the page as data: room + public URLs → HTML, CSP frame-ancestors, headers (pure)
    oembed.py   oEmbed request validation and the `rich` response (pure)
    assets.py   player.js / player.css / vendored hls.js, served content-addressed
    router.py   FastAPI routes: /embed/{room}, /oembed, /static/player/{digest}/{name}
    static/     player.js (no framework) and player.css
    vendor/     hls.js from npm at a pinned version, its LICENSE, refresh-hls.sh

The replay download (.m4a) job lives in origin/replay/download.py.
"""

from origin.player.router import PlayerDeps, build_router

__all__ = ["PlayerDeps", "build_router"]
