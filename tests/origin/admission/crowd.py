"""A crowd of HTTP/1.1 clients on raw asyncio sockets: one connection per request, all at once.

httpx's connection pool spends more CPU per request than the origin does, so a crowd driven through it
measures the client; this sends the bytes a browser would and parses only the status line and JSON body.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, kw_only=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        doc: dict[str, object] = json.loads(self.body)
        return doc


async def request(method: str, url: str, *, timeout_s: float = 30.0) -> Reply:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    try:
        head = (
            f"{method} {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout_s)  # until the server closes
    finally:
        writer.close()
    header_block, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = header_block.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return Reply(status=int(status_line.split()[1]), headers=headers, body=body)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


async def crowd(method: str, url: str, n: int, *, deadline_s: float) -> list[Reply]:
    """`n` concurrent requests; raises TimeoutError if they do not all finish within `deadline_s`."""
    return await asyncio.wait_for(asyncio.gather(*(request(method, url) for _ in range(n))), deadline_s)
