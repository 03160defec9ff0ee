"""Who is speaking in a Janus AudioBridge room → speaker turns in the broadcast's timed metadata.

The AudioBridge (created with `audiolevel_event`, janus.py) averages each participant's RTP audio level
over TALK_PACKETS packets and tells every participant of the room "talking" / "stopped-talking" with the
participant's id. So the origin joins each room it publishes as a silent observer (a handle that never sets
up media: the reconciler leaves it alone; its id is derived, naming.py), long-polls its Janus session
(`GET /janus/{session}?maxev=…`, the HTTP transport's event channel) and turns the events into speaker
on/off requests (`EventService.record`), names from the participants' `display`.

A turn is stamped at the event's arrival minus one detection window (Janus decides at the end of a window).
`TalkFold` is the pure part; `JanusTalkWatcher` the I/O (one session per worker, one handle per room it owns).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from origin.admission.sfu.naming import RoomKeys, janus_room_id
from origin.broadcast.timed import MAX_NAME_CHARS, EventKind, EventRequest
from origin.errors import OriginError

log = logging.getLogger(__name__)

TALK_PACKETS = 25  # audio_active_packets: 25 × 20 ms = a decision every 0.5 s (Janus' default is 2 s)
TALK_LEVEL_DBOV = 35  # audio_level_average: average level below this (0 = loudest, 127 = silence) is talking
TALK_WINDOW_S = TALK_PACKETS * 0.020
OBSERVER_DISPLAY = "spillway-observer"
POLL_EVENTS = 16
SYNC_S = 2.0
MAX_EVENT_BYTES = 1024 * 1024


def display_name(raw: object, participant: int) -> str:
    """A participant's display as a speaker name: printable, bounded, never empty."""
    text = raw if isinstance(raw, str) else ""
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Zl", "Zp")).strip()
    return text[:MAX_NAME_CHARS] or f"Speaker {participant % 1000}"


@dataclass(kw_only=True)
class TalkFold:
    """One room's participants and who talks, from the AudioBridge's events (pure; time passed in)."""

    observer: int
    names: dict[int, str] = field(default_factory=dict)
    talking: set[int] = field(default_factory=set)

    def event(self, data: dict[str, Any], now: float) -> list[EventRequest]:
        out: list[EventRequest] = []
        for p in data.get("participants") or []:
            if isinstance(p, dict) and isinstance(p.get("id"), int) and p["id"] != self.observer:
                self.names[p["id"]] = display_name(p.get("display"), p["id"])
        kind = data.get("audiobridge")
        pid = data.get("id")
        if kind in ("talking", "stopped-talking") and isinstance(pid, int) and pid != self.observer:
            out += self._turn(pid, kind == "talking", now - TALK_WINDOW_S)
        for key in ("leaving", "kicked"):
            gone = data.get(key)
            if isinstance(gone, int):
                out += self._turn(gone, False, now)
        return out

    def _turn(self, pid: int, on: bool, at: float) -> list[EventRequest]:
        if on == (pid in self.talking):
            return []
        (self.talking.add if on else self.talking.discard)(pid)
        name = self.names.get(pid) or display_name(None, pid)
        return [EventRequest(kind=EventKind.SPEAKER, on=on, speaker=name, at=at)]


class JanusTalkWatcher:
    """Keeps an observer in the AudioBridge room of every room `rooms()` names; records its talking events."""

    def __init__(
        self, *, url: str, room_keys: RoomKeys, rooms: Callable[[], Iterable[str]],
        record: Callable[[str, EventRequest], object], clock: Callable[[], float], timeout_s: float = 5.0,
    ) -> None:  # fmt: skip
        self.url = url.rstrip("/")
        self.room_keys = room_keys
        self.rooms = rooms
        self.record = record
        self.clock = clock
        self.timeout_s = timeout_s
        self._handles: dict[int, tuple[str, TalkFold]] = {}  # handle id -> (room, fold)
        self._by_room: dict[str, int] = {}

    async def run(self) -> None:
        """Until cancelled; a failed session (Janus down or restarted) is re-created after a pause."""
        while True:
            try:
                async with httpx.AsyncClient(timeout=self.timeout_s) as http:
                    await self._session(http)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.warning("room=(all) Janus talk events unavailable (%s): retrying", exc)
            self._handles.clear()
            self._by_room.clear()
            await asyncio.sleep(SYNC_S)

    async def _post(self, http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await http.post(self.url + path, content=json.dumps({**body, "transaction": secrets.token_hex(8)}))
        r.raise_for_status()
        doc = r.json()
        if not isinstance(doc, dict) or doc.get("janus") not in ("success", "ack"):
            raise ValueError(f"Janus answered {str(doc)[:200]}")
        return doc

    async def _session(self, http: httpx.AsyncClient) -> None:
        session = int((await self._post(http, "", {"janus": "create"}))["data"]["id"])
        poll = asyncio.create_task(self._poll(http, session))
        try:
            while not poll.done():
                await self._sync(http, session)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(poll), SYNC_S)
            poll.result()
        finally:
            poll.cancel()
            with contextlib.suppress(BaseException):
                await poll

    async def _sync(self, http: httpx.AsyncClient, session: int) -> None:
        wanted = set(self.rooms())
        for room in sorted(wanted - set(self._by_room)):
            attached = await self._post(http, f"/{session}", {"janus": "attach", "plugin": "janus.plugin.audiobridge"})
            handle = int(attached["data"]["id"])
            observer = self.room_keys.observer_id(room)
            self._handles[handle] = (room, TalkFold(observer=observer))
            self._by_room[room] = handle
            body = {"request": "join", "room": janus_room_id(room), "id": observer, "display": OBSERVER_DISPLAY,
                    "token": self.room_keys.speaker_token(room), "muted": True}  # fmt: skip
            await self._post(http, f"/{session}/{handle}", {"janus": "message", "body": body})
            log.info("room=%s listening to the AudioBridge's talking events", room)
        for room in sorted(set(self._by_room) - wanted):
            handle = self._by_room.pop(room)
            self._handles.pop(handle, None)
            with contextlib.suppress(httpx.HTTPError, ValueError):
                await self._post(http, f"/{session}/{handle}", {"janus": "detach"})

    async def _poll(self, http: httpx.AsyncClient, session: int) -> None:
        while True:
            r = await http.get(f"{self.url}/{session}", params={"maxev": POLL_EVENTS}, timeout=self.timeout_s + 35)
            r.raise_for_status()
            if len(r.content) > MAX_EVENT_BYTES:
                raise ValueError("Janus event batch too large")
            doc = r.json()
            for event in doc if isinstance(doc, list) else [doc]:
                await self._dispatch(event)

    async def _dispatch(self, event: object) -> None:
        if not isinstance(event, dict):
            return
        if event.get("janus") == "error" and (event.get("error") or {}).get("code") in (458, 459):
            raise ValueError("Janus session gone")
        target = self._handles.get(event.get("sender"))  # type: ignore[arg-type]
        data = ((event.get("plugindata") or {}).get("data")) if event.get("janus") == "event" else None
        if target is None or not isinstance(data, dict):
            return
        room, fold = target
        if data.get("error_code"):
            log.warning("room=%s AudioBridge refused the observer: %s %s", room, data.get("error_code"),
                        str(data.get("error"))[:200])  # fmt: skip
            return
        for request in fold.event(data, self.clock()):
            try:
                await asyncio.to_thread(self.record, room, request)
            except OriginError as exc:
                log.info("room=%s speaker event not recorded: %s", room, exc)
