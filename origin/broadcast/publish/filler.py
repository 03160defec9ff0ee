"""Filler segments: what listeners hear while a room's source is gone (silence, or an operator's slate clip).

`plan_fillers` (pure) decides, per rendition, which media-sequence slots get filler: the live edge advances
on a deadline, not on arrival — once a slot is `deadline_segments` late with nothing publishable, it is
filled at once. `FillerBank` makes the bytes: a template media segment encoded once per (channels, sample
rate, bit rate, frames) with ffmpeg and cached on local disk, retimed (fmp4.retime_segment) onto the
session's timeline. The template uses the transcoder's AAC-LC configuration, so the session's own init
segment decodes it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

from origin.broadcast import fmp4
from origin.broadcast.model import Publication, RenditionSpec, RoomState, Session
from origin.broadcast.sequencer import fillers_due
from origin.contract.ingest import AAC_FRAME_SAMPLES
from origin.errors import OriginError

log = logging.getLogger(__name__)


class FillerError(OriginError):
    pass


@dataclass(frozen=True, kw_only=True)
class FillerSpec:
    """What one filler template is encoded for."""

    channels: int
    sample_rate: int
    bitrate: int
    frames: int


def filler_frames(session: Session, spec: RenditionSpec) -> int:
    """AAC frames in one filler segment of `session` (whole frames covering its segment length)."""
    return math.ceil(session.segment_seconds * spec.sample_rate / AAC_FRAME_SAMPLES)


def filler_specs(state: RoomState) -> set[FillerSpec]:
    """The templates the room's open session would need if its source went quiet now."""
    session = state.open_session()
    if session is None:
        return set()
    return {FillerSpec(channels=r.channels, sample_rate=r.sample_rate, bitrate=r.bitrate,
                       frames=filler_frames(session, r)) for r in session.ladder}  # fmt: skip


