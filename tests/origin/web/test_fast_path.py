"""IngestFastPath: object PUTs reach their handler before any route; everything else reaches the app; errors
take the app's one shape (the real handler behind it is covered end to end by test_ingest.py)."""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from origin.errors import ForbiddenError
from origin.web.ingest import IngestFastPath


def _call(app: IngestFastPath, method: str, path: str) -> tuple[int, bytes]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
                    "headers": [], "app": None}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return int(start["status"]), b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_object_puts_skip_the_app_and_the_rest_reach_it() -> None:
    handled: list[dict[str, str]] = []
    waves: list[dict[str, str]] = []
    inner: list[str] = []

    async def put(request: Request) -> Response:
        handled.append(dict(request.path_params))
        return Response(status_code=201)

    async def wave(request: Request) -> Response:
        waves.append(dict(request.path_params))
        return Response(status_code=201)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        inner.append(f"{scope['method']} {scope['path']}")
        await Response(status_code=299)(scope, receive, send)

    fast = IngestFastPath(app, put=put, wave=wave)
    assert _call(fast, "PUT", "/ingest/launch/20261207t100000z-0a1b2c3d/a64/000042.m4s")[0] == 201
    assert handled == [{"room": "launch", "session": "20261207t100000z-0a1b2c3d", "rendition": "a64",
                        "name": "000042.m4s"}]  # fmt: skip
    assert _call(fast, "PUT", "/ingest/launch/20261207t100000z-0a1b2c3d/000042.m4s")[0] == 201
    assert waves == [{"room": "launch", "session": "20261207t100000z-0a1b2c3d", "name": "000042.m4s"}]
    for method, path in [("PUT", "/ingest/launch/s/a64/stream.mp4"), ("POST", "/ingest/launch/s/start"),
                         ("GET", "/ingest/launch/s/a64/000042.m4s"), ("PUT", "/ingest/launch/s/a64/"),
                         ("PUT", "/ingest/launch/s/a64/x/y"), ("PUT", "/v1/rooms/launch"),
                         ("PUT", "/ingest/launch/s/start"), ("GET", "/ingest/launch/s/000042.m4s")]:  # fmt: skip
        assert _call(fast, method, path)[0] == 299
    assert len(inner) == 8 and len(handled) == 1 and len(waves) == 1


def test_a_refused_put_has_the_one_error_shape_and_is_counted() -> None:
    seen: list[int] = []

    async def put(request: Request) -> Response:
        raise ForbiddenError("ingest token rejected", room="launch")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not reached")

    fast = IngestFastPath(app, put=put, wave=put, on_error=lambda request, status: seen.append(status))
    status, body = _call(fast, "PUT", "/ingest/launch/20261207t100000z-0a1b2c3d/a64/000042.m4s")
    assert (status, json.loads(body)) == (403, {"error": "forbidden", "detail": "ingest token rejected"})
    assert seen == [403]
