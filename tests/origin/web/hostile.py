"""Helpers for the hostile-input tests of issue 14: one origin per module, a client per room, log checks."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from origin.storage.filesystem import FilesystemStorage
from tests.support.origin_server import ADMIN_TOKEN, OriginServer
from tests.support.pusher import new_session_id

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LADDER = {"segment_seconds": 2.0,
          "renditions": [{"name": "a64", "bitrate": 64_000, "channels": 2, "sample_rate": 48_000}]}  # fmt: skip


def token_for(room: str) -> str:
    return f"{room}-ingest-token-0123456789abcdef"


@dataclass(kw_only=True)
class RoomClient:
    """The transcoder's and the operator's calls for one room of a running origin."""

    origin: OriginServer
    room: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(self.room)}"}

    def start(self, session: str | None = None, body: object = None) -> tuple[str, httpx.Response]:
        sid = session or new_session_id()
        url = f"{self.origin.base_url}/ingest/{self.room}/{sid}/start"
        return sid, httpx.post(url, json=LADDER if body is None else body, headers=self.auth, timeout=10)

    def put(self, session: str, name: str, body: bytes, rendition: str = "a64") -> httpx.Response:
        url = f"{self.origin.base_url}/ingest/{self.room}/{session}/{rendition}/{name}"
        return httpx.put(url, content=body, headers=self.auth, timeout=10)

    def get_room(self) -> httpx.Response:
        return httpx.get(f"{self.origin.base_url}/v1/rooms/{self.room}", headers=ADMIN, timeout=10)

    def broadcast_state(self) -> str:
        doc = self.get_room().json()
        return str((doc.get("publishing") or {}).get("state", doc.get("broadcast")))

    def status(self) -> dict[str, object]:
        r = httpx.get(f"{self.origin.base_url}/rooms/{self.room}/status.json", timeout=10)
        return dict(r.json()) if r.status_code == 200 else {}

    def live_playlist(self, rendition: str = "a64") -> str | None:
        r = httpx.get(f"{self.origin.base_url}/rooms/{self.room}/live/{rendition}.m3u8", timeout=10)
        return r.text if r.status_code == 200 else None

    def media_files(self) -> list[str]:
        """The room's stored media objects (`{session}/{rendition}/{name}`), as the storage lists them: small
        immutable objects live in packs, not files of their own."""
        prefix = f"rooms/{self.room}/media/"
        return [key.removeprefix(prefix) for key in FilesystemStorage(self.origin.storage_root).list(prefix)]


def make_room(origin: OriginServer, room: str, **fields: object) -> RoomClient:
    origin.create_room(room, ingest_token=token_for(room), **fields)
    return RoomClient(origin=origin, room=room)


def wait_for(what: str, probe: Callable[[], object], timeout_s: float = 20.0, every_s: float = 0.2) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


class LogWatch:
    """The part of the origin's log written since the last check: no traceback, no ERROR line."""

    def __init__(self, log_path: Path) -> None:
        self.path = log_path
        self.offset = log_path.stat().st_size if log_path.exists() else 0

    def new_text(self) -> str:
        data = self.path.read_bytes()
        text, self.offset = data[self.offset :].decode(errors="replace"), len(data)
        return text

    def assert_clean(self) -> None:
        text = self.new_text()
        bad = [line for line in text.splitlines() if "Traceback" in line or "[ERROR]" in line or " ERROR " in line]
        assert not bad, "origin logged errors:\n" + text[-4000:]


def raw_request(base_url: str, head: str, body: bytes = b"", *, read_timeout_s: float = 5.0) -> bytes:
    """Send a request's head (and maybe part of a body) on a plain socket; return what the server answers."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout_s) as sock:
        sock.sendall(head.encode() + body)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except TimeoutError:
            pass
        return b"".join(chunks)


def status_of(response: bytes) -> int:
    """The status code of a raw HTTP/1.1 answer (0: none)."""
    line = response.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0
