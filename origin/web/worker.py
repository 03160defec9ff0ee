"""The gunicorn worker class: uvicorn with read deadlines, no proxy-header rewriting, no Server header.

Client addresses behind the edge come from origin/web/client_address.py (validated X-Forwarded-For).
"""

from __future__ import annotations

from typing import Any

from uvicorn.workers import UvicornWorker

from origin.web.protocol import GuardedHttpToolsProtocol


class SpillwayWorker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {  # noqa: RUF012 - uvicorn reads this class attribute
        "loop": "auto",
        "http": GuardedHttpToolsProtocol,
        "proxy_headers": False,
        "server_header": False,
    }
