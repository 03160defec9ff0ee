"""One publishing pass over a room this process owns: decide under the journal lock, then write.

    1. upload what waits in the spool (storage came back)            → ObjectUploaded
    2. session timeouts, end of the broadcast after the grace period  → SessionEnded, StateChanged
    3. the sequencer's plan per rendition                             → AnchorSet, Sealed, Published, Quarantined
    4. filler for every slot past its deadline (written first)        → Published (filler)
    5. the durability barrier, then playlists: live windows, DVR/replay, masters  → MasterWritten
    6. once ending and drained: final playlists                       → StateChanged(ended)
A playlist is written only after every object it names is durable; a failed write is retried next pass
(the rendition stays dirty). The records are the truth: a new owner folds them and rewrites everything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

from origin.broadcast import lifecycle
from origin.broadcast.journal.base import Ownership
from origin.broadcast.lifecycle import LifecyclePolicy
from origin.broadcast.model import BroadcastState, Publication, RoomState
from origin.broadcast.publish.fill import SlotFiller
from origin.broadcast.publish.filler import FillerBank, FillerPolicy, filler_deadline, filler_specs
from origin.broadcast.publish.lowlatency import LowLatency, attach_parts
from origin.broadcast.publish.playlists import RoomPlaylists, Write
from origin.broadcast.publish.writes import put_all, upload_spooled
from origin.broadcast.records import (
    AnchorSet,
    MasterWritten,
    Published,
    Quarantined,
    Record,
    Sealed,
    StateChanged,
)
from origin.broadcast.sequencer import plan_publications
from origin.broadcast.stores import RoomStores
from origin.contract import layout
from origin.errors import StorageError
from origin.metrics import Metrics
from origin.storage.group_commit import GroupCommit

log = logging.getLogger(__name__)

BACKLOG_WARN_OBJECTS = 30


@dataclass(frozen=True, kw_only=True)
class PublishPolicy:
    live_window_segments: int = 6
    lifecycle: LifecyclePolicy = field(default_factory=LifecyclePolicy)
    filler: FillerPolicy | None = field(default_factory=FillerPolicy)  # None: players stall while the source is gone
    settle_s: float = 2.0  # a superseded session may still deliver this long before its successor is published
    gap_factor: float = 2.0  # skip a never-received index after gap_factor × segment seconds
    # The DVR (EVENT) playlist only appends and listeners follow the live window, so while live it is rewritten
    # at most this often (always at the end): each write is O(broadcast length).
    event_interval_s: float = 6.0


@dataclass(kw_only=True)
class PassResult:
    state: BroadcastState = BroadcastState.IDLE
    published: int = 0
    fillers: int = 0
    backlog: int = 0
    next_deadline: float | None = None  # when the next filler slot turns late: run a pass then
    needs_barrier: bool = False  # segments wait only for a durability barrier: run one, then pass again
    low_latency_changed: bool = False  # new LL playlist versions on the board: wake the blocked reloads
    status_changed: bool = False  # the broadcast changed state or became playable: re-publish status.json
    error: str | None = None


@dataclass(kw_only=True)
class _Decision:
    records: list[Record] = field(default_factory=list)
    publications: list[Publication] = field(default_factory=list)
    needs_barrier: bool = False


@dataclass(eq=False, kw_only=True)
class RoomPublisher:
    """The owner's side of one room. Not thread-safe: the scheduler runs one pass per room at a time."""

    room: str
    ownership: Ownership
    stores: RoomStores
    commit: GroupCommit
    playlists: RoomPlaylists
    filler: FillerBank | None
    policy: PublishPolicy
    metrics: Metrics
    clock: Callable[[], float]
    io: Executor | None = None
    low_latency: LowLatency | None = None

    def __post_init__(self) -> None:
        bank, policy = self.filler, self.policy.filler
        self._filler = (SlotFiller(room=self.room, stores=self.stores, bank=bank, policy=policy, metrics=self.metrics,
                                   io=self.io)
                        if bank is not None and policy is not None else None)  # fmt: skip
        self._dirty: set[str] = set()
        self.expected_renditions = 0  # renditions of the open session: a wave of that many rings is a segment
        self._advanced: dict[str, float] = {}  # rendition -> when this owner last published on it (wall clock)
        self._started = False

    @property
    def started(self) -> bool:
        """False until the first pass: a new owner's first pass reads the whole journal (scheduler.py)."""
        return self._started

    def _start(self, records: list[Record]) -> None:
        """A new owner: rebuild the DVR bodies from every publication, and rewrite every playlist once."""
        with self.stores.states.hold(self.room) as state:
            timed = state.timed
        self.playlists.rebuild((p for r in records if isinstance(r, Published) for p in r.publications), timed)
        self._dirty = set(self.playlists.renditions())
        self.playlists.masters_written = False  # written without fsync while live: a crash may have lost them
        self._started = True

    def _append(self, records: Sequence[Record]) -> None:
        if records:
            with self.stores.journal.locked(self.room):
                self.stores.journal.append(self.room, records, fence=self.ownership)

    def run(self) -> PassResult:
        # A new owner reads the journal once, for its state and for the DVR bodies (~21,600 records an hour).
        records = None if self._started else self.stores.states.refold(self.room)
        with self.stores.states.hold(self.room) as state:
            if state.state is BroadcastState.ENDED:  # taken after its end (a late ring): its playlists are final
                return PassResult(state=BroadcastState.ENDED)
        if records is not None:
            self._start(records)
        result = PassResult()
        now = self.clock()
        self._append(upload_spooled(room=self.room, stores=self.stores, metrics=self.metrics))
        with self.stores.journal.locked(self.room):
            with self.stores.states.hold(self.room) as state:
                before = state.state
                expired = lifecycle.expire(state, now, self.policy.lifecycle)
            self.stores.journal.append(self.room, expired, fence=self.ownership)
            with self.stores.states.hold(self.room) as state:
                final = state.state is BroadcastState.ENDING and not state.spooled
                if final:
                    # The last pass publishes everything received: make all of it known durable first (once
                    # per broadcast, so blocking here is fine).
                    self.commit.barrier_blocking()
                decision = self._decide(state, now, final)
            self.stores.journal.append(self.room, decision.records, fence=self.ownership)
        fresh = {p.rendition for p in decision.publications}
        fillers = self._filler.fill(now, fresh, self._advanced.get) if self._filler is not None and not final else []
        self._append([Published(publications=tuple(fillers))] if fillers else [])
        new = decision.publications + fillers
        if new:
            # Every object named below is durable: the plan took only segments recorded before the newest
            # barrier this worker knows of, and fillers are written durably.
            with self.stores.states.hold(self.room) as state:
                self.playlists.sync_cues(state.timed)  # timed events go before the segments they fall in
            self.playlists.add(new)
            self._dirty.update(p.rendition for p in new)
            self._advanced.update((p.rendition, now) for p in new)
        result.published, result.fillers = len(decision.publications), len(fillers)
        result.needs_barrier = decision.needs_barrier
        self._write_playlists(result, final, decision.publications)
        with self.stores.states.hold(self.room) as state:
            if self.low_latency is not None:
                if final or state.state is BroadcastState.ENDED:
                    self.low_latency.clear()  # the standard playlists in storage carry the end
                    result.low_latency_changed = True
                else:
                    windows = {n: list(rs.tail) for n, rs in state.renditions.items()}
                    result.low_latency_changed = self.low_latency.update(state, windows)
            result.backlog = len(state.spooled)
            result.state = state.state
            session = state.open_session()
            self.expected_renditions = len(session.ladder) if session is not None else 0
            result.status_changed |= state.state is not before
            if state.state is BroadcastState.LIVE and self._filler is not None:
                self._filler.bank.warm(filler_specs(state))
            if state.state is BroadcastState.LIVE and self.policy.filler is not None:
                deadlines = [filler_deadline(state, r, self.policy.filler, self._advanced.get(r))
                             for r in state.renditions]  # fmt: skip
                result.next_deadline = min((d for d in deadlines if d is not None), default=None)
        self._report(result)
        return result

    # -- decisions (under the journal lock; pure apart from the records they return) --------------------------

    def _decide(self, state: RoomState, now: float, final: bool) -> _Decision:
        out = _Decision()
        sessions = state.session_list()
        if not sessions:
            return out
        gap_timeout_s = self.policy.gap_factor * state.nominal_segment_s
        anchors: dict[str, float] = {}
        for name in sorted(state.renditions):
            rs = state.renditions[name]
            # Anchors set by an earlier rendition in this pass are not folded yet: pass them on, so every
            # rendition of a session shares one PROGRAM-DATE-TIME timeline.
            plan = plan_publications(
                rendition=rs, sessions=sessions, anchors=anchors, now=now, gap_timeout_s=gap_timeout_s,
                settle_s=self.policy.settle_s, final=final, durable_before=self.commit.durable_before,
            )
            out.needs_barrier |= plan.awaiting_barrier
            for session, pdt in plan.new_anchors.items():
                anchors[session] = pdt
                out.records.append(AnchorSet(session=session, pdt=pdt))
            out.records.extend(Sealed(session=s, rendition=name) for s in plan.sealed)
            for gap in plan.skipped:
                log.warning("room=%s %s/%s segments %d-%d never arrived: skipped", self.room, gap.session, name,
                            gap.first, gap.last)  # fmt: skip
            for session, idx, reason in plan.quarantined:
                log.error("room=%s %s/%s/%d quarantined: %s", self.room, session, name, idx, reason)
                out.records.append(Quarantined(session=session, rendition=name, idx=idx, reason=reason))
                self.metrics.quarantined(self.room)
            if plan.publications:
                pubs = attach_parts(state, plan.publications)  # low latency: the parts they were received in
                out.publications.extend(pubs)
                out.records.append(Published(publications=tuple(pubs)))
        return out

    # -- I/O -----------------------------------------------------------------------------------------------

    def _write_playlists(self, result: PassResult, final: bool, published: list[Publication]) -> None:
        now = self.clock()
        with self.stores.states.hold(self.room) as state:
            nothing_published = final and not self.playlists.renditions()
            names = set(self.playlists.renditions()) if final else set(self._dirty)
            writes: list[Write] = self.playlists.media_writes(state, names, now=now, final=final)
            masters = self.playlists.master_writes(state, final=final)
        if nothing_published:
            result.status_changed = True  # a broadcast that published nothing ends cleanly, with no replay
            self._finish(now)
            return
        try:
            put_all(self.stores.storage, writes, durable=final, io=self.io)
            # While live, as durable as the live playlists: a new owner rewrites both masters at its start.
            put_all(self.stores.storage, masters, durable=final, io=self.io)
        except StorageError as exc:
            result.error = str(exc)
            self.metrics.storage_error(self.stores.storage.name, "put")
            log.warning("room=%s playlist write failed, will retry: %s", self.room, exc)
            return
        written_at = self.clock()
        self.playlists.written(writes, written_at)
        for p in published:
            self.metrics.published(self.room, written_at - p.received_at, written_at)
        if names:
            self.metrics.live_edge(self.room, written_at)
        self._dirty.clear()
        if masters:
            self.playlists.masters_written = True
            with self.stores.states.hold(self.room) as state:
                renditions = tuple(self.playlists.renditions())
                became_playable = not state.playable
                recorded = tuple(state.master) == renditions
            if not recorded:
                self._append([MasterWritten(renditions=renditions)])
            result.status_changed |= became_playable
        if final:
            result.status_changed = True
            self._finish(written_at)

    def _finish(self, now: float) -> None:
        self._append([StateChanged(state=BroadcastState.ENDED, at=now)])
        log.info("room=%s broadcast ended; replay at %s", self.room, layout.replay_master(self.room))

    def _report(self, result: PassResult) -> None:
        if result.backlog >= BACKLOG_WARN_OBJECTS:
            log.error("room=%s storage retry backlog at %d objects: playlists are waiting for storage", self.room,
                      result.backlog)  # fmt: skip
        self.metrics.room_state(self.room, result.state.value, self.clock())

    def close(self) -> None:
        self.playlists.close()
        self.ownership.release()