@dataclass(eq=False)
class FillerBank:
    cache_dir: Path
    _: KW_ONLY
    slate_file: Path | None = None
    ffmpeg: str = "ffmpeg"

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._memory: dict[str, bytes] = {}
        self._warming: set[FillerSpec] = set()

    def warm(self, specs: Iterable[FillerSpec]) -> None:
        """Encode these templates now, in the background: the first filler of a room must not wait for ffmpeg
        (an encode takes most of a second on a busy host, once per rendition, and the deadline is 0.4 s away)."""
        with self._lock:
            todo = [s for s in specs if s not in self._warming]
            self._warming.update(todo)
        if todo:
            threading.Thread(target=self._warm, args=(todo,), name="filler-warm", daemon=True).start()

    def _warm(self, specs: list[FillerSpec]) -> None:
        for spec in specs:
            try:
                self.segment(channels=spec.channels, sample_rate=spec.sample_rate, bitrate=spec.bitrate,
                             frames=spec.frames)  # fmt: skip
            except FillerError as exc:
                log.warning("filler template %s could not be encoded ahead: %s", spec, exc)

    def segment(self, *, channels: int, sample_rate: int, bitrate: int, frames: int) -> bytes:
        """A media segment of exactly `frames` AAC frames of silence (or of the slate clip)."""
        source = self.slate_file.name if self.slate_file else "silence"
        name = f"{source}-{channels}ch-{sample_rate}-{bitrate}-{frames}"
        key = hashlib.sha1(f"{name}-{self.slate_file}".encode()).hexdigest()[:12] + ".m4s"
        with self._lock:
            cached = self._memory.get(key)
            if cached is not None:
                return cached
            path = self.cache_dir / key
            if path.exists():
                data = path.read_bytes()
            else:
                data = self._encode(channels=channels, sample_rate=sample_rate, bitrate=bitrate, frames=frames)
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_bytes(data)
                os.replace(tmp, path)
            self._memory[key] = data
            return data

    def _encode(self, *, channels: int, sample_rate: int, bitrate: int, frames: int) -> bytes:
        seconds = frames * AAC_FRAME_SAMPLES / sample_rate
        layout = "mono" if channels == 1 else "stereo"
        if self.slate_file:
            source = ["-stream_loop", "-1", "-i", str(self.slate_file)]
        else:
            source = ["-f", "lavfi", "-i", f"anullsrc=r={sample_rate}:cl={layout}"]
        with tempfile.TemporaryDirectory(prefix="spillway-filler-") as tmp:
            out = Path(tmp)
            # Three segments' worth, keep the second: whole frames, no encoder priming at its start.
            argv = [
                self.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", *source,
                "-t", f"{seconds * 3:.6f}", "-ar", str(sample_rate), "-ac", str(channels),
                "-c:a", "aac", "-b:a", str(bitrate), "-f", "hls", "-hls_time", f"{seconds:.6f}",
                "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
                "-hls_segment_filename", str(out / "%03d.m4s"), str(out / "index.m3u8"),
            ]  # fmt: skip
            try:
                proc = subprocess.run(argv, capture_output=True, timeout=60, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise FillerError(f"cannot encode filler audio: {exc}") from exc
            if proc.returncode != 0:
                raise FillerError(f"ffmpeg failed encoding filler audio: {proc.stderr.decode()[-500:]}")
            for candidate in sorted(out.glob("*.m4s")):
                data = candidate.read_bytes()
                info = fmp4.inspect_segment(data)
                if info.duration_ticks == frames * AAC_FRAME_SAMPLES and info.base_decode_time > 0:
                    log.info("encoded a %d-frame %s filler segment (%d ch, %d b/s)", frames, layout, channels, bitrate)
                    return data
        raise FillerError(f"ffmpeg produced no {frames}-frame filler segment")


@dataclass(frozen=True, kw_only=True)
class FillerPolicy:
    deadline_segments: float = 1.4  # a slot this late (in segments past the edge's end) gets filler
    max_per_pass: int = 5


@dataclass(frozen=True, kw_only=True)
class FillerSlot:
    """One filler segment to make: where it goes and how to encode it."""

    publication: Publication
    channels: int
    sample_rate: int
    bitrate: int
    frames: int
    timescale: int
    base_decode_time: int  # on the session's timeline (tfdt), so the session's init decodes it


def filler_deadline(
    state: RoomState, rendition: str, policy: FillerPolicy, advanced_at: float | None = None
) -> float | None:
    """When the rendition's next slot turns late (epoch seconds), or None when it has nothing published.

    The slot is late `deadline_segments` after the edge's PROGRAM-DATE-TIME end — or after the edge last
    advanced (`advanced_at`, the owner's wall clock) if that comes first: a burst of buffered segments (a
    host change's settle time, a drained spool) or an anchor pushed forward by filler puts the PDT end ahead
    of the wall clock, and the edge must still not stand still for longer than the deadline.
    """
    last = state.rendition(rendition).last
    session = state.sessions.get(last.session) if last else None
    if last is None or session is None:
        return None
    deadline_s = policy.deadline_segments * session.segment_seconds
    by_pdt = last.end_pdt + deadline_s
    return by_pdt if advanced_at is None else min(by_pdt, advanced_at + deadline_s)


def plan_fillers(
    state: RoomState, rendition: str, now: float, policy: FillerPolicy, advanced_at: float | None = None
) -> list[FillerSlot]:
    """The filler slots `rendition` needs now (none while its source keeps the edge within the deadline).

    `advanced_at`: when this owner last published on the rendition (see `filler_deadline`).
    """
    rs = state.rendition(rendition)
    last = rs.last
    session = state.sessions.get(last.session) if last else None
    init = rs.inits.get(last.session) if last else None
    spec = session.rendition(rendition) if session else None
    if last is None or session is None or init is None or init.timescale <= 0 or spec is None:
        return []
    frames = filler_frames(session, spec)
    duration_s = frames * AAC_FRAME_SAMPLES / init.timescale
    deadline_s = policy.deadline_segments * session.segment_seconds
    count = fillers_due(last_end_pdt=last.end_pdt, now=now, segment_s=duration_s, deadline_s=deadline_s,
                        max_count=policy.max_per_pass)  # fmt: skip
    if count == 0 and advanced_at is not None and now - advanced_at >= deadline_s:
        count = 1  # the PDT end runs ahead of the wall clock, but the edge has stood still too long
    anchor = session.anchor_pdt if session.anchor_pdt is not None else last.end_pdt
    slots = []
    for k in range(count):
        start = last.end_pdt + k * duration_s
        pub = Publication(rendition=rendition, msn=last.msn + 1 + k, session=session.id,
                          idx=rs.last_real_idx.get(session.id, -1), duration_s=duration_s, pdt=start,
                          discontinuity=False, size=0, received_at=now, filler=True)  # fmt: skip
        slots.append(FillerSlot(publication=pub, channels=spec.channels, sample_rate=spec.sample_rate,
                                bitrate=spec.bitrate, frames=frames, timescale=init.timescale,
                                base_decode_time=max(0, round((start - anchor) * init.timescale))))  # fmt: skip
    return slots
