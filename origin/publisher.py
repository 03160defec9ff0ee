"""Spool → storage → playlists: the only code that assigns media sequence numbers and writes playlists.

Ingest spools each object to local disk and records it (`receive`); `pump` then, under the room's lock,
uploads what is pending, lets the pure sequencer decide what becomes published, and writes the playlists
after every object they name is durable. A storage failure leaves objects pending (the retry backlog) and
playlists delayed; nothing received is dropped.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from origin import fmp4, keys
from origin.cache_policy import ObjectKind, headers_for
from origin.errors import StorageError
from origin.filler import AAC_FRAME_SAMPLES, FillerBank, FillerError
from origin.metrics import Metrics
from origin.playlist import (
    MediaPlaylistKind,
    PublishedSegment,
    RenditionEntry,
    live_window,
    render_master_playlist,
    render_media_playlist,
    target_duration_s,
)
from origin.sequencer import Cursor, ReceivedSegment, SessionView, fillers_needed, plan_publications
from origin.state import INIT_INDEX, ObjectRow, PublishedRow, RoomDb, SessionRow, StateStore
from origin.storage.base import Storage

log = logging.getLogger(__name__)

STORAGE_CONCURRENCY = 16
# Past this many objects waiting for storage, every pass logs an error (the metric shows it too).
BACKLOG_WARN_OBJECTS = 30
# A session's PUTs may still be in flight when its end call (or its successor's start) arrives.
ACCEPT_AFTER_END_S = 5.0


@dataclass(frozen=True, kw_only=True)
class PublishPolicy:
    live_window_segments: int = 6
    session_timeout_s: float = 10.0
    end_grace_s: float = 120.0
    settle_s: float = 2.0  # wait this long after a session ends before publishing its successor
    gap_factor: float = 2.0  # skip a never-received index after gap_factor × segment seconds
    fill_after_segments: float = 1.5  # source silent this long (in segments): publish filler
    max_fillers_per_pass: int = 5
    # The DVR (EVENT) playlist only appends and listeners follow the live window, so while live it is rewritten
    # at most this often (always at the end). Rewriting it per segment would cost O(broadcast length) each time.
    event_playlist_interval_s: float = 6.0


@dataclass(kw_only=True)
class PumpResult:
    published: int = 0
    pending: int = 0
    storage_error: str | None = None
    broadcast_changed: bool = False
    state: str = "idle"
    received_at: list[float] = field(default_factory=list)  # of each segment published in this pass
    skipped: bool = False  # a maintenance pass found the room recently passed over
    master_written: bool = False  # the rendition set changed (e.g. the stream just became playable)


class Publisher:
    def __init__(
        self,
        *,
        store: StateStore,
        storage: Storage,
        policy: PublishPolicy,
        metrics: Metrics,
        clock: Callable[[], float],
        filler: FillerBank | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.policy = policy
        self.metrics = metrics
        self.clock = clock
        self.filler = filler  # None: no filler, listeners' players stall while the source is gone
        # Storage writes of one pass run concurrently (segments, then media playlists, then masters), so a
        # slow or hung write delays a pass by one timeout rather than by the sum of them.
        self._io = ThreadPoolExecutor(max_workers=STORAGE_CONCURRENCY, thread_name_prefix="storage")
        self._event_written: dict[tuple[str, str], float] = {}  # (room, rendition) -> last EVENT playlist write

    # -- ingest side -------------------------------------------------------------------------------
    def spool(self, room: str, session: str, rendition: str, name: str, body: bytes) -> Path:
        """Write the body durably to the local spool; returns its path."""
        directory = self.store.spool_dir(room) / session / rendition
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            final = directory / name
            os.replace(tmp, final)
            return final
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- publish side ------------------------------------------------------------------------------
    def pump(self, room: str, *, skip_if_recent_s: float | None = None) -> PumpResult:
        """One publishing pass. With `skip_if_recent_s` (periodic maintenance), nothing is done when any worker
        finished a pass over the room that recently: two workers need not both sweep every room every second."""
        result = PumpResult()
        if skip_if_recent_s is not None:
            with self.store.open(room) as db:
                last = db.last_pass_at()
                if last is not None and self.clock() - last < skip_if_recent_s:
                    result.state = db.broadcast()[0]
                    result.skipped = True
                    return result
        with self.store.room_lock(room), self.store.open(room) as db:
            self._upload_pending(room, db, result)
            now = self.clock()
            result.broadcast_changed = self._expire(room, db, now)
            state, _, _ = db.broadcast()
            result.pending = db.pending_count()
            final = state == "ending" and result.pending == 0
            changed = self._publish(room, db, now, final, result)
            if state == "live" and self.filler is not None and not result.published:
                # Only a pass that published nothing can find the source silent.
                changed |= self._fill(room, db, self.clock(), result)
            # Renditions whose playlists a failed pass could not write are retried first.
            changed |= db.dirty_renditions()
            if changed or final:
                try:
                    result.master_written = self._write_playlists(room, db, changed, final=final)
                except StorageError as exc:
                    # Published rows are committed: remember the playlists still to write (delayed, not lost).
                    with db.transaction():
                        db.set_dirty_renditions(changed)
                    result.storage_error = str(exc)
                    self.metrics.storage_error(self.storage.name, "put")
                    log.warning("room=%s playlist write failed, will retry: %s", room, exc)
                    result.state = state
                    self.metrics.room_state(room, state, result.pending)
                    return result
                if db.dirty_renditions():
                    with db.transaction():
                        db.set_dirty_renditions(set())
                written_at = self.clock()
                for received in result.received_at:
                    self.metrics.published(room, written_at - received)
            if final:
                with db.transaction():
                    db.set_broadcast("ended", now)
                result.broadcast_changed = True
                log.info("room=%s broadcast ended; replay published at %s", room, keys.replay_master(room))
            result.state = "ended" if final else state
            db.set_last_pass_at(self.clock())
            if result.pending >= BACKLOG_WARN_OBJECTS:
                log.error(
                    "room=%s storage retry backlog at %d objects (%s): playlists are waiting for storage",
                    room,
                    result.pending,
                    result.storage_error or "uploads pending",
                )
            self.metrics.room_state(room, result.state, result.pending)
        return result

    def _upload_pending(self, room: str, db: RoomDb, result: PumpResult) -> None:
        """Upload every pending object concurrently; each success is recorded, each failure stays pending."""
        pending = db.pending_uploads()
        if not pending:
            return
        futures = {self._io.submit(self._upload_one, room, obj): obj for obj in pending}
        for future in futures:
            obj = futures[future]
            try:
                uploaded = future.result()
            except StorageError as exc:
                result.storage_error = str(exc)
                self.metrics.storage_error(self.storage.name, "put")
                log.warning("room=%s upload of %s/%s/%d failed, will retry: %s", room, obj.session, obj.rendition,
                            obj.idx, exc)  # fmt: skip
                continue
            if uploaded:
                db.mark_uploaded(obj)
                Path(obj.spool).unlink(missing_ok=True)

    def _upload_one(self, room: str, obj: ObjectRow) -> bool:
        if obj.idx == INIT_INDEX:
            key, kind = keys.init_segment(room, obj.session, obj.rendition), ObjectKind.INIT
        else:
            key, kind = keys.media_segment(room, obj.session, obj.rendition, obj.idx), ObjectKind.SEGMENT
        try:
            self.storage.put_file(key, Path(obj.spool), headers_for(kind))
        except FileNotFoundError:
            # Uploaded by a pass that died before recording it: the object is in storage already, or lost.
            if self.storage.exists(key):
                return True
            log.error("room=%s spool file %s lost and %s not in storage", room, obj.spool, key)
            return False
        return True

    def _expire(self, room: str, db: RoomDb, now: float) -> bool:
        state, _, _ = db.broadcast()
        if state != "live":
            return False
        sessions = db.sessions()
        for s in sessions:
            if s.ended_at is None and now - s.last_activity_at >= self.policy.session_timeout_s:
                db.end_session(s.id, "timeout", now)
                log.warning(
                    "room=%s session=%s timed out after %.1fs without data", room, s.id, now - s.last_activity_at
                )
        sessions = db.sessions()
        if sessions and all(s.ended_at is not None for s in sessions):
            last_end = max(s.ended_at or 0.0 for s in sessions)
            if now - last_end >= self.policy.end_grace_s:
                with db.transaction():
                    db.set_broadcast("ending", now)
                log.info("room=%s no session for %.0fs: ending the broadcast", room, now - last_end)
                return True
        return False

    def request_end(self, room: str) -> bool:
        """Admin end: stop accepting ingest; the next pump finalises once the backlog has drained."""
        with self.store.room_lock(room), self.store.open(room) as db:
            state, _, _ = db.broadcast()
            if state in ("ending", "ended"):
                return False
            now = self.clock()
            for s in db.sessions():
                if s.ended_at is None:
                    db.end_session(s.id, "broadcast-end", now)
            with db.transaction():
                db.set_broadcast("ending", now)
            return True

    def _publish(self, room: str, db: RoomDb, now: float, final: bool, result: PumpResult) -> set[str]:
        changed: set[str] = set()
        # Read and decide inside one write transaction: an object recorded concurrently either is in this plan
        # or is recorded after it (and then refused if its session was sealed here), never lost in between.
        with db.transaction():
            sessions = db.sessions()
            if not sessions:
                return set()
            inits = db.inits()
            unpublished = db.unpublished()
            views = [SessionView(id=s.id, ended_at=s.ended_at, anchor_pdt=s.anchor_pdt) for s in sessions]
            renditions = sorted({r.name for s in sessions for r in s.ladder})
            segment_s = {s.id: s.segment_seconds for s in sessions}
            for rendition in renditions:
                pending: dict[str, dict[int, ReceivedSegment]] = {}
                for o in unpublished:
                    if o.rendition != rendition:
                        continue
                    init = inits.get((o.session, rendition))
                    timescale = init.timescale if init and init.timescale else 48_000
                    pending.setdefault(o.session, {})[o.idx] = ReceivedSegment(
                        idx=o.idx,
                        uploaded=o.uploaded,
                        received_at=o.received_at,
                        duration_s=o.duration_ticks / timescale,
                        base_time_s=o.base_ticks / timescale,
                        size_bytes=o.size,
                    )
                init_ready = frozenset(
                    s for (s, r), o in inits.items() if r == rendition and o.uploaded and o.timescale
                )
                cursor = _cursor(db, rendition)
                plan = plan_publications(
                    sessions=views,
                    pending=pending,
                    init_uploaded=init_ready,
                    cursor=cursor,
                    now=now,
                    gap_timeout_s=self.policy.gap_factor * max(segment_s.values()),
                    settle_s=self.policy.settle_s,
                    final=final,
                )
                for session_id, anchor in plan.new_anchors.items():
                    db.set_anchor(session_id, anchor)
                for session_id in plan.sealed:
                    db.seal(session_id, rendition)
                views = [
                    SessionView(id=v.id, ended_at=v.ended_at, anchor_pdt=plan.new_anchors.get(v.id, v.anchor_pdt))
                    for v in views
                ]
                for session_id, missing in plan.skipped:
                    log.warning("room=%s %s/%s segment %d never arrived: skipped", room, session_id, rendition, missing)
                for p in plan.publications:
                    received = pending[p.session][p.idx].received_at
                    db.add_published(
                        PublishedRow(
                            rendition=rendition,
                            msn=p.media_sequence,
                            session=p.session,
                            idx=p.idx,
                            duration_s=p.duration_s,
                            pdt=p.pdt,
                            discontinuity=p.discontinuity,
                            size=p.size_bytes,
                            received_at=received,
                        )
                    )
                    changed.add(rendition)
                    result.published += 1
                    result.received_at.append(received)
        return changed

    def _fill(self, room: str, db: RoomDb, now: float, result: PumpResult) -> set[str]:
        """Publish filler for renditions whose source has gone quiet (nothing received and unpublished)."""
        assert self.filler is not None
        sessions = {s.id: s for s in db.sessions()}
        waiting = {o.rendition for o in db.unpublished()}
        inits = db.inits()
        changed: set[str] = set()
        for rendition in db.published_renditions():
            if rendition in waiting:
                continue  # real audio is on its way: never put filler in front of it
            last = db.last_published(rendition)
            session = sessions.get(last.session) if last else None
            init = inits.get((last.session, rendition)) if last else None
            spec = session.rendition(rendition) if session else None
            if last is None or session is None or init is None or not init.timescale or spec is None:
                continue
            frames = math.ceil(session.segment_seconds * spec.sample_rate / AAC_FRAME_SAMPLES)
            duration_s = frames * AAC_FRAME_SAMPLES / init.timescale
            end_pdt = last.pdt + last.duration_s
            count = fillers_needed(
                last_end_pdt=end_pdt,
                now=now,
                segment_s=duration_s,
                lag_s=self.policy.fill_after_segments * session.segment_seconds,
                max_count=self.policy.max_fillers_per_pass,
            )
            if count == 0:
                continue
            try:
                template = self.filler.segment(
                    channels=spec.channels, sample_rate=spec.sample_rate, bitrate=spec.bitrate, frames=frames
                )
            except FillerError as exc:
                log.error("room=%s cannot make filler for %s: %s", room, rendition, exc)
                continue
            anchor = session.anchor_pdt if session.anchor_pdt is not None else end_pdt
            rows: list[PublishedRow] = []
            for k in range(count):
                msn = last.msn + 1 + k
                start_pdt = end_pdt + k * duration_s
                data = fmp4.retime_segment(
                    template,
                    base_decode_time=max(0, round((start_pdt - anchor) * init.timescale)),
                    sequence_number=msn,
                )
                try:
                    # Durable before any playlist names it, like every other segment.
                    self.storage.put(
                        keys.filler_segment(room, session.id, rendition, msn), data, headers_for(ObjectKind.SEGMENT)
                    )
                except StorageError as exc:
                    self.metrics.storage_error(self.storage.name, "put")
                    log.warning("room=%s filler upload failed: %s", room, exc)
                    break
                rows.append(
                    PublishedRow(
                        rendition=rendition,
                        msn=msn,
                        session=session.id,
                        idx=-1,
                        duration_s=duration_s,
                        pdt=start_pdt,
                        discontinuity=False,
                        size=len(data),
                        received_at=now,
                        filler=True,
                    )
                )
            if rows:
                with db.transaction():
                    for row in rows:
                        db.add_published(row)
                changed.add(rendition)
                self.metrics.filler(room, len(rows))
                log.warning(
                    "room=%s source silent for %.1fs: %d filler segment(s) on %s",
                    room,
                    now - end_pdt,
                    len(rows),
                    rendition,
                )
        return changed

    def _write_playlists(self, room: str, db: RoomDb, changed: set[str], *, final: bool) -> bool:
        """Write the changed renditions' playlists, then the masters; True when a master was (re)written."""
        sessions = db.sessions()
        nominal_s = max((s.segment_seconds for s in sessions), default=2.0)
        all_renditions = db.published_renditions()
        writes: list[tuple[str, str, ObjectKind]] = []
        now = self.clock()
        for rendition in all_renditions if final else sorted(changed):
            longest, _, _ = db.rendition_stats(rendition)
            target = target_duration_s(longest, nominal_s)
            tail_from = max(0, db.max_msn(rendition) - 4 * self.policy.live_window_segments - 8)
            tail = [_segment(room, r) for r in db.published(rendition, since_msn=tail_from)]
            window = live_window(tail, min_segments=self.policy.live_window_segments, target_duration=target)
            live_text = render_media_playlist(
                window,
                kind=MediaPlaylistKind.LIVE,
                target_duration=target,
                discontinuity_sequence=db.discontinuities_before(rendition, window[0].media_sequence),
                ended=final,
            )
            replay_text: str | None = None
            if final or now - self._event_written.get((room, rendition), 0.0) >= self.policy.event_playlist_interval_s:
                everything = [_segment(room, r) for r in db.published(rendition)]
                replay_text = render_media_playlist(
                    everything,
                    kind=MediaPlaylistKind.VOD if final else MediaPlaylistKind.EVENT,
                    target_duration=target,
                    discontinuity_sequence=0,
                    ended=final,
                )
            # Invariant: every object named above was uploaded before it was published.
            writes.append((keys.live_playlist(room, rendition), live_text, ObjectKind.LIVE_PLAYLIST))
            if replay_text is not None:
                kind = ObjectKind.REPLAY_PLAYLIST if final else ObjectKind.EVENT_PLAYLIST
                writes.append((keys.replay_playlist(room, rendition), replay_text, kind))
                self._event_written[(room, rendition)] = now
        self._put_all(writes, durable=final)
        return self._write_masters(room, db, sessions, all_renditions, final=final)

    def _put_all(self, writes: list[tuple[str, str, ObjectKind]], *, durable: bool) -> None:
        """Write playlists concurrently; raise the first failure once all have finished (a retry rewrites all).

        Playlists are derived from the durable room state: atomic, but not fsynced until the final version.
        """
        futures = [
            self._io.submit(self.storage.put, key, text.encode(), headers_for(kind), durable=durable)
            for key, text, kind in writes
        ]
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error

    def _write_masters(
        self, room: str, db: RoomDb, sessions: list[SessionRow], renditions: list[str], *, final: bool
    ) -> bool:
        old_master, _ = db.master_texts()
        # Rewrite only when the rendition set changes (or at the end): bandwidth drift alone is noise.
        if not final and old_master is not None and set(_uris(old_master)) == {f"live/{r}.m3u8" for r in renditions}:
            return False
        entries_live: list[RenditionEntry] = []
        entries_replay: list[RenditionEntry] = []
        for rendition in renditions:
            spec = next((s.rendition(rendition) for s in reversed(sessions) if s.rendition(rendition)), None)
            _, peak, average = db.rendition_stats(rendition)
            nominal = spec.bitrate if spec else 0
            bandwidth = int(max(peak, nominal))
            avg = int(max(average, 1))
            channels = spec.channels if spec else 2
            entries_live.append(
                RenditionEntry(
                    uri=f"live/{rendition}.m3u8", bandwidth_bps=bandwidth, average_bandwidth_bps=avg, channels=channels
                )
            )
            entries_replay.append(
                RenditionEntry(
                    uri=f"replay/{rendition}.m3u8",
                    bandwidth_bps=bandwidth,
                    average_bandwidth_bps=avg,
                    channels=channels,
                )
            )
        master = render_master_playlist(entries_live)
        replay_master = render_master_playlist(entries_replay)
        self._put_all(
            [
                (keys.master_playlist(room), master, ObjectKind.MASTER_PLAYLIST),
                (
                    keys.replay_master(room),
                    replay_master,
                    ObjectKind.REPLAY_PLAYLIST if final else ObjectKind.MASTER_PLAYLIST,
                ),
            ],
            durable=True,
        )
        with db.transaction():
            db.set_master_texts(master, replay_master)
        return True


