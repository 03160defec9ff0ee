from __future__ import annotations

import struct

import pytest

from origin import fmp4
from origin.errors import ValidationError
from tests.origin.conftest import Fmp4Media


def test_init_segment_describes_the_aac_track(fmp4_media: Fmp4Media) -> None:
    info = fmp4.inspect_init(fmp4_media.init)
    assert info.timescale == 48_000
    assert info.channels == 2
    assert info.sample_rate == 48_000
    assert info.codec == "mp4a.40.2"


def test_segment_durations_match_what_ffmpeg_wrote(fmp4_media: Fmp4Media) -> None:
    timescale = fmp4.inspect_init(fmp4_media.init).timescale
    base = 0
    for n, (data, expected) in enumerate(zip(fmp4_media.segments, fmp4_media.durations_s, strict=True)):
        info = fmp4.inspect_segment(data)
        assert info.duration_ticks / timescale == pytest.approx(expected, abs=1e-6)
        assert info.base_decode_time == base  # contiguous decode times
        if n < len(fmp4_media.segments) - 1:
            assert info.duration_ticks % 1024 == 0  # whole AAC frames; the last one is trimmed
        base += info.duration_ticks


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b"",
        lambda b: b"garbage that is not an mp4 at all",
        lambda b: b[: len(b) // 2],  # truncated mid-box
        lambda b: b + b"\x00\x00",  # trailing bytes that are not a box
        lambda b: struct.pack(">I4s", 8, b"ftyp") + b[8:],  # first box size lies
        lambda b: b"ID3\x04\x00" + b,  # an mp3 tag glued in front
    ],
)
def test_garbage_segments_are_refused(fmp4_media: Fmp4Media, mangle: object) -> None:
    with pytest.raises(ValidationError):
        fmp4.inspect_segment(mangle(fmp4_media.segments[0]))  # type: ignore[operator]


def test_init_and_segment_are_not_interchangeable(fmp4_media: Fmp4Media) -> None:
    with pytest.raises(ValidationError):
        fmp4.inspect_segment(fmp4_media.init)
    with pytest.raises(ValidationError):
        fmp4.inspect_init(fmp4_media.segments[0])


def test_mdat_without_moof_is_refused() -> None:
    body = struct.pack(">I4s", 16, b"mdat") + b"\x00" * 8
    with pytest.raises(ValidationError, match="moof"):
        fmp4.inspect_segment(body)
