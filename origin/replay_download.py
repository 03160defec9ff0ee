"""Replay download: after a broadcast ends, the whole replay as one `.m4a` at `rooms/{room}/replay.m4a`.

Data flow: replay master (final) → its highest-bandwidth rendition's VOD playlist → one part per run of
segments between EXT-X-DISCONTINUITY tags (an ingest session, with its own init segment) → each part written
as init + fragments (a fragmented MP4) → ffmpeg's concat demuxer joins the parts back to back with
`-c copy` (no re-encoding: the AAC packets are the broadcast's own bytes) → upload with the DOWNLOAD headers.
Each part's timestamps restart in the joined file right where the previous part ended, so the file plays
straight through across sessions.

Exactly one worker builds it: every gunicorn worker that sees the end calls `request(room)`; the job runs in a
thread (never on the event loop) and first takes a non-blocking `flock` on `{state_dir}/replay-download/
{room}.lock`; a `{room}.done.json` marker beside it (written after the upload) makes later requests no-ops.

Pure parts: `best_rendition`, `plan_download`, `concat_script`, `remux_argv`. I/O: `ReplayDownloads`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import posixpath
import shutil
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import m3u8

from origin import ids, keys
from origin.cache_policy import ObjectKind, headers_for
from origin.clock import wall_clock
from origin.errors import OriginError
from origin.state import StateStore
from origin.storage.base import Storage

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


def best_rendition(master_text: str) -> str:
    """The highest-bandwidth rendition of a replay master playlist (its URIs are `replay/{rendition}.m3u8`)."""
    master = m3u8.loads(master_text)
    best: tuple[int, str] | None = None
    for variant in master.playlists:
        uri = str(variant.uri)
        head, _, name = uri.partition("/")
        if head != "replay" or not name.endswith(".m3u8"):
            raise ReplayDownloadError(f"unexpected variant URI {uri!r} in the replay master")
        rendition = ids.rendition_name(name.removesuffix(".m3u8"))
        bandwidth = int(variant.stream_info.bandwidth or 0)
        if best is None or bandwidth > best[0]:
            best = (bandwidth, rendition)
    if best is None:
        raise ReplayDownloadError("the replay master lists no rendition")
    return best[1]


def _media_key(room: str, playlist_key: str, uri: str) -> str:
    """Resolve a playlist URI to a storage key under the room's media/ (anything else is refused)."""
    if "://" in uri or uri.startswith("/"):
        raise ReplayDownloadError(f"replay names an absolute URI {uri[:120]!r}", room=room)
    key = posixpath.normpath(posixpath.join(posixpath.dirname(playlist_key), uri))
    if not key.startswith(f"{keys.room_prefix(room)}/media/"):
        raise ReplayDownloadError(f"replay names {uri[:120]!r} outside the room's media", room=room)
    return key


def plan_download(room: str, rendition: str, media_text: str) -> DownloadPlan:
    """Split a final (VOD + ENDLIST) replay media playlist into parts at every discontinuity or new init."""
    playlist_key = keys.replay_playlist(room, rendition)
    playlist = m3u8.loads(media_text)
    if not playlist.is_endlist:
        raise ReplayDownloadError("the replay is not final yet (no EXT-X-ENDLIST)", room=room)
    parts: list[Part] = []
    init_key: str | None = None
    segments: list[str] = []
    duration = 0.0
    for seg in playlist.segments:
        if seg.init_section is None:
            raise ReplayDownloadError(f"segment {seg.uri!r} has no EXT-X-MAP", room=room)
        seg_init = _media_key(room, playlist_key, str(seg.init_section.uri))
        if segments and (seg.discontinuity or seg_init != init_key):
            parts.append(Part(init_key=str(init_key), segment_keys=tuple(segments), duration_s=duration))
            segments, duration = [], 0.0
        init_key = seg_init
        segments.append(_media_key(room, playlist_key, str(seg.uri)))
        duration += float(seg.duration or 0.0)
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


