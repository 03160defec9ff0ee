"""Per-room publishing figures that only the room's owner knows, shared with the host's other workers.

The owner (the worker holding the room's owner lock) sees every publish latency and every live-edge
advance; a request for `/v1/rooms` or `/metrics` may reach any worker. So the owner keeps a rolling window
of the room's latencies (`LatencyWindow`, pure) and, at most every FLUSH_INTERVAL_S while the live edge
advances, writes a small `PublishStats` file in the host's stats directory (`{stats_dir}/{room}.json`, on
tmpfs: origin/coordination.py stats_dir; replaced atomically, not fsynced: these are figures, not truth).
Readers take it from there. A new owner starts an empty window; the file is deleted with the room's state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from origin.contract import ids

log = logging.getLogger(__name__)

STATS_NAME = "publish-stats.json"
WINDOW_S = 60.0  # the rolling window of the per-room publish latency figures
WINDOW_MAX_SAMPLES = 4096  # per room; a room publishing faster keeps its newest samples only
# A room passes about once per segment; a file replace per pass was ~7 % of the origin's GIL time. The figures are
# read by people and by alerts with a 10 s `for:`: half a second stale is fine.
FLUSH_INTERVAL_S = 0.5


@dataclass(frozen=True, kw_only=True)
class PublishStats:
    at: float  # when the owner wrote these figures (Unix seconds)
    live_edge_at: float | None  # when the room's live playlists last advanced in storage
    p50_s: float | None  # publish latency over the last `window_s` (received → playlist naming it written)
    p99_s: float | None
    samples: int  # latencies in the window
    window_s: float
    owner_pid: int

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))  # flat: asdict's deep copy cost more than the rest

    @classmethod
    def from_json(cls, raw: str | bytes) -> PublishStats:
        doc = json.loads(raw)
        return cls(
            at=float(doc["at"]),
            live_edge_at=None if doc.get("live_edge_at") is None else float(doc["live_edge_at"]),
            p50_s=None if doc.get("p50_s") is None else float(doc["p50_s"]),
            p99_s=None if doc.get("p99_s") is None else float(doc["p99_s"]),
            samples=int(doc["samples"]),
            window_s=float(doc["window_s"]),
            owner_pid=int(doc["owner_pid"]),
        )


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of already sorted values (p99 of 60 samples is the largest but none)."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


class LatencyWindow:
    """Latencies of the last `window_s` seconds (pure: `now` is an argument)."""

    def __init__(self, *, window_s: float = WINDOW_S, max_samples: int = WINDOW_MAX_SAMPLES) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=max_samples)

    def add(self, now: float, latency_s: float) -> None:
        self._samples.append((now, max(0.0, latency_s)))

    def _trim(self, now: float) -> None:
        while self._samples and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()

    def figures(self, now: float) -> tuple[float | None, float | None, int]:
        """(p50, p99, samples) over the window ending at `now`."""
        self._trim(now)
        if not self._samples:
            return None, None, 0
        values = sorted(v for _, v in self._samples)
        return quantile(values, 0.5), quantile(values, 0.99), len(values)


class StatsStore(Protocol):
    def write(self, room: str, stats: PublishStats) -> None: ...

    def read(self, room: str) -> PublishStats | None: ...

    def delete(self, room: str) -> None: ...


class FileStatsStore:
    """`{root}/{room}.json`, one small file per room, replaced atomically (a temp file renamed over it)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, room: str) -> Path:
        return self.root / f"{ids.room_id(room)}.json"

    def write(self, room: str, stats: PublishStats) -> None:
        path = self._path(room)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp.write_text(stats.to_json())
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("room=%s publish stats not written: %s", room, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()

    def read(self, room: str) -> PublishStats | None:
        try:
            raw = self._path(room).read_bytes()
        except OSError:
            return None
        try:
            return PublishStats.from_json(raw)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("room=%s unreadable publish stats: %s", room, exc)
            return None

    def delete(self, room: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(room).unlink()


class MemoryStatsStore:
    """The twin of FileStatsStore for unit tests."""

    def __init__(self) -> None:
        self.data: dict[str, PublishStats] = {}

    def write(self, room: str, stats: PublishStats) -> None:
        self.data[room] = stats

    def read(self, room: str) -> PublishStats | None:
        return self.data.get(room)

    def delete(self, room: str) -> None:
        self.data.pop(room, None)


@dataclass(kw_only=True)
class _Owned:
    window: LatencyWindow
    live_edge_at: float | None = None
    dirty: bool = False
    flushed_at: float = float("-inf")


class RoomStatsTracker:
    """The owner's side: observe latencies and edge advances, `flush` once per pass. Thread-safe (passes of
    different rooms run on different threads)."""

    def __init__(self, store: StatsStore, *, window_s: float = WINDOW_S,
                 flush_interval_s: float = FLUSH_INTERVAL_S) -> None:  # fmt: skip
        self.store = store
        self.window_s = window_s
        self.flush_interval_s = flush_interval_s
        self._rooms: dict[str, _Owned] = {}
        self._lock = threading.Lock()

    def _owned(self, room: str) -> _Owned:
        owned = self._rooms.get(room)
        if owned is None:
            owned = self._rooms[room] = _Owned(window=LatencyWindow(window_s=self.window_s))
        return owned

    def observe(self, room: str, latency_s: float, now: float) -> None:
        with self._lock:
            self._owned(room).window.add(now, latency_s)

    def edge_advanced(self, room: str, at: float) -> None:
        with self._lock:
            owned = self._owned(room)
            owned.live_edge_at, owned.dirty = at, True

    def flush(self, room: str, now: float, *, final: bool = False) -> None:
        """Write the room's figures if its edge advanced since the last write and that write is
        `flush_interval_s` old (a later pass writes what waits); `final` writes now and forgets the room."""
        with self._lock:
            owned = self._rooms.pop(room, None) if final else self._rooms.get(room)
            if owned is None or not (final or (owned.dirty and now - owned.flushed_at >= self.flush_interval_s)):
                return
            owned.dirty, owned.flushed_at = False, now
            p50, p99, n = owned.window.figures(now)
            stats = PublishStats(at=now, live_edge_at=owned.live_edge_at, p50_s=p50, p99_s=p99, samples=n,
                                 window_s=self.window_s, owner_pid=os.getpid())  # fmt: skip
        self.store.write(room, stats)

    def rooms(self) -> int:
        with self._lock:
            return len(self._rooms)
