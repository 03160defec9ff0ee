"""Media helpers for transcoder tests: generate sources at test time, probe and decode what arrived."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

AAC_FRAME_SAMPLES = 1024
SAMPLE_RATE = 48_000
# Music-like: pink noise under two tones, so the AAC encoder spends its bits (silence would not).
MUSIC_LIKE = "anoisesrc=r={rate}:a=0.25:c=pink:d={seconds}[n];sine=f=330:r={rate}:d={seconds}[t];[n][t]amix=inputs=2"


def run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{argv[0]} failed: {result.stderr.decode(errors='replace')[-2000:]}"
    return result


def make_music_like(path: Path, *, seconds: float, rate: int = 44_100, channels: int = 2) -> Path:
    graph = MUSIC_LIKE.format(rate=rate, seconds=seconds)
    run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", graph, "-ac", str(channels), "-c:a", "pcm_s16le",
         str(path)])  # fmt: skip
    return path


def make_tone(path: Path, *, freq: float, seconds: float, rate: int = 48_000) -> Path:
    run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=f={freq}:r={rate}:d={seconds}",
         "-af", "volume=0.3", "-c:a", "pcm_s16le", str(path)])  # fmt: skip
    return path


def make_speech(path: Path, text: str, voice: str = "en-us+m3") -> Path:
    espeak = shutil.which("espeak-ng")
    assert espeak is not None, "espeak-ng is required (make test installs it)"
    run([espeak, "-v", voice, "-s", "170", "-w", str(path), text])
    return path


@dataclass(frozen=True, kw_only=True)
class Probe:
    codec: str
    channels: int
    sample_rate: int
    duration_ts: int  # Σ sample durations in the stream's timescale (trun/tfhd against mdhd)
    time_base_den: int


def probe(path: Path) -> Probe:
    out = run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)]).stdout
    streams: list[dict[str, Any]] = json.loads(out)["streams"]
    assert len(streams) == 1, streams
    s = streams[0]
    return Probe(
        codec=s["codec_name"],
        channels=int(s["channels"]),
        sample_rate=int(s["sample_rate"]),
        duration_ts=int(s["duration_ts"]),
        time_base_den=int(s["time_base"].split("/")[1]),
    )


def samples_of(path: Path) -> int:
    """Input length in samples at its own rate (a PCM wav from make_*)."""
    p = probe(path)
    return p.duration_ts * p.sample_rate // p.time_base_den


def decode_pcm(path: Path, *, channels: int = 1, rate: int = SAMPLE_RATE) -> bytes:
    """Decode to s16le; fails the test if ffmpeg cannot decode every byte."""
    return run(["ffmpeg", "-v", "error", "-xerror", "-i", str(path), "-f", "s16le", "-ac", str(channels),
                "-ar", str(rate), "-"]).stdout  # fmt: skip


def aac_priming_samples(workdir: Path) -> int:
    """Encoder delay of ffmpeg's aac encoder, measured: the first packet's pts in a non-fragmented .m4a,
    where the mp4 muxer signals the priming with an edit list (the fMP4 HLS segments do not)."""
    ref = workdir / "priming-ref.m4a"
    run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anoisesrc=r=48000:d=0.5", "-c:a", "aac", str(ref)])
    out = run(["ffprobe", "-v", "error", "-show_entries", "packet=pts", "-of", "csv=p=0", str(ref)]).stdout
    first = int(out.split()[0].split(b",")[0])
    assert first < 0, "expected the edit list to expose the encoder delay as a negative first pts"
    return -first


def tone_level(pcm: np.ndarray, freq: float) -> float:
    """How far the spectrum peak near `freq` stands above the mean (PCM at SAMPLE_RATE)."""
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    bins = np.fft.rfftfreq(len(pcm), 1 / SAMPLE_RATE)
    near = (bins > freq - 20) & (bins < freq + 20)
    return float(spectrum[near].max() / spectrum.mean())
