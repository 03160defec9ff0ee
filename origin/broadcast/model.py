"""The values of a room's broadcast: sessions, stored objects, publications, and the room state they fold into.

Everything here is plain data. `lifecycle.apply` is the only code that changes a `RoomState`; the journal
records (`records.py`) are the only way anything reaches it, so every worker that folds the same journal
holds the same state.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

INIT_INDEX = -1  # StoredObject.idx of a rendition's init segment
TAIL_SEGMENTS = 64  # publications kept in memory per rendition (the live window needs far fewer)


class BroadcastState(enum.StrEnum):
    IDLE = "idle"  # configured, never on air
    LIVE = "live"  # a session started; publishing
    ENDING = "ending"  # no more ingest; the final pass publishes what is left
    ENDED = "ended"  # final: the replay is VOD (or, if nothing was ever published, there is none)


class EndReason(enum.StrEnum):
    EOS = "eos"
    SIGNAL = "signal"
    CRASH = "crash"
    TIMEOUT = "timeout"  # no PUT for the session timeout
    SUPERSEDED = "superseded"  # a newer session of the room started
    BROADCAST_END = "broadcast-end"  # the admin ended the broadcast


@dataclass(frozen=True, kw_only=True)
class RenditionSpec:
    name: str
    bitrate: int  # nominal bits per second
    channels: int
    sample_rate: int


@dataclass(frozen=True, kw_only=True)
class StoredObject:
    """An init or media segment received from a transcoder, durable in storage (or in the local spool)."""

    session: str
    rendition: str
    idx: int  # segment index, or INIT_INDEX
    size: int
    received_at: float
    spooled: bool = False  # True while it waits in the local spool for storage
    duration_ticks: int = 0  # media segments: sum of sample durations
    base_ticks: int = 0  # media segments: tfdt of the first sample
    timescale: int = 0  # init segments: mdhd timescale
    track_id: int = 0  # init segments: the audio track's id, which every media segment must carry

    @property
    def is_init(self) -> bool:
        return self.idx == INIT_INDEX


@dataclass(frozen=True, kw_only=True)
class Publication:
    """One segment as a media playlist names it. Media sequence numbers are per rendition and never repeat."""

    rendition: str
    msn: int
    session: str
    idx: int  # the transcoder's segment index; for filler, the index of the session's last real segment
    duration_s: float
    pdt: float  # EXT-X-PROGRAM-DATE-TIME, epoch seconds
    discontinuity: bool
    size: int
    received_at: float  # for publish latency; filler: when it was made
    filler: bool = False  # origin-made silence/slate, not received from a transcoder
    parts: tuple[float, ...] = ()  # low-latency HLS: the durations of the segment's parts, in order

    @property
    def end_pdt(self) -> float:
        return self.pdt + self.duration_s


@dataclass(frozen=True, kw_only=True)
class StoredPart:
    """Low-latency HLS: part `part` of segment `idx`, durable in storage (parts are never spooled)."""

    session: str
    rendition: str
    idx: int
    part: int
    duration_s: float
    size: int
    received_at: float


@dataclass(kw_only=True)
class Session:
    id: str
    ordinal: int
    started_at: float
    segment_seconds: float
    ladder: tuple[RenditionSpec, ...]
    last_activity_at: float
    ended_at: float | None = None
    end_reason: EndReason | None = None
    anchor_pdt: float | None = None  # epoch seconds of decode time 0, once its first segment is published
    sealed: set[str] = field(default_factory=set)  # renditions the publisher moved past for good
    max_index: dict[str, int] = field(default_factory=dict)  # per rendition, highest segment index received
    max_end_ticks: dict[str, int] = field(default_factory=dict)  # per rendition, where that segment ends
    first_base: dict[str, tuple[int, int]] = field(default_factory=dict)  # rendition -> (idx, base ticks)
    part_seconds: float | None = None  # low-latency HLS: the session streams parts of about this length

    def rendition(self, name: str) -> RenditionSpec | None:
        return next((r for r in self.ladder if r.name == name), None)

    @property
    def open(self) -> bool:
        return self.ended_at is None


@dataclass(kw_only=True)
class RenditionState:
    """What the publisher knows of one rendition: what waits, what was published last, and running totals."""

    name: str
    inits: dict[str, StoredObject] = field(default_factory=dict)  # session -> its init segment
    pending: dict[str, dict[int, StoredObject]] = field(default_factory=dict)  # session -> idx -> unpublished
    tail: deque[Publication] = field(default_factory=lambda: deque(maxlen=TAIL_SEGMENTS))
    last_real_idx: dict[str, int] = field(default_factory=dict)  # session -> last published transcoder index
    parts: dict[tuple[str, int], list[StoredPart]] = field(default_factory=dict)  # (session, idx) -> parts so far
    longest_part_s: float = 0.0
    published: int = 0
    discontinuities: int = 0  # EXT-X-DISCONTINUITY tags over everything published
    longest_s: float = 0.0
    peak_bps: float = 0.0
    bytes_total: int = 0
    seconds_total: float = 0.0

    @property
    def last(self) -> Publication | None:
        return self.tail[-1] if self.tail else None

    def pending_count(self) -> int:
        return sum(len(v) for v in self.pending.values())


@dataclass(kw_only=True)
class RoomState:
    room: str
    state: BroadcastState = BroadcastState.IDLE
    started_at: float | None = None
    ended_at: float | None = None
    changed_at: float | None = None
    sessions: dict[str, Session] = field(default_factory=dict)  # in start order (dicts keep insertion order)
    renditions: dict[str, RenditionState] = field(default_factory=dict)
    spooled: dict[tuple[str, str, int], StoredObject] = field(default_factory=dict)  # waiting for storage
    master: tuple[str, ...] = ()  # renditions named by the last master playlist written
    download_bytes: int | None = None  # the replay .m4a, once built
    quarantined: int = 0
    records: int = 0  # journal records applied

    def session_list(self) -> list[Session]:
        return list(self.sessions.values())

    def open_session(self) -> Session | None:
        return next((s for s in reversed(self.sessions.values()) if s.open), None)

    def rendition(self, name: str) -> RenditionState:
        state = self.renditions.get(name)
        if state is None:
            state = self.renditions[name] = RenditionState(name=name)
        return state

    @property
    def playable(self) -> bool:
        """A master playlist exists: players can load the stream."""
        return bool(self.master)

    @property
    def nominal_segment_s(self) -> float:
        return max((s.segment_seconds for s in self.sessions.values()), default=1.0)

    def spec(self, rendition: str) -> RenditionSpec | None:
        """The rendition as the newest session that declares it describes it."""
        for s in reversed(self.sessions.values()):
            spec = s.rendition(rendition)
            if spec is not None:
                return spec
        return None
