"""Janus HTTP API client (the REST transport, janus.transport.http): one session, one plugin handle, replies
validated like any other external input.

    POST {url}                      {"janus": "create"}                    → session id
    POST {url}/{session}            {"janus": "attach", "plugin": …}       → handle id
    POST {url}/{session}/{handle}   {"janus": "message", "body": {…}}      → plugindata.data (synchronous requests)

The session is created lazily and re-created when Janus forgets it (error 458/459: session timed out, or
Janus restarted); each request then retries once. Janus drops a session idle for `session_timeout` (60 s by
default); the reconcile loop's periodic calls keep the busy worker's session alive, an idle worker pays one
extra round trip. Thread-safe: httpx.Client is, and the session ids sit behind a lock.

Secrets: `apisecret` (Janus' api_secret) travels in the JSON body, never in a URL; nothing here logs bodies.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from origin.admission.sfu.base import SfuProtocolError, SfuUnavailableError

logger = logging.getLogger(__name__)

SFU = "janus"
AUDIOBRIDGE = "janus.plugin.audiobridge"
MAX_REPLY_BYTES = 4 * 1024 * 1024
SESSION_GONE = frozenset({458, 459})  # JANUS_ERROR_SESSION_NOT_FOUND, JANUS_ERROR_HANDLE_NOT_FOUND


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)


class JanusErrorBody(_Model):
    code: int
    reason: str = Field("", max_length=2000)


class PluginData(_Model):
    plugin: str
    data: dict[str, Any]


class JanusIdData(_Model):
    id: int = Field(ge=1)


class JanusReply(_Model):
    janus: Literal["success", "error", "ack", "event", "server_info"]
    transaction: str | None = None
    data: dict[str, Any] | None = None
    plugindata: PluginData | None = None
    error: JanusErrorBody | None = None


class JanusPluginError(SfuProtocolError):
    """The plugin refused the request: `code` is its error code (AudioBridge: 485 no such room, 489 …)."""


class JanusClient:
    def __init__(
        self,
        *,
        url: str,
        api_secret: str = "",
        timeout_s: float = 2.0,
        plugin: str = AUDIOBRIDGE,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._api_secret = api_secret
        self.plugin = plugin
        self._http = httpx.Client(timeout=timeout_s, transport=transport, headers={"Accept": "application/json"})
        self._lock = threading.Lock()
        self._session: int | None = None
        self._handle: int | None = None

    # -- transport ----------------------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> JanusReply:
        body = {**body, "transaction": secrets.token_hex(8)}
        if self._api_secret:
            body["apisecret"] = self._api_secret
        try:
            response = self._http.post(self.url + path, content=json.dumps(body).encode(),
                                       headers={"Content-Type": "application/json"})  # fmt: skip
        except httpx.HTTPError as exc:
            raise SfuUnavailableError(f"{type(exc).__name__} calling the HTTP API: {exc}", sfu=SFU) from exc
        if response.status_code >= 500:
            raise SfuUnavailableError(f"HTTP {response.status_code} from the HTTP API", sfu=SFU)
        if response.status_code != 200:
            raise SfuProtocolError(f"HTTP {response.status_code} from the HTTP API", sfu=SFU)
        if len(response.content) > MAX_REPLY_BYTES:
            raise SfuProtocolError(f"reply larger than {MAX_REPLY_BYTES} bytes", sfu=SFU)
        try:
            reply = JanusReply.model_validate_json(response.content)
        except ValidationError as exc:
            raise SfuProtocolError(f"invalid reply: {_first_error(exc)}", sfu=SFU) from exc
        if reply.transaction != body["transaction"]:
            raise SfuProtocolError("reply for another transaction", sfu=SFU)
        return reply

    def _id(self, reply: JanusReply, what: str) -> int:
        if reply.janus != "success" or reply.data is None:
            raise _reply_error(reply, what)
        try:
            return JanusIdData.model_validate(reply.data).id
        except ValidationError as exc:
            raise SfuProtocolError(f"{what}: invalid id: {_first_error(exc)}", sfu=SFU) from exc

    # -- session ------------------------------------------------------------------------------------------

    def _ensure_handle(self) -> tuple[int, int]:
        with self._lock:
            if self._session is not None and self._handle is not None:
                return self._session, self._handle
        session = self._id(self._post("", {"janus": "create"}), "create session")
        handle = self._id(self._post(f"/{session}", {"janus": "attach", "plugin": self.plugin}), "attach")
        with self._lock:
            self._session, self._handle = session, handle
        logger.debug("janus: session %d, %s handle %d", session, self.plugin, handle)
        return session, handle

    def _forget(self, session: int) -> None:
        with self._lock:
            if self._session == session:
                self._session = self._handle = None

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous plugin request; returns the plugin's `data`. JanusPluginError when it has `error_code`."""
        for attempt in (1, 2):
            session, handle = self._ensure_handle()
            reply = self._post(f"/{session}/{handle}", {"janus": "message", "body": body})
            if reply.janus == "error" and reply.error is not None and reply.error.code in SESSION_GONE:
                self._forget(session)  # timed out or Janus restarted: a new session, once
                if attempt == 1:
                    continue
            if reply.janus != "success" or reply.plugindata is None:
                raise _reply_error(reply, str(body.get("request")))
            if reply.plugindata.plugin != self.plugin:
                raise SfuProtocolError(f"reply from plugin {reply.plugindata.plugin!r}", sfu=SFU)
            data = reply.plugindata.data
            code = data.get("error_code")
            if code is not None:
                if not isinstance(code, int):
                    raise SfuProtocolError("non-integer error_code", sfu=SFU)
                reason = str(data.get("error", ""))[:300]
                raise JanusPluginError(f"{body.get('request')}: {code} {reason}", sfu=SFU, code=code)
            return data
        raise AssertionError("unreachable")

    def info(self) -> dict[str, Any]:
        """GET {url}/info: the server's description (version, plugins). Raises SfuUnavailableError."""
        try:
            response = self._http.get(self.url + "/info")
            response.raise_for_status()
            doc = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SfuUnavailableError(f"info: {exc}", sfu=SFU) from exc
        if not isinstance(doc, dict):
            raise SfuProtocolError("info: not a JSON object", sfu=SFU)
        return doc

    def close(self) -> None:
        self._http.close()


def _reply_error(reply: JanusReply, what: str) -> SfuProtocolError | SfuUnavailableError:
    if reply.error is not None:
        message = f"{what}: error {reply.error.code} {reply.error.reason[:300]}"
        if reply.error.code in SESSION_GONE:
            return SfuUnavailableError(message, sfu=SFU)
        return SfuProtocolError(message, sfu=SFU, code=reply.error.code)
    return SfuProtocolError(f"{what}: unexpected reply {reply.janus!r}", sfu=SFU)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
