"""The built-in demo room's audio: a short two-speaker conversation synthesized with espeak-ng (I/O edge).

The clip is written once into a directory the caller owns; ffmpeg loops it in real time (command.py).
Without espeak-ng the demo plays the generated tone-and-noise bed instead (source.DEMO_BED_EXPR).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import wave
from pathlib import Path

from transcoder.errors import SourceError

log = logging.getLogger(__name__)

VOICES = {"host": "en-us+m3", "guest": "en-gb+f3"}
WORDS_PER_MINUTE = 160
GAP_SECONDS = 0.6
DEMO_SCRIPT: tuple[tuple[str, str], ...] = (
    ("host", "Welcome to the Spillway demo room. You are listening to the overflow stream."),
    ("guest", "Thanks for having me. Everyone past the real time cap hears us through H L S."),
    ("host", "The audio is encoded three times: forty eight, sixty four and one hundred twenty eight kilobits."),
    ("guest", "And each rendition goes to the origin in two second segments, over plain H T T P."),
    ("host", "If the encoder crashes, the supervisor starts a new session and the playlist marks a discontinuity."),
    ("guest", "This conversation loops until the transcoder is stopped."),
)


def find_espeak() -> str | None:
    return shutil.which("espeak-ng")


def make_demo_clip(directory: Path, *, espeak: str | None) -> Path | None:
    """Write `demo-room.wav` (mono, espeak's rate) into `directory`; None when espeak-ng is unavailable."""
    if espeak is None:
        log.info("espeak-ng not found; the demo room plays a tone-and-noise bed")
        return None
    parts: list[Path] = []
    for i, (speaker, text) in enumerate(DEMO_SCRIPT):
        part = directory / f"line-{i:02d}.wav"
        result = subprocess.run(
            [espeak, "-v", VOICES[speaker], "-s", str(WORDS_PER_MINUTE), "-w", str(part), text],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0 or not part.is_file():
            message = result.stderr.decode(errors="replace").strip()
            raise SourceError(f"espeak-ng failed (exit {result.returncode}): {message}", source=espeak)
        parts.append(part)
    clip = directory / "demo-room.wav"
    _concatenate(parts, clip, gap_seconds=GAP_SECONDS)
    for part in parts:
        part.unlink()
    return clip


def _concatenate(parts: list[Path], target: Path, *, gap_seconds: float) -> None:
    with wave.open(str(parts[0]), "rb") as first:
        params = first.getparams()
    gap = b"\x00" * (int(params.framerate * gap_seconds) * params.sampwidth * params.nchannels)
    with wave.open(str(target), "wb") as out:
        out.setparams(params)
        for part in parts:
            with wave.open(str(part), "rb") as w:
                if (w.getframerate(), w.getsampwidth(), w.getnchannels()) != (
                    params.framerate, params.sampwidth, params.nchannels,
                ):
                    raise SourceError(f"espeak-ng wrote {part.name} in a different format", source=str(part))
                out.writeframes(w.readframes(w.getnframes()))
            out.writeframes(gap)