def download_url(public_base_url: str, room: str) -> str:
    return f"{public_base_url}/{keys.replay_download(room)}"


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[bool]:
    """Hold an exclusive, non-blocking flock on `path` while inside; yields False when another holder has it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class ReplayDownloads:
    """Builds each ended room's download once per machine's state dir. `request` is cheap and non-blocking."""

    def __init__(
        self,
        *,
        storage: Storage,
        state_dir: Path,
        on_done: Callable[[str], None] | None = None,
        ffmpeg_bin: str = "ffmpeg",
        ffprobe_bin: str = "ffprobe",
        timeout_s: float = REMUX_TIMEOUT_S,
        clock: Callable[[], float] = wall_clock,
    ) -> None:
        self.storage = storage
        self.dir = Path(state_dir) / MARKER_DIR
        self.on_done = on_done
        self.ffmpeg_bin = ffmpeg_bin
        self.ffprobe_bin = ffprobe_bin
        self.timeout_s = timeout_s
        self.clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-download")
        self._requested: set[str] = set()
        self._lock = threading.Lock()

    def done_marker(self, room: str) -> Path:
        return self.dir / f"{ids.room_id(room)}.done.json"

    def ready(self, room: str) -> bool:
        """True once this machine uploaded the room's download (a local stat; cheap)."""
        return self.done_marker(room).exists()

    def request(self, room: str) -> None:
        """Build the room's download in the background unless this worker already has. Never blocks."""
        with self._lock:
            if room in self._requested:
                return
            self._requested.add(room)
        self._executor.submit(self._run_logged, room)

    def recover(self, store: StateStore) -> None:
        """In the background: build the download of every ended room that has none (e.g. the origin restarted
        during a remux). Every worker may call it at start; the lock and marker keep it to one build."""
        self._executor.submit(self._recover_logged, store)

    def _recover_logged(self, store: StateStore) -> None:
        try:
            self._recover(store)
        except Exception:  # a thread boundary: log it, the next start tries again
            log.exception("replay download recovery failed")

    def _recover(self, store: StateStore) -> None:
        for room in store.known_rooms():
            if self.ready(room):
                continue
            try:
                with store.open(room) as db:
                    state, _, _ = db.broadcast()
                    published = db.master_texts()[1] is not None
            except sqlite3.Error as exc:
                log.warning("room=%s replay download recovery: state unreadable: %s", room, exc)
                continue
            if state == "ended" and published:
                log.info("room=%s replay download missing after the end: building it", room)
                self.request(room)

    def _run_logged(self, room: str) -> None:
        try:
            self.run(room)
        except Exception:  # a thread boundary: log it with the room; a later end notification retries
            log.exception("room=%s replay download failed", room)
            with self._lock:
                self._requested.discard(room)  # a later end notification may try again

    def run(self, room: str) -> bool:
        """Build and upload now (blocking). True if this call wrote it; False if done or another holder has it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.ready(room):
            return False
        with _flock(self.dir / f"{ids.room_id(room)}.lock") as claimed:
            if not claimed:
                log.info("room=%s replay download: another worker is building it", room)
                return False
            if self.ready(room):  # finished by another worker between our check and the lock
                return False
            plan = self._plan(room)
            size = self._build_and_upload(plan)
            marker = {
                "rendition": plan.rendition,
                "bytes": size,
                "duration_s": round(plan.duration_s, 3),
                "parts": len(plan.parts),
                "written_at": self.clock(),
                "pid": os.getpid(),
            }
            tmp = self.done_marker(room).with_suffix(".tmp")
            tmp.write_text(json.dumps(marker))
            os.replace(tmp, self.done_marker(room))
        log.info(
            "room=%s replay download written: %s (%d bytes, %.1f s, %d part(s), rendition %s)",
            room,
            keys.replay_download(room),
            size,
            plan.duration_s,
            len(plan.parts),
            plan.rendition,
        )
        if self.on_done is not None:
            self.on_done(room)
        return True

    def _plan(self, room: str) -> DownloadPlan:
        try:
            master = self.storage.get(keys.replay_master(room)).decode()
            rendition = best_rendition(master)
            media = self.storage.get(keys.replay_playlist(room, rendition)).decode()
        except KeyError as exc:
            raise ReplayDownloadError(f"replay playlist missing: {exc}", room=room) from None
        return plan_download(room, rendition, media)

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
            data = output.read_bytes()
            self.storage.put(keys.replay_download(plan.room), data, headers_for(ObjectKind.DOWNLOAD))
            return len(data)
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
