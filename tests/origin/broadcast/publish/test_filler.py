from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from origin.broadcast import fmp4
from origin.broadcast.publish.filler import FillerBank
from tests.origin.conftest import Fmp4Media


def test_retimed_segment_lands_where_asked(fmp4_media: Fmp4Media) -> None:
    seg = fmp4_media.segments[1]
    moved = fmp4.retime_segment(seg, base_decode_time=48_000 * 3600, sequence_number=9)
    before, after = fmp4.inspect_segment(seg), fmp4.inspect_segment(moved)
    assert after.base_decode_time == 48_000 * 3600
    assert (after.duration_ticks, after.sample_count) == (before.duration_ticks, before.sample_count)
    assert len(moved) == len(seg)


def test_filler_decodes_as_continuous_silence_after_real_audio(tmp_path: Path, fmp4_media: Fmp4Media) -> None:
    """init + real segments + retimed filler decode with no timestamp jump and the filler is silent."""
    bank = FillerBank(tmp_path / "cache")
    filler = bank.segment(channels=2, sample_rate=48_000, bitrate=64_000, frames=94)
    assert fmp4.inspect_segment(filler).duration_ticks == 94 * 1024
    real = fmp4_media.segments[:2]
    end = sum(fmp4.inspect_segment(s).duration_ticks for s in real)
    fills = [fmp4.retime_segment(filler, base_decode_time=end + k * 94 * 1024, sequence_number=k) for k in range(2)]
    stream = tmp_path / "joined.mp4"
    stream.write_bytes(fmp4_media.init + b"".join(real) + b"".join(fills))
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(stream), "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
        capture_output=True,
        check=True,
    ).stdout
    total_s = len(pcm) / 2 / 48_000
    assert total_s == pytest.approx((end + 2 * 94 * 1024) / 48_000 - 1024 / 48_000, abs=0.05)
    tail = memoryview(pcm)[-48_000 * 2 * 3 // 2 :].cast("h")  # the last 1.5 s: filler only
    assert max(abs(x) for x in tail) < 50
    # Cached: a second bank on the same directory does not run ffmpeg again.
    assert FillerBank(tmp_path / "cache", ffmpeg="/nonexistent/ffmpeg").segment(
        channels=2, sample_rate=48_000, bitrate=64_000, frames=94
    ) == filler
