"""The transcoder's own calls to the origin (docs/ingest.md): `start` before ffmpeg, each rendition's init
while it runs (inits.py), `end` after it. ffmpeg itself PUTs the media segments.
Error mapping: connection failures, timeouts and 5xx → OriginUnavailableError (the supervisor backs off
and retries); 4xx → IngestRejectedError (fatal; 409 means the broadcast ended or the session id was reused).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx

from transcoder.errors import IngestRejectedError, OriginUnavailableError
from transcoder.ladder import Rendition, start_body

log = logging.getLogger(__name__)

END_REASONS = frozenset({"eos", "signal", "crash"})


class IngestClient:
    def __init__(
        self,
        *,
        origin_url: str,
        room: str,
        token: str,
        timeout_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.room = room
        self._base = origin_url.rstrip("/")
        self._client = httpx.Client(
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_seconds,
            transport=transport,
            trust_env=False,  # the origin is addressed directly; no proxy from the environment
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> IngestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def session_url(self, session: str) -> str:
        return f"{self._base}/ingest/{self.room}/{session}"

    def start(
        self, session: str, ladder: Sequence[Rendition], segment_seconds: float, part_seconds: float | None = None
    ) -> None:
        """`POST …/start` with the ladder; raises IngestError subclasses."""
        self._post(session, "start", start_body(ladder, segment_seconds, part_seconds))

    def end(self, session: str, reason: str) -> None:
        """`POST …/end` with the reason (eos | signal | crash); raises IngestError subclasses."""
        if reason not in END_REASONS:
            raise ValueError(f"end reason must be one of {sorted(END_REASONS)}, got {reason!r}")
        self._post(session, "end", {"reason": reason})

    def put_object(self, session: str, rendition: str, name: str, body: bytes) -> None:
        """`PUT …/{rendition}/{name}` (an init segment); raises IngestError subclasses."""
        self._send(session, f"{rendition}/{name}", "PUT", content=body,
                   headers={"Content-Type": "application/octet-stream"})  # fmt: skip

    def _post(self, session: str, call: str, body: dict[str, Any]) -> None:
        self._send(session, call, "POST", json=body)

    def _send(self, session: str, call: str, method: str, **request: Any) -> None:
        url = f"{self.session_url(session)}/{call}"
        try:
            response = self._client.request(method, url, **request)
        except httpx.TimeoutException as exc:
            raise OriginUnavailableError(
                f"{call}: origin timed out ({url})", url=url, room=self.room, session=session
            ) from exc
        except httpx.TransportError as exc:
            raise OriginUnavailableError(
                f"{call}: cannot reach the origin at {url}: {exc}", url=url, room=self.room, session=session
            ) from exc
        if response.is_success:
            log.info("room %s: session %s %s → %d", self.room, session, call, response.status_code)
            return
        detail = _detail(response)
        status = response.status_code
        if status >= 500:
            raise OriginUnavailableError(
                f"{call}: origin error {status} at {url}{detail}",
                url=url, status_code=status, room=self.room, session=session,
            )
        hint = {
            401: "the origin wants an ingest token (--token / SPILLWAY_INGEST_TOKEN)",
            403: "the origin rejected the ingest token",
            404: "unknown room or session at the origin",
            409: "the room's broadcast has ended, or the session id was used before",
        }.get(status, "the origin rejected the request")
        raise IngestRejectedError(
            f"{call}: {hint} (HTTP {status} at {url}){detail}",
            url=url, status_code=status, room=self.room, session=session,
        )


def _detail(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return f": {text[:200]}" if text else ""
