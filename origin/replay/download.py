"""Replay download: after a broadcast ends, the whole replay as one `.m4a` at `rooms/{room}/replay.m4a`.

Data flow: the room's published segments (journal `Published` records, the same rows the VOD replay playlist
was rendered from) → its highest-bitrate rendition → one part per run of segments between discontinuities
(an ingest session, with its own init segment) → each part written as init + fragments (a fragmented MP4) →
ffmpeg's concat demuxer joins the parts back to back with `-c copy` (no re-encoding: the AAC packets are the
broadcast's own bytes) → upload with the DOWNLOAD headers → a `DownloadBuilt` journal record (status.json
then links it). Each part's timestamps restart in the joined file right where the previous part ended, so
the file plays straight through across sessions.

Exactly one worker builds it: the room's publisher asks when the broadcast ends (and any worker finds
ended rooms without one at start); the job runs in a thread and first takes a claim on the room — by
default a non-blocking `flock` on `{state_dir}/replay-download/{room}.lock` (one host), in a fleet the
room's ownership lease (origin/fleet/).

Pure parts: `best_rendition`, `plan_download`, `concat_script`, `remux_argv`. I/O: `ReplayDownloads`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from origin.broadcast.journal.base import Journal
from origin.broadcast.model import BroadcastState, Publication, RoomState
from origin.broadcast.records import DownloadBuilt, Published
from origin.broadcast.states import RoomStates
from origin.clock import wall_clock
from origin.contract import ids, layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.errors import OriginError
from origin.storage.base import Storage, Unpacks

log = logging.getLogger(__name__)

MARKER_DIR = "replay-download"
REMUX_TIMEOUT_S = 600.0  # a multi-hour broadcast remuxes in seconds; this only bounds a stuck ffmpeg
STDERR_TAIL_CHARS = 2000


class ReplayDownloadError(OriginError):
    """The download cannot be built (replay not final, unexpected playlist, ffmpeg failed)."""


@dataclass(frozen=True, kw_only=True)
class Part:
    """A run of segments that share one init segment and continuous timestamps (one ingest session)."""

    init_key: str
    segment_keys: tuple[str, ...]
    duration_s: float


@dataclass(frozen=True, kw_only=True)
class DownloadPlan:
    room: str
    rendition: str
    parts: tuple[Part, ...]

    @property
    def duration_s(self) -> float:
        return sum(p.duration_s for p in self.parts)


def best_rendition(state: RoomState) -> str:
    """The published rendition with the highest nominal bit rate."""
    published = [name for name, rs in state.renditions.items() if rs.published]
    if not published:
        raise ReplayDownloadError("the broadcast published no segment", room=state.room)
    def bitrate(name: str) -> tuple[int, str]:
        spec = state.spec(name)
        return (spec.bitrate if spec else 0, name)

    return max(published, key=bitrate)


def plan_download(room: str, rendition: str, publications: Sequence[Publication]) -> DownloadPlan:
    """Split the rendition's publications into parts at every discontinuity or change of session."""
    parts: list[Part] = []
    init_key: str | None = None
    segments: list[str] = []
    duration = 0.0
    for p in sorted((p for p in publications if p.rendition == rendition), key=lambda p: p.msn):
        seg_init = layout.init_segment(room, p.session, rendition)
        if segments and (p.discontinuity or seg_init != init_key):
            parts.append(Part(init_key=str(init_key), segment_keys=tuple(segments), duration_s=duration))
            segments, duration = [], 0.0
        init_key = seg_init
        key = (layout.filler_segment(room, p.session, rendition, p.msn) if p.filler
               else layout.media_segment(room, p.session, rendition, p.idx))  # fmt: skip
        segments.append(key)
        duration += p.duration_s
    if segments:
        parts.append(Part(init_key=str(init_key), segment_keys=tuple(segments), duration_s=duration))
    if not parts:
        raise ReplayDownloadError("the replay has no segment", room=room)
    return DownloadPlan(room=room, rendition=rendition, parts=tuple(parts))


