"""The player's static files, served content-addressed: `/static/player/{digest}/{name}`.

The digest (first 16 hex digits of the file's SHA-256) is part of the URL, so the CDN and browsers may keep
each version for a year (`immutable`) and a new release is fetched at once: the edge caches `/static/` by
path only, so a query-string version would not do. A request for another digest is a 404, never a stale or
mismatched file. Files are read once, when the app is built.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from origin.contract.cache_policy import PLAYER_ASSET_MAX_AGE_S
from origin.player.page import AssetUrls

PACKAGE_DIR = Path(__file__).resolve().parent
URL_PREFIX = "/static/player"
DIGEST_HEX_CHARS = 16

# name in the URL → (file in the package, Content-Type)
FILES: dict[str, tuple[str, str]] = {
    "player.js": ("static/player.js", "text/javascript; charset=utf-8"),
    "player.css": ("static/player.css", "text/css; charset=utf-8"),
    "realtime.js": ("static/realtime.js", "text/javascript; charset=utf-8"),
    "hls.light.min.js": ("vendor/hls.light.min.js", "text/javascript; charset=utf-8"),
    "LICENSE.hls.js": ("vendor/LICENSE.hls.js", "text/plain; charset=utf-8"),
    "janus.js": ("vendor/janus.js", "text/javascript; charset=utf-8"),
    "LICENSE.janus.js": ("vendor/LICENSE.janus.js", "text/plain; charset=utf-8"),
}
ASSET_CACHE_CONTROL = f"public, max-age={PLAYER_ASSET_MAX_AGE_S}, immutable"


@dataclass(frozen=True, kw_only=True)
class Asset:
    name: str
    body: bytes
    content_type: str
    digest: str

    @property
    def url(self) -> str:
        return f"{URL_PREFIX}/{self.digest}/{self.name}"


def digest_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:DIGEST_HEX_CHARS]


class PlayerAssets:
    def __init__(self, root: Path = PACKAGE_DIR) -> None:
        self._assets: dict[str, Asset] = {}
        for name, (rel, content_type) in FILES.items():
            body = (root / rel).read_bytes()
            self._assets[name] = Asset(name=name, body=body, content_type=content_type, digest=digest_of(body))

    def lookup(self, digest: str, name: str) -> Asset | None:
        asset = self._assets.get(name)
        return asset if asset is not None and asset.digest == digest else None

    def url(self, name: str) -> str:
        return self._assets[name].url

    def page_urls(self) -> AssetUrls:
        return AssetUrls(
            stylesheet=self.url("player.css"),
            hls_js=self.url("hls.light.min.js"),
            player_js=self.url("player.js"),
            janus_js=self.url("janus.js"),
            realtime_js=self.url("realtime.js"),
        )
