"""Durable per-room state: sessions, received objects, published segments (SQLite, one file per room).

Several gunicorn workers (and a restarted origin) share it: SQLite in WAL mode serialises writers, and
`room_lock` (an flock the kernel drops when a worker dies) serialises whole publish passes, so media
sequence numbers are assigned and playlists written by one process at a time, in order.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from origin import ids
from origin.errors import StateError

BroadcastState = Literal["idle", "live", "ending", "ended"]
INIT_INDEX = -1  # objects.idx of a rendition's init segment
CONNECTIONS_PER_THREAD = 128

_SCHEMA = """
CREATE TABLE IF NOT EXISTS broadcast (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL,
    started_at REAL,
    ended_at REAL,
    last_change_at REAL NOT NULL,
    master_text TEXT,
    replay_master_text TEXT,
    dirty TEXT NOT NULL DEFAULT '[]',
    last_pass_at REAL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    ordinal INTEGER NOT NULL UNIQUE,
    started_at REAL NOT NULL,
    last_activity_at REAL NOT NULL,
    ended_at REAL,
    end_reason TEXT,
    anchor_pdt REAL,
    segment_seconds REAL NOT NULL,
    ladder TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    session TEXT NOT NULL,
    rendition TEXT NOT NULL,
    idx INTEGER NOT NULL,
    spool TEXT NOT NULL,
    size INTEGER NOT NULL,
    duration_ticks INTEGER NOT NULL,
    base_ticks INTEGER NOT NULL,
    timescale INTEGER,
    channels INTEGER,
    codec TEXT,
    received_at REAL NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0,
    published INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session, rendition, idx)
);
CREATE INDEX IF NOT EXISTS objects_pending ON objects (uploaded, received_at);
CREATE TABLE IF NOT EXISTS sealed (
    session TEXT NOT NULL,
    rendition TEXT NOT NULL,
    PRIMARY KEY (session, rendition)
);
CREATE TABLE IF NOT EXISTS published (
    rendition TEXT NOT NULL,
    msn INTEGER NOT NULL,
    session TEXT NOT NULL,
    idx INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    pdt REAL NOT NULL,
    discontinuity INTEGER NOT NULL,
    size INTEGER NOT NULL,
    received_at REAL NOT NULL,
    filler INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rendition, msn)
);
"""


@dataclass(frozen=True, kw_only=True)
class RenditionSpec:
    name: str
    bitrate: int  # nominal bits per second
    channels: int
    sample_rate: int


@dataclass(frozen=True, kw_only=True)
class SessionRow:
    id: str
    ordinal: int
    started_at: float
    last_activity_at: float
    ended_at: float | None
    end_reason: str | None
    anchor_pdt: float | None
    segment_seconds: float
    ladder: tuple[RenditionSpec, ...]

    def rendition(self, name: str) -> RenditionSpec | None:
        return next((r for r in self.ladder if r.name == name), None)


@dataclass(frozen=True, kw_only=True)
class ObjectRow:
    session: str
    rendition: str
    idx: int
    spool: str
    size: int
    duration_ticks: int
    base_ticks: int
    timescale: int | None
    received_at: float
    uploaded: bool


@dataclass(frozen=True, kw_only=True)
class PublishedRow:
    rendition: str
    msn: int
    session: str
    idx: int
    duration_s: float
    pdt: float
    discontinuity: bool
    size: int
    received_at: float
    filler: bool = False  # origin-made silence/slate, not received from a transcoder


class StateStore:
    """Paths of every room's state under one directory."""

    def __init__(self, root: Path, *, connections_per_thread: int = CONNECTIONS_PER_THREAD) -> None:
        self.root = root
        (root / "rooms").mkdir(parents=True, exist_ok=True)
        (root / "spool").mkdir(parents=True, exist_ok=True)
        self._cache_size = connections_per_thread
        self._local = threading.local()

    def db_path(self, room: str) -> Path:
        return self.root / "rooms" / f"{ids.room_id(room)}.sqlite"

    def spool_dir(self, room: str) -> Path:
        return self.root / "spool" / ids.room_id(room)

    def known_rooms(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "rooms").glob("*.sqlite") if ids.ROOM_ID_PATTERN.match(p.stem))

    @contextlib.contextmanager
    def room_lock(self, room: str) -> Iterator[None]:
        """Exclusive across processes and threads; released by the kernel if the holder dies."""
        path = self.root / "rooms" / f"{ids.room_id(room)}.lock"
        with open(path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def open(self, room: str) -> Iterator[RoomDb]:
        """A connection to the room's database, cached per thread (opening and closing a WAL database
        costs a checkpoint; the pump scheduler keeps each room on one thread so the cache hits)."""
        cache: OrderedDict[str, sqlite3.Connection] | None = getattr(self._local, "conns", None)
        if cache is None:
            cache = self._local.conns = OrderedDict()
        conn = cache.pop(room, None)
        if conn is None:
            conn = sqlite3.connect(self.db_path(room), timeout=30.0, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
        try:
            yield RoomDb(conn, room)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            cache[room] = conn
            while len(cache) > self._cache_size:
                _, old = cache.popitem(last=False)
                old.close()


class RoomDb:
    def __init__(self, conn: sqlite3.Connection, room: str) -> None:
        self.conn = conn
        self.room = room

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- broadcast ---------------------------------------------------------------------------------
    def broadcast(self) -> tuple[BroadcastState, float | None, float | None]:
        row = self.conn.execute("SELECT state, started_at, ended_at FROM broadcast WHERE id = 1").fetchone()
        if row is None:
            return "idle", None, None
        return row[0], row[1], row[2]

    def set_broadcast(self, state: BroadcastState, now: float) -> None:
        self.conn.execute(
            "INSERT INTO broadcast (id, state, started_at, ended_at, last_change_at) VALUES (1, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET state = excluded.state, last_change_at = excluded.last_change_at, "
            "started_at = COALESCE(broadcast.started_at, excluded.started_at), "
            "ended_at = CASE WHEN excluded.state = 'ended' THEN excluded.ended_at ELSE broadcast.ended_at END",
            (state, now if state == "live" else None, now if state == "ended" else None, now),
        )

    def master_texts(self) -> tuple[str | None, str | None]:
        row = self.conn.execute("SELECT master_text, replay_master_text FROM broadcast WHERE id = 1").fetchone()
        return (row[0], row[1]) if row else (None, None)

    def set_master_texts(self, master: str, replay_master: str) -> None:
        self.conn.execute(
            "UPDATE broadcast SET master_text = ?, replay_master_text = ? WHERE id = 1", (master, replay_master)
        )

    def last_pass_at(self) -> float | None:
        row = self.conn.execute("SELECT last_pass_at FROM broadcast WHERE id = 1").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def set_last_pass_at(self, now: float) -> None:
        self.conn.execute("UPDATE broadcast SET last_pass_at = ? WHERE id = 1", (now,))

    def dirty_renditions(self) -> set[str]:
        row = self.conn.execute("SELECT dirty FROM broadcast WHERE id = 1").fetchone()
        return set(json.loads(row[0])) if row else set()

    def set_dirty_renditions(self, renditions: set[str]) -> None:
        self.conn.execute("UPDATE broadcast SET dirty = ? WHERE id = 1", (json.dumps(sorted(renditions)),))

    # -- sessions ----------------------------------------------------------------------------------
    def sessions(self) -> list[SessionRow]:
        rows = self.conn.execute(
            "SELECT id, ordinal, started_at, last_activity_at, ended_at, end_reason, anchor_pdt, "
            "segment_seconds, ladder FROM sessions ORDER BY ordinal"
        ).fetchall()
        return [
            SessionRow(
                id=r[0],
                ordinal=r[1],
                started_at=r[2],
                last_activity_at=r[3],
                ended_at=r[4],
                end_reason=r[5],
                anchor_pdt=r[6],
                segment_seconds=r[7],
                ladder=_ladder(r[8]),
            )
            for r in rows
        ]

    def session(self, session_id: str) -> SessionRow | None:
        return next((s for s in self.sessions() if s.id == session_id), None)

    def start_session(
        self, session_id: str, ladder: tuple[RenditionSpec, ...], segment_seconds: float, now: float
    ) -> bool:
        """Open a session, superseding any open one. Returns False when it already existed (idempotent retry)."""
        with self.transaction() as c:
            state, _, _ = self.broadcast()
            if state in ("ending", "ended"):
                raise StateError(f"room {self.room!r} broadcast has ended", room=self.room)
            existing = self.session(session_id)
            if existing is not None:
                if existing.ended_at is not None:
                    raise StateError(f"session {session_id!r} already ended; use a new session id", room=self.room)
                return False
            c.execute("UPDATE sessions SET ended_at = ?, end_reason = 'superseded' WHERE ended_at IS NULL", (now,))
            ordinal = c.execute("SELECT COALESCE(MAX(ordinal), 0) + 1 FROM sessions").fetchone()[0]
            c.execute(
                "INSERT INTO sessions (id, ordinal, started_at, last_activity_at, segment_seconds, ladder) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    ordinal,
                    now,
                    now,
                    segment_seconds,
                    json.dumps([r.__dict__ for r in ladder]),
                ),
            )
            if state == "idle":
                self.set_broadcast("live", now)
            return True

    def end_session(self, session_id: str, reason: str, now: float) -> None:
        with self.transaction() as c:
            c.execute(
                "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
                (now, reason, session_id),
            )

    def set_anchor(self, session_id: str, anchor: float) -> None:
        self.conn.execute(
            "UPDATE sessions SET anchor_pdt = ? WHERE id = ? AND anchor_pdt IS NULL", (anchor, session_id)
        )

    # -- objects -----------------------------------------------------------------------------------
    def record_object(
        self,
        *,
        session_id: str,
        rendition: str,
        idx: int,
        spool: str,
        size: int,
        duration_ticks: int,
        base_ticks: int,
        timescale: int | None,
        channels: int | None,
        codec: str | None,
        now: float,
        accept_after_end_s: float,
    ) -> bool:
        """Record a spooled object. Returns False for an identical repeat (the caller drops its spool file)."""
        with self.transaction() as c:
            state, _, _ = self.broadcast()
            if state in ("ending", "ended"):
                raise StateError(f"room {self.room!r} broadcast has ended", room=self.room)
            sess = self.session(session_id)
            if sess is None:
                raise LookupError(f"unknown session {session_id!r}: call start first")
            if sess.rendition(rendition) is None:
                raise LookupError(f"rendition {rendition!r} was not declared by session {session_id!r}")
            if (sess.ended_at is not None and now - sess.ended_at > accept_after_end_s) or self.is_sealed(
                session_id, rendition
            ):
                raise StateError(f"session {session_id!r} has ended", room=self.room)
            prior = c.execute(
                "SELECT size, uploaded FROM objects WHERE session = ? AND rendition = ? AND idx = ?",
                (session_id, rendition, idx),
            ).fetchone()
            if prior is not None:
                if prior[0] == size:
                    return False
                if prior[1]:
                    raise StateError(
                        f"{session_id}/{rendition}/{idx} was already stored with other content; names are immutable",
                        room=self.room,
                    )
            c.execute(
                "INSERT OR REPLACE INTO objects (session, rendition, idx, spool, size, duration_ticks, base_ticks, "
                "timescale, channels, codec, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, rendition, idx, spool, size, duration_ticks, base_ticks, timescale, channels, codec, now),
            )
            c.execute("UPDATE sessions SET last_activity_at = ? WHERE id = ?", (now, session_id))
            return True

    def seal(self, session_id: str, rendition: str) -> None:
        """The publisher moved past this session for this rendition: nothing more of it can be published."""
        self.conn.execute("INSERT OR IGNORE INTO sealed (session, rendition) VALUES (?, ?)", (session_id, rendition))

    def is_sealed(self, session_id: str, rendition: str) -> bool:
        return (
            self.conn.execute(
                "SELECT 1 FROM sealed WHERE session = ? AND rendition = ?", (session_id, rendition)
            ).fetchone()
            is not None
        )

    def pending_uploads(self) -> list[ObjectRow]:
        return self._objects("uploaded = 0 ORDER BY idx, received_at")

    def unpublished(self) -> list[ObjectRow]:
        return self._objects("published = 0 AND idx >= 0 ORDER BY idx")

    def inits(self) -> dict[tuple[str, str], ObjectRow]:
        return {(o.session, o.rendition): o for o in self._objects(f"idx = {INIT_INDEX}")}

    def _objects(self, where: str) -> list[ObjectRow]:
        rows = self.conn.execute(
            "SELECT session, rendition, idx, spool, size, duration_ticks, base_ticks, timescale, received_at, "
            f"uploaded FROM objects WHERE {where}"
        ).fetchall()
        return [
            ObjectRow(
                session=r[0],
                rendition=r[1],
                idx=r[2],
                spool=r[3],
                size=r[4],
                duration_ticks=r[5],
                base_ticks=r[6],
                timescale=r[7],
                received_at=r[8],
                uploaded=bool(r[9]),
            )
            for r in rows
        ]

    def mark_uploaded(self, obj: ObjectRow) -> None:
        self.conn.execute(
            "UPDATE objects SET uploaded = 1 WHERE session = ? AND rendition = ? AND idx = ?",
            (obj.session, obj.rendition, obj.idx),
        )

    def pending_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM objects WHERE uploaded = 0").fetchone()[0])

    # -- published ---------------------------------------------------------------------------------
    def add_published(self, row: PublishedRow) -> None:
        self.conn.execute(
            "INSERT INTO published (rendition, msn, session, idx, duration_s, pdt, discontinuity, size, "
            "received_at, filler) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.rendition,
                row.msn,
                row.session,
                row.idx,
                row.duration_s,
                row.pdt,
                int(row.discontinuity),
                row.size,
                row.received_at,
                int(row.filler),
            ),
        )
        if row.filler:
            return
        self.conn.execute(
            "UPDATE objects SET published = 1 WHERE session = ? AND rendition = ? AND idx = ?",
            (row.session, row.rendition, row.idx),
        )

    def published(self, rendition: str, *, since_msn: int = 0) -> list[PublishedRow]:
        rows = self.conn.execute(
            "SELECT rendition, msn, session, idx, duration_s, pdt, discontinuity, size, received_at, filler "
            "FROM published WHERE rendition = ? AND msn >= ? ORDER BY msn",
            (rendition, since_msn),
        ).fetchall()
        return [
            PublishedRow(
                rendition=r[0],
                msn=r[1],
                session=r[2],
                idx=r[3],
                duration_s=r[4],
                pdt=r[5],
                discontinuity=bool(r[6]),
                size=r[7],
                received_at=r[8],
                filler=bool(r[9]),
            )
            for r in rows
        ]

    def last_published(self, rendition: str) -> PublishedRow | None:
        rows = self.published(rendition, since_msn=self.max_msn(rendition))
        return rows[-1] if rows else None

    def last_real_idx(self, rendition: str, session: str) -> int:
        """Index of the last transcoder segment of `session` published for the rendition (-1: none)."""
        value = self.conn.execute(
            "SELECT MAX(idx) FROM published WHERE rendition = ? AND session = ? AND filler = 0", (rendition, session)
        ).fetchone()[0]
        return int(value) if value is not None else -1

    def max_msn(self, rendition: str) -> int:
        value = self.conn.execute("SELECT MAX(msn) FROM published WHERE rendition = ?", (rendition,)).fetchone()[0]
        return int(value) if value is not None else -1

    def discontinuities_before(self, rendition: str, msn: int) -> int:
        return int(
            self.conn.execute(
                "SELECT COUNT(*) FROM published WHERE rendition = ? AND msn < ? AND discontinuity = 1",
                (rendition, msn),
            ).fetchone()[0]
        )

    def published_renditions(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT rendition FROM published ORDER BY rendition")]

    def rendition_stats(self, rendition: str) -> tuple[float, float, float]:
        """(longest segment seconds, peak bit rate, average bit rate) over everything published."""
        row = self.conn.execute(
            "SELECT MAX(duration_s), MAX(size * 8.0 / duration_s), SUM(size) * 8.0 / SUM(duration_s) "
            "FROM published WHERE rendition = ? AND filler = 0",
            (rendition,),
        ).fetchone()
        return (row[0] or 0.0, row[1] or 0.0, row[2] or 0.0)


@functools.lru_cache(maxsize=4096)
def _ladder(raw: str) -> tuple[RenditionSpec, ...]:
    """A session's ladder never changes once started: parse each stored form once."""
    return tuple(RenditionSpec(**x) for x in json.loads(raw))