def _uris(master_text: str) -> list[str]:
    return [line for line in master_text.splitlines() if line and not line.startswith("#")]


def _cursor(db: RoomDb, rendition: str) -> Cursor | None:
    last = db.last_published(rendition)
    if last is None:
        return None
    return Cursor(
        session=last.session,
        idx=last.idx if not last.filler else db.last_real_idx(rendition, last.session),
        media_sequence=last.msn,
        end_pdt=last.pdt + last.duration_s,
        after_filler=last.filler,
    )


def _segment(room: str, row: PublishedRow) -> PublishedSegment:
    # Media playlists live one level below the room (live/, replay/), so media is "../media/…".
    prefix = keys.room_prefix(room) + "/"
    if row.filler:
        uri = keys.filler_segment(room, row.session, row.rendition, row.msn).removeprefix(prefix)
    else:
        uri = keys.media_segment(room, row.session, row.rendition, row.idx).removeprefix(prefix)
    media = keys.media_dir(room, row.session, row.rendition).removeprefix(prefix)
    return PublishedSegment(
        media_sequence=row.msn,
        uri=f"../{uri}",
        init_uri=f"../{media}/init.mp4",
        duration_s=row.duration_s,
        program_date_time=datetime.fromtimestamp(row.pdt, tz=UTC),
        discontinuity=row.discontinuity,
    )
