"""Room status for clients (`rooms/{room}/status.json`) and when to publish it (pure).

Clients read status.json from the CDN first (1 s TTL, cache_policy.ObjectKind.STATUS) and call the join
endpoint only while `realtime.open` is true; everyone else goes straight to `hls_url`. See docs/admission.md.

The broadcast state comes from the ingest side through `BroadcastView`; whoever changes it calls
`StatusPublisher.note_change(room, now)` so the document follows within about a second.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

from origin.admission.decision import expected_hls_delay_s
from origin.contract import layout
from origin.rooms import Room

# The broadcast as listeners see it; the broadcast's own lifecycle (with "ending") is origin.broadcast.model.
ListenerState = Literal["idle", "live", "ended"]
DEFAULT_SEGMENT_S = 2.0  # used for the expected HLS delay until a session declares its segment length
STATUS_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class BroadcastInfo:
    state: ListenerState = "idle"  # idle: configured, not on air yet; live: a session is on air; ended: final
    replay_url: str | None = None  # the replay (DVR/VOD) master playlist URL once there is one
    segment_s: float | None = None  # segment length the current/last ingest session declared
    download_url: str | None = None  # player: the whole-broadcast .m4a, once it exists (origin/replay/download.py)


class BroadcastView(Protocol):
    """The ingest side's view of a room's broadcast. Must be cheap (memory or a local read)."""

    def broadcast(self, room: str) -> BroadcastInfo: ...


class IdleBroadcastView:
    """Every room is idle: the view to use until the ingest side provides its own."""

    def broadcast(self, room: str) -> BroadcastInfo:
        return BroadcastInfo()


def hls_url(public_base_url: str, room: str) -> str:
    return f"{public_base_url}/{layout.master_playlist(room)}"


def status_url(public_base_url: str, room: str) -> str:
    return f"{public_base_url}/{layout.status(room)}"


def join_url(api_url: str, room: str) -> str:
    return f"{api_url}/v1/rooms/{room}/listeners"


def hls_delay_for(info: BroadcastInfo) -> float:
    return expected_hls_delay_s(info.segment_s or DEFAULT_SEGMENT_S)


def realtime_open(*, state: ListenerState, cap: int, seats_taken: int) -> bool:
    return state != "ended" and seats_taken < cap


def _iso(now: float) -> str:
    return dt.datetime.fromtimestamp(now, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status_document(
    *,
    room: Room,
    broadcast: BroadcastInfo,
    seats_taken: int,
    hls_recent: int,
    now: float,
    public_base_url: str,
    api_url: str,
) -> dict[str, object]:
    cap = room.realtime_cap
    return {
        "version": STATUS_VERSION,
        "room": room.id,
        "title": room.title,
        "host": room.host,
        "state": broadcast.state,
        "realtime": {
            "open": realtime_open(state=broadcast.state, cap=cap, seats_taken=seats_taken),
            "cap": cap,
            "seats_taken": seats_taken,
            "seats_left": max(0, cap - seats_taken),
        },
        "join_url": join_url(api_url, room.id),
        "hls_url": hls_url(public_base_url, room.id),
        "expected_hls_delay_seconds": hls_delay_for(broadcast),
        "replay_url": broadcast.replay_url,
        "download_url": broadcast.download_url,
        "listeners": {"realtime": seats_taken, "hls_recent": hls_recent},
        "updated_at": _iso(now),
    }


def fingerprint(doc: dict[str, object]) -> str:
    """Everything a client acts on: the document without its timestamp."""
    return json.dumps({k: v for k, v in doc.items() if k != "updated_at"}, sort_keys=True)


def encode(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


@dataclass(kw_only=True)
class _RoomTimes:
    dirty: bool = False
    urgent: bool = False  # the change flips real-time between open and full
    last_write: float = -math.inf  # last publish, or last time another worker held the claim
    last_check: float = -math.inf
    last_activity: float = -math.inf
    fingerprint: str | None = None
    dirty_since: float | None = None  # the oldest change not yet published


@dataclass(kw_only=True)
class PublishSchedule:
    """Which rooms to (re)publish when: at most one write per `min_interval_s` per room.

    A change marks a room dirty; a dirty room is due once `min_interval_s` has passed since its last write,
    so a burst of joins costs one write now and one at most a second later. An urgent change (the room
    just filled up, or a full room freed a seat) waits only `urgent_interval_s`: every stale "open" costs
    join calls at the origin for as long as CDNs serve it. Urgent changes need a seat to change hands, so
    joins alone cause at most one. Rooms active in the last `watch_s` are also re-checked every
    `recheck_s`, catching changes nobody announces (a lease expiring, another worker's joins); a re-check
    whose fingerprint differs makes the room dirty.
    """

    min_interval_s: float = 1.0
    urgent_interval_s: float = 0.25
    recheck_s: float = 1.0
    watch_s: float = 900.0
    _rooms: dict[str, _RoomTimes] = field(default_factory=dict)

    def _times(self, room: str) -> _RoomTimes:
        return self._rooms.setdefault(room, _RoomTimes())

    def _dirty(self, times: _RoomTimes, now: float) -> None:
        times.dirty = True
        if times.dirty_since is None:
            times.dirty_since = now

    def note_change(self, room: str, now: float, *, urgent: bool = False) -> None:
        times = self._times(room)
        self._dirty(times, now)
        times.urgent = times.urgent or urgent
        times.last_activity = max(times.last_activity, now)

    def interval_s(self, room: str) -> float:
        times = self._rooms.get(room)
        return self.urgent_interval_s if times is not None and times.urgent else self.min_interval_s

    def touch(self, room: str, now: float) -> None:
        """Activity that changes nothing yet (a heartbeat): keep watching the room."""
        times = self._times(room)
        times.last_activity = max(times.last_activity, now)

    def due(self, now: float) -> list[str]:
        return [
            room
            for room, t in self._rooms.items()
            if t.dirty and now - t.last_write >= (self.urgent_interval_s if t.urgent else self.min_interval_s)
        ]

    def to_recheck(self, now: float) -> list[str]:
        return [
            room
            for room, t in self._rooms.items()
            if not t.dirty and now - t.last_activity < self.watch_s and now - t.last_check >= self.recheck_s
        ]

    def checked(self, room: str, now: float, fp: str) -> bool:
        """Record a re-check; True (and the room dirty) when the document changed since the last write."""
        times = self._times(room)
        times.last_check = now
        if fp != times.fingerprint:
            self._dirty(times, now)
        return times.dirty

    def published(self, room: str, now: float, fp: str) -> None:
        times = self._times(room)
        times.dirty = times.urgent = False
        times.dirty_since = None
        times.last_write = times.last_check = now
        times.fingerprint = fp

    def pending_age_s(self, now: float) -> float:
        """How long the oldest unpublished change has waited (0 when every room is published)."""
        oldest = min((t.dirty_since for t in self._rooms.values() if t.dirty_since is not None), default=now)
        return max(0.0, now - oldest)

    def deferred(self, room: str, now: float) -> None:
        """Another worker or instance published within the interval: stay dirty, try after the interval."""
        self._times(room).last_write = now

    def forget(self, room: str) -> None:
        self._rooms.pop(room, None)

    def forget_idle(self, now: float) -> list[str]:
        idle = [r for r, t in self._rooms.items() if not t.dirty and now - t.last_activity >= self.watch_s]
        for room in idle:
            del self._rooms[room]
        return idle
