"""Filler segments: what listeners hear while a room's source is gone (silence, or an operator's slate clip).

A template media segment is encoded once per (channels, sample rate, bit rate, frames) with ffmpeg and
cached on local disk; the publisher retimes it (fmp4.retime_segment) onto the session's timeline. The
template uses the same AAC-LC configuration as the transcoder's renditions, so the session's own init
segment decodes it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
import threading
from pathlib import Path

from origin import fmp4
from origin.errors import OriginError

log = logging.getLogger(__name__)

AAC_FRAME_SAMPLES = 1024


class FillerError(OriginError):
    pass


class FillerBank:
    def __init__(self, cache_dir: Path, *, slate_file: Path | None = None, ffmpeg: str = "ffmpeg") -> None:
        self.cache_dir = cache_dir
        self.slate_file = slate_file
        self.ffmpeg = ffmpeg
        self._lock = threading.Lock()
        self._memory: dict[str, bytes] = {}

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
