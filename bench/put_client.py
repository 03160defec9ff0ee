"""A minimal HTTP/1.1 PUT client for the origin benchmark (not a test).

aiohttp cost ~1 ms of CPU per PUT here (measured: 0.3 of a core at 290 PUTs/s), so at 900 PUTs/s the load
generator alone would take about half of the 2-core machine it shares with the origin it measures. This client
writes one prebuilt request per PUT from an asyncio Protocol and reads back only the status line and the body's
length. It opens a TCP connection per PUT unless asked to keep one per caller (the transcoder's uploads keep one
per rendition).

`fire` is what ffmpeg 5.1's hls muxer did when it uploaded the segments itself (until 2026-12-08; measured
against a server that delays its answer): a chunked PUT with `Connection: close` (`-http_persistent 0`), and the
connection closed as soon as the body is written — ffmpeg did not wait for the 201, so the renditions of a
segment arrived one after another, not one answer apart.
"""

from __future__ import annotations

import asyncio


class PutError(Exception):
    """The connection failed or closed before a whole response arrived."""


class _Exchange(asyncio.Protocol):
    """One connection; each `send` writes a whole request and resolves with the response's status."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[int] | None = None
        self.buffer = b""
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, request: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0 or self.waiter is None or self.waiter.done():
            return
        head = self.buffer[:head_end].lower()
        at = head.find(b"\r\ncontent-length:")
        length = 0
        if at >= 0:
            end = head.find(b"\r\n", at + 2)
            length = int(head[at + 17:end if end >= 0 else None])
        if len(self.buffer) - head_end - 4 >= length:
            self.waiter.set_result(int(self.buffer[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(PutError(str(exc) if exc else "connection closed before the response"))


class PutClient:
    """PUTs to one origin on 127.0.0.1 with a bearer token; `keep_alive` keeps one connection per client."""

    def __init__(self, host: str, port: int, token: str, *, keep_alive: bool) -> None:
        self.host, self.port, self.keep_alive = host, port, keep_alive
        common = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        connection = "keep-alive" if keep_alive else "close"
        self.head = f"{common}Content-Type: application/octet-stream\r\nConnection: {connection}\r\n".encode()
        self.fire_head = f"{common}Connection: close\r\n".encode()  # ffmpeg's headers: no Content-Type
        self.conn: _Exchange | None = None

    async def put(self, path: str, body: bytes, *, headers: bytes = b"", timeout: float = 30.0) -> int:
        if self.conn is None or self.conn.closed:
            _, self.conn = await asyncio.get_running_loop().create_connection(_Exchange, self.host, self.port)
        conn = self.conn
        request = b"PUT %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s" % (path.encode(), self.head, headers,
                                                                         len(body), body)  # fmt: skip
        try:
            async with asyncio.timeout(timeout):
                return await conn.send(request)
        finally:
            if not self.keep_alive:
                self.close()

    async def fire(self, path: str, body: bytes) -> None:
        """One PUT as ffmpeg sends it: a new connection, the chunked body, closed without reading the answer."""
        transport, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, self.host, self.port)
        transport.write(b"PUT %s HTTP/1.1\r\nTransfer-Encoding: chunked\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
                        % (path.encode(), self.fire_head, len(body), body))  # fmt: skip
        transport.close()  # after the buffered bytes are written

    def close(self) -> None:
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()
        self.conn = None
