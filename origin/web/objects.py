"""Read path for the filesystem backend: `GET`/`HEAD /rooms/{path}` (the nginx edge proxies its misses here).

Serves the stored Content-Type and Cache-Control with ETag, Last-Modified, `Accept-Ranges: bytes`, single
byte ranges (206/416, RFC 9110 §14) and conditional GETs (304 on If-None-Match / If-Modified-Since, so the
edge can revalidate). Anything that is not a valid stored key — missing, invalid, traversal, percent-encoded
(keys never need encoding, so only canonical URLs are served) — is a 404 with the short error TTL; a disk
failure is a 503 (both in the one error shape, web/errors.py). File work runs in the threadpool; large files
are streamed in chunks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from typing import BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from origin.contract.cache_policy import ERROR_CACHE_CONTROL
from origin.errors import StorageError, ValidationError
from origin.storage.filesystem import FilesystemStorage
from origin.web import errors

logger = logging.getLogger(__name__)

URL_PREFIX = "/rooms"
KEY_PREFIX = "rooms/"
STREAM_THRESHOLD_BYTES = 1024 * 1024  # objects up to this size are read whole; larger ones are streamed
STREAM_CHUNK_BYTES = 256 * 1024
_RANGE_PATTERN = re.compile(r"^bytes=(\d*)-(\d*)$", re.IGNORECASE)


class RangeNotSatisfiable(ValidationError):
    """No byte of the asked range exists: the read path answers 416 with `Content-Range: bytes */size`."""


@dataclass(frozen=True, kw_only=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range `header` asks of a `size`-byte object (pure; RFC 9110 §14.1.2).

    None means "send the whole object": no header, another unit, several ranges, or a malformed one
    (RFC 9110 lets a server ignore Range). Raises RangeNotSatisfiable when no byte of it exists.
    """
    if not header:
        return None
    match = _RANGE_PATTERN.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        if last and int(last) < start:
            return None
        if start >= size:
            raise RangeNotSatisfiable(f"range {header!r} starts beyond {size} bytes")
        end = min(int(last), size - 1) if last else size - 1
        return ByteRange(start=start, end=end)
    if not last:
        return None  # "bytes=-"
    suffix = int(last)
    if suffix == 0 or size == 0:
        raise RangeNotSatisfiable(f"range {header!r} selects no byte of {size}")
    return ByteRange(start=max(0, size - suffix), end=size - 1)


def _etag_matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    tags = (t.strip().removeprefix("W/") for t in if_none_match.split(","))
    return etag in tags


def _not_modified_since(if_modified_since: str, mtime_s: float) -> bool:
    try:
        since = parsedate_to_datetime(if_modified_since).timestamp()
    except (TypeError, ValueError, IndexError):
        return False
    return int(mtime_s) <= since


def _not_found() -> Response:
    return errors.error_response(404, "no such object", headers={"Cache-Control": ERROR_CACHE_CONTROL})


def _read(f: BinaryIO, start: int, length: int) -> bytes:
    f.seek(start)
    return f.read(length)


def _chunks(f: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    try:
        f.seek(start)
        remaining = length
        while remaining > 0:
            chunk = f.read(min(STREAM_CHUNK_BYTES, remaining))
            if not chunk:
                break  # truncated underneath us (the object was replaced, not rewritten in place)
            remaining -= len(chunk)
            yield chunk
    finally:
        f.close()


@dataclass(frozen=True, kw_only=True)
class _Request:
    key: str
    method: str
    range: str | None
    if_range: str | None
    if_none_match: str | None
    if_modified_since: str | None


def _respond(storage: FilesystemStorage, req: _Request) -> Response:
    """Blocking half of the handler (runs in the threadpool)."""
    try:
        found = storage.open_object(req.key)
    except (ValidationError, KeyError):
        return _not_found()
    f = found.file
    assert f is not None
    streaming = False
    try:
        size, headers = found.size, found.headers
        etag = f'"{size:x}-{found.mtime_ns:x}"'
        mtime_s = found.mtime_ns / 1e9
        last_modified = formatdate(mtime_s, usegmt=True)
        common = {
            "Cache-Control": headers.cache_control,
            "ETag": etag,
            "Last-Modified": last_modified,
            "Accept-Ranges": "bytes",
        }
        if req.if_none_match is not None:
            if _etag_matches(req.if_none_match, etag):
                return Response(status_code=304, headers=common)
        elif req.if_modified_since is not None and _not_modified_since(req.if_modified_since, mtime_s):
            return Response(status_code=304, headers=common)
        byte_range: ByteRange | None = None
        if req.method == "GET" and (req.if_range is None or req.if_range.strip() in (etag, last_modified)):
            try:
                byte_range = parse_range(req.range, size)
            except RangeNotSatisfiable:
                return errors.error_response(416, f"the object has {size} bytes", headers={
                    "Content-Range": f"bytes */{size}", "Cache-Control": ERROR_CACHE_CONTROL})  # fmt: skip
        start, length = (byte_range.start, byte_range.length) if byte_range else (0, size)
        start += found.start  # where the object begins in its file (a pack holds many)
        status = 206 if byte_range else 200
        out = {**common, "Content-Length": str(length)}
        if byte_range:
            out["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
        if req.method == "HEAD":
            return Response(status_code=status, headers=out, media_type=headers.content_type)
        if length > STREAM_THRESHOLD_BYTES:
            streaming = True
            return StreamingResponse(
                _chunks(f, start, length), status_code=status, headers=out, media_type=headers.content_type
            )
        body = _read(f, start, length)
        return Response(body, status_code=status, headers=out, media_type=headers.content_type)
    finally:
        if not streaming:
            f.close()


def build_storage_router(storage: FilesystemStorage) -> APIRouter:
    """Router serving `GET`/`HEAD /rooms/{path}` from `storage` (mount it at the app root)."""
    router = APIRouter()

    @router.api_route(URL_PREFIX + "/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def serve_object(request: Request, path: str) -> Response:
        return await serve(storage, request, path)

    return router


async def serve(storage: FilesystemStorage, request: Request, path: str) -> Response:
    """`GET`/`HEAD` of the object at `rooms/{path}`: conditional requests, ranges, the stored headers."""
    raw_path: bytes = request.scope.get("raw_path") or b""
    if b"%" in raw_path or "\\" in path:
        return _not_found()
    req = _Request(
        key=KEY_PREFIX + path,
        method=request.method,
        range=request.headers.get("range"),
        if_range=request.headers.get("if-range"),
        if_none_match=request.headers.get("if-none-match"),
        if_modified_since=request.headers.get("if-modified-since"),
    )
    try:
        return await run_in_threadpool(_respond, storage, req)
    except (StorageError, OSError) as exc:
        logger.warning("serving %s failed: %s", req.key, exc)
        return errors.error_response(503, "storage unavailable", headers={"Cache-Control": ERROR_CACHE_CONTROL})