def concat_script(paths: Sequence[Path]) -> str:
    """An ffconcat list naming each part file (single-quoted, quotes escaped as the format requires)."""
    lines = ["ffconcat version 1.0"]
    for path in paths:
        quoted = str(path).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    return "\n".join(lines) + "\n"


def remux_argv(*, concat_list: Path, output: Path, ffmpeg_bin: str = "ffmpeg") -> list[str]:
    """Join the parts into one M4A without re-encoding (`-c copy`), index first (`+faststart`)."""
    source = ffmpeg.input(str(concat_list), f="concat", safe=0)
    out = ffmpeg.output(source["a:0"], str(output), c="copy", movflags="+faststart", f="ipod")
    argv: list[str] = (
        out.global_args("-hide_banner", "-nostdin", "-v", "error").overwrite_output().compile(cmd=ffmpeg_bin)
    )
    return argv


@contextlib.contextmanager
def _flock(path: Path, *, wait: bool = False) -> Iterator[bool]:
    """Hold an exclusive flock on `path` while inside; yields False when another holder has it (unless `wait`)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class ReplayDownloads:
    """Builds each ended room's download once. `request` is cheap and non-blocking."""

    def __init__(
        self,
        *,
        storage: Storage,
        states: RoomStates,
        state_dir: Path,
        on_done: Callable[[str], None] | None = None,
        ffmpeg_bin: str = "ffmpeg",
        ffprobe_bin: str = "ffprobe",
        timeout_s: float = REMUX_TIMEOUT_S,
        clock: Callable[[], float] = wall_clock,
        claim: Callable[[str, bool], AbstractContextManager[bool]] | None = None,
    ) -> None:
        self.storage = storage
        self.states = states
        self.journal: Journal = states.journal
        self.dir = Path(state_dir) / MARKER_DIR
        self.on_done = on_done
        self.ffmpeg_bin = ffmpeg_bin
        self.ffprobe_bin = ffprobe_bin
        self.timeout_s = timeout_s
        self.clock = clock
        self.claim = claim or self._host_claim
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-download")
        self._requested: set[str] = set()
        self._lock = threading.Lock()

    def _host_claim(self, room: str, wait: bool) -> AbstractContextManager[bool]:
        """(room, wait) -> held or not: one host's flock; a fleet passes the room's lease instead."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return _flock(self.dir / f"{ids.room_id(room)}.lock", wait=wait)

    def _status(self, room: str) -> tuple[BroadcastState, bool, bool]:
        """(state, anything published, download built)."""
        with self.states.hold(room) as state:
            published = any(rs.published for rs in state.renditions.values())
            return state.state, published, state.download_bytes is not None

    def request(self, room: str) -> None:
        """Build the room's download in the background unless this worker already has. Never blocks."""
        with self._lock:
            if room in self._requested:
                return
            self._requested.add(room)
        self._executor.submit(self._run_logged, room)

    def recover(self) -> None:
        """In the background: build the download of every ended room that has none (e.g. the origin restarted
        during a remux). Every worker may call it at start; the lock and the journal keep it to one build."""
        self._executor.submit(self._recover_logged)

    def _recover_logged(self) -> None:
        try:
            for room in self.journal.rooms():
                state, published, built = self._status(room)
                if state is BroadcastState.ENDED and published and not built:
                    log.info("room=%s replay download missing after the end: building it", room)
                    self.request(room)
        except Exception:  # a thread boundary: log it, the next start tries again
            log.exception("replay download recovery failed")

    @contextlib.contextmanager
    def held(self, room: str) -> Iterator[None]:
        """Wait for a build of the room's download in progress (in any worker) and keep new ones out while
        inside: deleting a room must not race a remux that uploads replay.m4a and journals it afterwards."""
        with self.claim(room, True):
            yield
        with self._lock:
            self._requested.discard(room)  # a room made again under the same id gets its own download

    def _run_logged(self, room: str) -> None:
        try:
            self.run(room)
        except Exception:  # a thread boundary: log it with the room; a later request retries
            log.exception("room=%s replay download failed", room)
            with self._lock:
                self._requested.discard(room)

    def run(self, room: str) -> bool:
        """Build and upload now (blocking). True if this call wrote it; False if done or another holder has it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with self.claim(room, False) as claimed:
            if not claimed:
                log.info("room=%s replay download: another worker is building it", room)
                return False
            state, published, built = self._status(room)
            if built or not published or state is not BroadcastState.ENDED:
                return False
            if isinstance(self.storage, Unpacks):  # the replay's segments become files before the download is built
                moved = self.storage.unpack(layout.room_prefix(room) + "/media/")
                log.info("room=%s %d packed objects of the ended broadcast are files now", room, moved)
            plan = self._plan(room)
            size = self._build_and_upload(plan)
            with self.journal.locked(room):
                self.journal.append(room, [DownloadBuilt(size=size)])
            self.journal.sync()
        log.info("room=%s replay download written: %s (%d bytes, %.1f s, %d part(s), rendition %s)", room,
                 layout.replay_download(room), size, plan.duration_s, len(plan.parts), plan.rendition)  # fmt: skip
        if self.on_done is not None:
            self.on_done(room)
        return True

    def _plan(self, room: str) -> DownloadPlan:
        with self.states.hold(room) as state:
            rendition = best_rendition(state)
        records, _ = self.journal.read(room, 0)
        publications = [p for r in records if isinstance(r, Published) for p in r.publications]
        return plan_download(room, rendition, publications)

    def _build_and_upload(self, plan: DownloadPlan) -> int:
        work = Path(tempfile.mkdtemp(prefix=f"work-{plan.room}-", dir=self.dir))
        try:
            part_paths = []
            for i, part in enumerate(plan.parts):
                path = work / f"part-{i:04d}.mp4"
                with path.open("wb") as fh:
                    for key in (part.init_key, *part.segment_keys):
                        fh.write(self.storage.get(key))
                part_paths.append(path)
            self._check_same_codec(plan.room, part_paths)
            concat_list = work / "parts.ffconcat"
            concat_list.write_text(concat_script(part_paths))
            output = work / "replay.m4a"
            argv = remux_argv(concat_list=concat_list, output=output, ffmpeg_bin=self.ffmpeg_bin)
            log.debug("room=%s remux: %s", plan.room, argv)
            proc = subprocess.run(argv, capture_output=True, timeout=self.timeout_s, check=False)
            if proc.returncode != 0 or not output.exists():
                tail = proc.stderr.decode(errors="replace")[-STDERR_TAIL_CHARS:]
                raise ReplayDownloadError(f"ffmpeg remux exited {proc.returncode}: {tail}", room=plan.room)
            # Streamed, never read into memory: a 3 h broadcast at 128 kb/s is ~170 MB.
            self.storage.put_file(layout.replay_download(plan.room), output, headers_for(ObjectKind.DOWNLOAD))
            return output.stat().st_size
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _check_same_codec(self, room: str, paths: Sequence[Path]) -> None:
        """`-c copy` joins only parts with one codec configuration; refuse rather than write a broken file."""
        seen: dict[tuple[object, ...], Path] = {}
        for path in paths:
            proc = subprocess.run(
                [self.ffprobe_bin, "-v", "error", "-select_streams", "a:0", "-show_entries",
                 "stream=codec_name,profile,sample_rate,channels", "-of", "json", str(path)],
                capture_output=True, timeout=60, check=False,
            )  # fmt: skip
            if proc.returncode != 0:
                tail = proc.stderr.decode(errors="replace")[-STDERR_TAIL_CHARS:]
                raise ReplayDownloadError(f"ffprobe cannot read {path.name}: {tail}", room=room)
            streams = json.loads(proc.stdout or b"{}").get("streams") or [{}]
            seen.setdefault(tuple(sorted(streams[0].items())), path)
        if len(seen) > 1:
            raise ReplayDownloadError(f"sessions differ in codec parameters: {sorted(seen)}", room=room)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
