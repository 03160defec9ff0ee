"""`spillway status`, the pure part: the admin listing (`GET /v1/rooms`) in, rows and a table out.

A row is in trouble for the same reasons the alert rules fire (ops/prometheus/spillway.rules.yml):

    bad   a live room whose live edge is older than STALL_SEGMENTS segment lengths (listeners stall)
          a retry backlog of BACKLOG_BAD objects or more (storage is failing)
    warn  a live room with no open ingest session (the source is gone; filler may be on air)
          filler among the newest segments; any backlog; publish p99 over P99_BUDGET_S
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

STALL_SEGMENTS = 2.0
BACKLOG_BAD = 30  # = origin.broadcast.publish.room.BACKLOG_WARN_OBJECTS: the publisher logs errors from here
P99_BUDGET_S = 0.5


class Trouble(enum.IntEnum):
    OK = 0
    WARN = 1
    BAD = 2


@dataclass(frozen=True, kw_only=True)
class RoomRow:
    room: str
    state: str  # the broadcast's state (idle, live, ending, ended); "idle" when it never broadcast
    session: str | None
    renditions: tuple[str, ...]
    edge_age_s: float | None
    segment_s: float | None
    p99_s: float | None
    backlog: int
    fillers_in_tail: int
    seats_taken: int
    cap: int
    hls_per_min: int
    trouble: Trouble = Trouble.OK
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, object]:
        doc = asdict(self)
        doc["renditions"], doc["notes"], doc["trouble"] = list(self.renditions), list(self.notes), self.trouble.name
        return doc


class ListingError(ValueError):
    """The origin's answer is not a room listing."""


def _num(doc: Mapping[str, object], key: str) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ListingError(f"{key} is {value!r}, not a number")
    return float(value)


def _int(doc: Mapping[str, object], key: str) -> int:
    value = _num(doc, key)
    return 0 if value is None else int(value)


def assess(row: RoomRow) -> RoomRow:
    """The row with its trouble level and notes (pure)."""
    notes: list[str] = []
    level = Trouble.OK
    live = row.state == "live"
    if live and row.edge_age_s is not None and row.segment_s and row.edge_age_s > STALL_SEGMENTS * row.segment_s:
        notes.append(f"STALLED {row.edge_age_s:.0f}s")
        level = Trouble.BAD
    if row.backlog >= BACKLOG_BAD:
        notes.append("storage backlog")
        level = Trouble.BAD
    elif row.backlog > 0:
        notes.append("backlog")
        level = max(level, Trouble.WARN)
    if live and row.session is None:
        notes.append("source gone")
        level = max(level, Trouble.WARN)
    if live and row.fillers_in_tail > 0:
        notes.append("filler on air")
        level = max(level, Trouble.WARN)
    if row.p99_s is not None and row.p99_s > P99_BUDGET_S and row.state in ("live", "ending"):
        notes.append("p99 over budget")
        level = max(level, Trouble.WARN)
    if row.cap > 0 and row.seats_taken >= row.cap:
        notes.append("seats full")
    return RoomRow(**{**row.__dict__, "trouble": level, "notes": tuple(notes)})


def rows_from_listing(doc: object) -> list[RoomRow]:
    """`{"rooms": [...]}` pages of GET /v1/rooms (their `rooms` concatenated) → assessed rows."""
    if not isinstance(doc, dict) or not isinstance(doc.get("rooms"), list):
        raise ListingError("expected an object with a list of rooms")
    rows = []
    for room in doc["rooms"]:
        if not isinstance(room, dict) or not isinstance(room.get("id"), str):
            raise ListingError("a room entry has no id")
        pub = room.get("publishing")
        pub = pub if isinstance(pub, dict) else {}
        renditions = pub.get("renditions") or []
        if not isinstance(renditions, list):
            raise ListingError("renditions is not a list")
        session = pub.get("session")
        rows.append(assess(RoomRow(
            room=room["id"], state=str(pub.get("state") or "idle"),
            session=session if isinstance(session, str) else None, renditions=tuple(str(r) for r in renditions),
            edge_age_s=_num(pub, "live_edge_age_s"), segment_s=_num(pub, "segment_s"), p99_s=_num(pub, "publish_p99_s"),
            backlog=_int(pub, "backlog"), fillers_in_tail=_int(pub, "fillers_in_tail"),
            seats_taken=_int(room, "seats_taken"), cap=_int(room, "realtime_cap"),
            hls_per_min=_int(room, "hls_listeners_recent"),
        )))  # fmt: skip
    return rows


# -- the table ----------------------------------------------------------------------------------------------

COLUMNS = ("ROOM", "STATE", "SESSION", "REND", "EDGE AGE", "P99", "BACKLOG", "SEATS", "HLS/min", "NOTES")
_RESET = "\x1b[0m"
_COLOURS = {Trouble.BAD: "\x1b[1;31m", Trouble.WARN: "\x1b[33m"}
_STATE_COLOURS = {"live": "\x1b[32m", "ending": "\x1b[36m", "ended": "\x1b[2m", "idle": "\x1b[2m"}


def _seconds(value: float | None, *, ms: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f}ms" if ms else f"{value:.1f}s"


def cells(row: RoomRow) -> tuple[str, ...]:
    live = row.state in ("live", "ending")
    return (
        row.room,
        row.state,
        (row.session or "-")[-12:],
        ",".join(row.renditions) or "-",
        _seconds(row.edge_age_s) if live else "-",
        _seconds(row.p99_s, ms=True) if live else "-",
        str(row.backlog),
        f"{row.seats_taken}/{row.cap}",
        str(row.hls_per_min),
        " ".join(row.notes),
    )


def render_table(rows: Sequence[RoomRow], *, header: str, colour: bool, width: int = 160) -> str:
    """The screen: a header line, a summary line, the table (one line per room, trouble first). Pure."""
    ordered = sorted(rows, key=lambda r: (-r.trouble, r.state != "live", r.room))
    table = [COLUMNS, *(cells(r) for r in ordered)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()[:width]

    live = sum(r.state == "live" for r in rows)
    bad = sum(r.trouble is Trouble.BAD for r in rows)
    warn = sum(r.trouble is Trouble.WARN for r in rows)
    summary = f"{len(rows)} rooms, {live} live, {bad} in trouble, {warn} to watch"
    out = [header[:width], summary[:width], "", line(COLUMNS)]
    for row, values in zip(ordered, table[1:], strict=True):
        text = line(values)
        if colour and row.trouble in _COLOURS:
            text = _COLOURS[row.trouble] + text + _RESET
        elif colour and row.state in _STATE_COLOURS:
            start = widths[0] + 2  # the STATE column
            code = _STATE_COLOURS[row.state]
            text = text[:start] + code + row.state + _RESET + text[start + len(row.state):]
        out.append(text)
    if not rows:
        out.append("(no rooms)")
    return "\n".join(out) + "\n"
