from __future__ import annotations

import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from origin.broadcast import fmp4
from origin.errors import ValidationError
from tests.origin.conftest import Fmp4Media
from tests.support import mp4_craft as c

# ---- real ffmpeg output passes --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Encoded:
    channels: int
    init: bytes
    segments: list[bytes]
    durations_s: list[float]  # ffmpeg's own EXTINF values, empty for the fragmented-mp4 output


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *args], check=True, timeout=60)


def _source(channels: int, seconds: float) -> list[str]:
    return ["-f", "lavfi", "-i", f"anoisesrc=r=48000:a=0.1:d={seconds}", "-c:a", "aac", "-b:a", "64k",
            "-ac", str(channels), "-ar", "48000"]  # fmt: skip


@pytest.fixture(scope="module", params=[1, 2], ids=["mono", "stereo"])
def one_second_hls(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Encoded:
    """ffmpeg 5.1's hls muxer with -hls_segment_type fmp4 and 1 s segments (what the transcoder runs)."""
    out = tmp_path_factory.mktemp("hls1s")
    _ffmpeg(*_source(request.param, 4.0), "-f", "hls", "-hls_time", "1", "-hls_segment_type", "fmp4",
            "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", str(out / "%03d.m4s"),
            str(out / "index.m3u8"))  # fmt: skip
    lines = (out / "index.m3u8").read_text().splitlines()
    return Encoded(
        channels=request.param,
        init=(out / "init.mp4").read_bytes(),
        segments=[p.read_bytes() for p in sorted(out.glob("*.m4s"))],
        durations_s=[float(line.split(":")[1].rstrip(",")) for line in lines if line.startswith("#EXTINF")],
    )


@pytest.fixture(scope="module")
def low_latency(tmp_path_factory: pytest.TempPathFactory) -> Encoded:
    """Fragmented mp4 with 200 ms fragments, grouped five moof+mdat pairs to a segment (LL-HLS parts style)."""
    path = tmp_path_factory.mktemp("ll") / "ll.mp4"
    _ffmpeg(*_source(2, 3.0), "-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof",
            "-frag_duration", "200000", str(path))  # fmt: skip
    boxes = c.top_level(path.read_bytes())
    assert [b[4:8] for b in boxes[:2]] == [b"ftyp", b"moov"]
    pairs = [boxes[i] + boxes[i + 1] for i in range(2, len(boxes) - 1, 2) if boxes[i][4:8] == b"moof"]
    assert len(pairs) >= 10
    segments = [b"".join(pairs[i : i + 5]) for i in range(0, len(pairs), 5)]
    return Encoded(channels=2, init=boxes[0] + boxes[1], segments=segments, durations_s=[])


def test_init_segment_describes_the_aac_track(fmp4_media: Fmp4Media) -> None:
    info = fmp4.inspect_init(fmp4_media.init)
    assert (info.timescale, info.channels, info.sample_rate, info.codec) == (48_000, 2, 48_000, "mp4a.40.2")
    assert (info.track_id, info.max_sample_ticks) == (1, 2048)


def test_segment_durations_match_what_ffmpeg_wrote(fmp4_media: Fmp4Media) -> None:
    init = fmp4.inspect_init(fmp4_media.init)
    base = 0
    for n, (data, expected) in enumerate(zip(fmp4_media.segments, fmp4_media.durations_s, strict=True)):
        info = fmp4.inspect_segment(data, init=init, max_duration_s=2.5)
        assert info == fmp4.inspect_segment(data)  # the init only adds checks
        assert info.duration_ticks / init.timescale == pytest.approx(expected, abs=1e-6)
        assert (info.base_decode_time, info.fragment_count, info.track_id) == (base, 1, 1)  # contiguous times
        if n < len(fmp4_media.segments) - 1:
            assert info.duration_ticks % 1024 == 0  # whole AAC frames; the last one is trimmed
        base += info.duration_ticks


def test_one_second_mono_and_stereo_segments_pass(one_second_hls: Encoded) -> None:
    init = fmp4.inspect_init(one_second_hls.init)
    # channels come from the AudioSpecificConfig: ffmpeg writes the template channelcount 2 even for mono
    assert (init.sample_rate, init.timescale, init.channels) == (48_000, 48_000, one_second_hls.channels)
    base = 0
    for n, (data, expected) in enumerate(zip(one_second_hls.segments, one_second_hls.durations_s, strict=True)):
        info = fmp4.inspect_segment(data, init=init, max_duration_s=1.5)
        if n < len(one_second_hls.segments) - 1:
            assert info.duration_ticks / 48_000 == pytest.approx(expected, abs=1e-6)
        else:  # ffmpeg's EXTINF counts the trimmed last frame whole; the trun has its real length
            assert 0 < info.duration_ticks / 48_000 <= expected
        assert info.base_decode_time == base
        base += info.duration_ticks
    assert base / 48_000 == pytest.approx(4.0, abs=0.05)


def test_low_latency_segments_of_several_moof_mdat_pairs_pass(low_latency: Encoded) -> None:
    init = fmp4.inspect_init(low_latency.init)
    base = 0
    for data in low_latency.segments:
        info = fmp4.inspect_segment(data, init=init, max_duration_s=1.5)
        assert info.fragment_count == len([b for b in c.top_level(data) if b[4:8] == b"moof"])
        assert info.base_decode_time == base
        base += info.duration_ticks
    assert low_latency.segments and fmp4.inspect_segment(low_latency.segments[0]).fragment_count == 5
    assert base / 48_000 == pytest.approx(3.0, abs=0.05)


def test_retime_moves_every_fragment_of_a_low_latency_segment(low_latency: Encoded) -> None:
    init = fmp4.inspect_init(low_latency.init)
    seg = low_latency.segments[1]
    moved = fmp4.retime_segment(seg, base_decode_time=48_000 * 3600, sequence_number=7, init=init)
    before, after = fmp4.inspect_segment(seg, init=init), fmp4.inspect_segment(moved, init=init)
    assert after.base_decode_time == 48_000 * 3600  # later fragments shifted too: else inspect would refuse
    assert (after.duration_ticks, after.sample_count, after.fragment_count) == (
        before.duration_ticks,
        before.sample_count,
        before.fragment_count,
    )


INIT = fmp4.inspect_init(c.init_segment())


# ---- what the init must be ---------------------------------------------------------------------------------------


def _with_entry(entry: bytes) -> bytes:
    return c.init_segment(traks=[c.trak(entry=entry)])


def _with_esds(esds: bytes) -> bytes:
    return _with_entry(c.mp4a(children=esds))


def _asc(**fields: int) -> bytes:
    return _with_esds(c.esds(asc=c.audio_specific_config(**fields)))


BAD_INITS: dict[str, tuple[bytes, str]] = {
    "he-aac": (_asc(object_type=5), "audio object type 5"),
    "aac-main": (_asc(object_type=1), "audio object type 1"),
    "5.1": (_asc(channels=6), "channel configuration 6"),
    "channels-in-pce": (_asc(channels=0), "channel configuration 0"),
    "7350-hz": (_asc(freq_index=12), "sample rate 7350"),
    "explicit-rate": (_asc(freq_index=15), "sampling frequency index 15"),
    "rate-disagrees": (_with_entry(c.mp4a(sample_rate=44_100)), "disagrees"),
    "mp3-in-esds": (_with_esds(c.esds(object_type_indication=0x6B)), "MPEG-4 audio"),
    "esds-url-flag": (_with_esds(c.esds(es_flags=0x40)), "URL"),
    "no-esds": (_with_esds(c.box(b"btrt", c.u32(0, 0, 0))), "0 esds"),
    "esds-garbage": (_with_esds(c.full_box(b"esds", 0, 0, b"\x04\x80")), "tag 3"),
    "esds-size-5-bytes": (_with_esds(c.full_box(b"esds", 0, 0, b"\x03" + b"\x80" * 5)), "over-long"),
    "sound-entry-v1": (_with_entry(c.mp4a(entry_version=1)), "version 1"),
    "opus": (_with_entry(c.box(b"Opus", b"\0" * 28)), "not mp4a"),
    "two-entries": (_with_entry(c.mp4a() + c.mp4a()), "sample entry"),
    "video": (c.init_segment(traks=[c.trak(handler=b"vide")]), "not audio"),
    "no-trak": (c.init_segment(traks=[]), "0 trak"),
    "no-mvex": (c.init_segment(mvex=b""), "not fragmented"),
    "trex-other-track": (c.init_segment(mvex=c.box(b"mvex", c.trex(track_id=2))), "trex: track_ID 2"),
    "trex-huge-duration": (c.init_segment(mvex=c.box(b"mvex", c.trex(default_duration=0xFFFFFFFF))), "trex: default"),
    "track-id-0": (c.init_segment(traks=[c.trak(track_id=0)], mvex=c.box(b"mvex", c.trex(track_id=0))), "is 0"),
    "two-moov": (c.init_segment() + c.init_segment()[28:], "moov"),
    "segment-boxes": (c.init_segment() + c.media_segment(), "top-level"),
}


@pytest.mark.parametrize(("data", "reason"), BAD_INITS.values(), ids=BAD_INITS.keys())
def test_inits_that_are_not_one_aac_lc_track_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        fmp4.inspect_init(data)


@pytest.mark.parametrize(("freq_index", "rate"), [(0, 96_000), (4, 44_100), (11, 8_000)])
def test_init_sample_rates_across_the_range(freq_index: int, rate: int) -> None:
    entry = c.mp4a(sample_rate=rate, children=c.esds(asc=c.audio_specific_config(freq_index=freq_index, channels=1)))
    info = fmp4.inspect_init(c.init_segment(traks=[c.trak(timescale=rate, entry=entry)]))
    assert (info.sample_rate, info.timescale, info.channels) == (rate, rate, 1)


def test_trex_defaults_apply_when_the_fragment_gives_none() -> None:
    init = fmp4.inspect_init(c.init_segment(mvex=c.box(b"mvex", c.trex(default_duration=1024, default_size=50))))
    runs = lambda at: [c.trun(data_offset=at, count=4)]  # noqa: E731 - no sizes or durations in the fragment
    seg = _seg(sizes=[50] * 4, tfhd_box=c.tfhd(default_duration=None), truns=runs)
    assert fmp4.inspect_segment(seg, init=init).duration_ticks == 4 * 1024
    with pytest.raises(ValidationError, match="sample duration 0"):
        fmp4.inspect_segment(seg)  # without the init nothing says how long the samples are


# ---- what a media segment must be --------------------------------------------------------------------------------

_OK = c.fragment()
_MOOF, _MDAT = c.top_level(_OK)


def _seg(**fragment: Any) -> bytes:
    return c.media_segment(c.fragment(**fragment))


def _runs(*runs: tuple[list[int], int | None]) -> Callable[[int], list[bytes]]:
    """truns=... for c.fragment: (sizes, data offset relative to the mdat payload, or None for no offset)."""
    return lambda at: [c.trun(sizes=sizes, data_offset=None if d is None else at + d) for sizes, d in runs]


BAD_SEGMENTS: dict[str, tuple[bytes, str]] = {
    "two-trafs": (_seg(extra_moof=[c.box(b"traf", c.tfhd(), c.tfdt(0))]), "2 traf"),
    "other-track": (_seg(tfhd_box=c.tfhd(track_id=2)), "track_ID 2 is not the init's 1"),
    "track-zero": (_seg(tfhd_box=c.tfhd(track_id=0)), "tfhd: track_ID 0"),
    "base-data-offset": (_seg(tfhd_box=c.full_box(b"tfhd", 0, 0x020009, c.u32(1), c.u64(0), c.u32(1024))), "base-data"),
    "no-tfdt": (c.media_segment(c.replace_box(_OK, b"tfdt", c.box(b"free"))), "0 tfdt"),
    "two-tfdt": (_seg(extra_traf=[c.tfdt(0)]), "2 tfdt"),
    "no-trun": (c.media_segment(c.replace_box(_OK, b"trun", c.box(b"free"))), "missing trun"),
    "no-mfhd": (c.media_segment(c.replace_box(_OK, b"mfhd", c.box(b"free"))), "0 mfhd"),
    "smuggled-bytes": (_seg(mdat_payload=bytes(2000) + b"<script>"), "mdat payload"),
    "mdat-short": (_seg(mdat_payload=bytes(1999)), "mdat payload"),
    "offset-before-mdat": (_seg(truns=_runs(([200] * 10, -8))), "mdat payload"),
    "no-data-offset": (_seg(truns=_runs(([200] * 10, None))), "no data offset"),
    "gap-between-runs": (_seg(truns=_runs(([1000], 0), ([1000], 1001))), "contiguous"),
    "zero-size-sample": (_seg(sizes=[200, 0, 1800]), "no size"),
    "zero-duration": (_seg(sizes=[200], durations=[0]), "sample duration 0"),
    "zero-samples": (_seg(sizes=[200], truns=lambda at: [c.trun(data_offset=at, count=0)]), "0 samples"),
    "moof-without-mdat": (c.media_segment(_MOOF), "expected moof followed by mdat"),
    "mdat-first": (c.media_segment(c.box(b"mdat", b"x"), _OK), "mdat without a moof"),
    "box-between-moof-and-mdat": (c.styp() + _MOOF + c.box(b"free") + _MDAT, "not followed by its mdat"),
    "fragment-gap": (c.media_segment(_OK, c.fragment(base=10 * 1024 + 1)), "does not continue"),
    "styp-late": (c.media_segment(_OK, head=b"") + c.styp(), "styp must come first"),
    "sidx-late": (c.media_segment(_OK, head=b"") + c.sidx(), "sidx after a moof"),
    "sidx-bad-count": (c.media_segment(_OK, head=c.styp() + c.sidx(reference_count=3)), "sidx: payload"),
    "unknown-top-level": (c.media_segment(_OK, head=c.box(b"moov")), "unexpected top-level box moov"),
    "tfdt-far-future": (_seg(base=2**60), "out of range"),
    "tfdt-v2": (_seg(tfdt_box=c.full_box(b"tfdt", 2, 0, c.u64(0))), "unsupported version 2"),
    "too-many-samples": (c.media_segment(*(c.fragment(sizes=[1] * 4096, base=i << 22) for i in range(3))), "4096 s"),
}


@pytest.mark.parametrize(("data", "reason"), BAD_SEGMENTS.values(), ids=BAD_SEGMENTS.keys())
def test_segments_that_break_the_cmaf_rules_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        fmp4.inspect_segment(data, init=INIT)
    with pytest.raises(ValidationError):
        fmp4.retime_segment(data, base_decode_time=0, sequence_number=1, init=INIT)


def test_track_zero_is_refused_without_an_init_too() -> None:
    with pytest.raises(ValidationError, match="track_ID 0"):
        fmp4.inspect_segment(_seg(tfhd_box=c.tfhd(track_id=0)), init=None)


def test_max_duration_bounds_the_segment() -> None:
    seg = c.media_segment(c.fragment(sizes=[10] * 94))  # 94 frames = 2.005 s
    assert fmp4.inspect_segment(seg, init=INIT, max_duration_s=2.1).duration_ticks == 94 * 1024
    with pytest.raises(ValidationError, match=r"more than 2\.0 s"):
        fmp4.inspect_segment(seg, init=INIT, max_duration_s=2.0)
    with pytest.raises(ValueError, match="needs init"):
        fmp4.inspect_segment(seg, max_duration_s=2.0)  # a programming error, not bad input


def test_version_0_tfdt_and_sidx_and_no_styp_pass() -> None:
    seg = c.media_segment(c.fragment(base=5 * 1024, tfdt_box=c.tfdt(5 * 1024, version=0)), head=c.sidx(version=0))
    assert fmp4.inspect_segment(seg, init=INIT).base_decode_time == 5 * 1024


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
def test_garbage_segments_are_refused(fmp4_media: Fmp4Media, mangle: Callable[[bytes], bytes]) -> None:
    with pytest.raises(ValidationError):
        fmp4.inspect_segment(mangle(fmp4_media.segments[0]))


def test_init_and_segment_are_not_interchangeable(fmp4_media: Fmp4Media) -> None:
    with pytest.raises(ValidationError):
        fmp4.inspect_segment(fmp4_media.init)
    with pytest.raises(ValidationError):
        fmp4.inspect_init(fmp4_media.segments[0])


def test_mdat_without_moof_is_refused() -> None:
    body = struct.pack(">I4s", 16, b"mdat") + b"\x00" * 8
    with pytest.raises(ValidationError, match="moof"):
        fmp4.inspect_segment(body)
