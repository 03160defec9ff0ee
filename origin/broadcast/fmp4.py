"""Pure inspection of fragmented MP4 (ISO/IEC 14496-12) init and media segments.

The origin never trusts ffmpeg's playlist: it learns each segment's duration from the boxes
themselves and refuses anything that is not a well-formed CMAF audio object, before storing a byte.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from origin.errors import ValidationError

# Boxes a CMAF media segment may carry at top level (styp, sidx and prft are optional).
_SEGMENT_TOP_LEVEL = frozenset({b"styp", b"sidx", b"prft", b"emsg", b"moof", b"mdat", b"free", b"skip"})
_INIT_TOP_LEVEL = frozenset({b"ftyp", b"moov", b"free", b"skip", b"uuid"})

# tfhd flags (14496-12 §8.8.7) and trun flags (§8.8.8)
_TFHD_BASE_DATA_OFFSET = 0x000001
_TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002
_TFHD_DEFAULT_SAMPLE_DURATION = 0x000008
_TRUN_DATA_OFFSET = 0x000001
_TRUN_FIRST_SAMPLE_FLAGS = 0x000004
_TRUN_SAMPLE_DURATION = 0x000100
_TRUN_SAMPLE_SIZE = 0x000200
_TRUN_SAMPLE_FLAGS = 0x000400
_TRUN_SAMPLE_CTO = 0x000800


@dataclass(frozen=True, kw_only=True)
class InitInfo:
    timescale: int  # mdhd timescale of the audio track (ticks per second)
    channels: int
    sample_rate: int
    codec: str  # RFC 6381 codecs value, e.g. "mp4a.40.2"


@dataclass(frozen=True, kw_only=True)
class SegmentInfo:
    duration_ticks: int  # sum of sample durations, in the track timescale
    base_decode_time: int  # tfdt baseMediaDecodeTime, in the track timescale
    sample_count: int


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield (type, payload_start, box_end) for each box in data[start:end]; the boxes must tile it exactly."""
    off = start
    while off < end:
        if end - off < 8:
            raise ValidationError(f"truncated box header at offset {off}")
        size, box_type = struct.unpack_from(">I4s", data, off)
        header = 8
        if size == 1:
            if end - off < 16:
                raise ValidationError(f"truncated largesize box at offset {off}")
            (size,) = struct.unpack_from(">Q", data, off + 8)
            header = 16
        elif size == 0:
            size = end - off
        if size < header or off + size > end:
            raise ValidationError(f"box {box_type!r} at offset {off} has bad size {size}")
        yield box_type, off + header, off + size
        off += size


def _child(data: bytes, start: int, end: int, box_type: bytes) -> tuple[int, int]:
    for t, s, e in _boxes(data, start, end):
        if t == box_type:
            return s, e
    raise ValidationError(f"missing {box_type.decode('latin-1')} box")


def _path(data: bytes, start: int, end: int, *types: bytes) -> tuple[int, int]:
    for t in types:
        start, end = _child(data, start, end, t)
    return start, end


def inspect_init(data: bytes) -> InitInfo:
    """Validate an init segment (ftyp + moov with one AAC audio track) and read what playlists need."""
    tops = [t for t, _, _ in _boxes(data, 0, len(data))]
    if not tops or tops[0] != b"ftyp" or b"moov" not in tops:
        raise ValidationError("not an fMP4 init segment: expected ftyp then moov")
    if any(t not in _INIT_TOP_LEVEL for t in tops):
        raise ValidationError(f"unexpected top-level boxes in init segment: {tops}")
    moov = _child(data, 0, len(data), b"moov")
    _child(data, *moov, b"mvex")  # fragmented: movie extends must be present
    mdia = _path(data, *moov, b"trak", b"mdia")
    hdlr_s, _ = _child(data, *mdia, b"hdlr")
    if data[hdlr_s + 8 : hdlr_s + 12] != b"soun":
        raise ValidationError("init segment track is not audio")
    mdhd_s, _ = _child(data, *mdia, b"mdhd")
    version = data[mdhd_s]
    timescale_off = mdhd_s + (20 if version == 1 else 12)
    (timescale,) = struct.unpack_from(">I", data, timescale_off)
    if timescale <= 0:
        raise ValidationError("mdhd timescale is zero")
    stsd_s, stsd_e = _path(data, *mdia, b"minf", b"stbl", b"stsd")
    entries = list(_boxes(data, stsd_s + 8, stsd_e))  # skip version/flags + entry_count
    if not entries or entries[0][0] != b"mp4a":
        raise ValidationError("init segment sample entry is not mp4a (AAC)")
    entry_s = entries[0][1]
    # AudioSampleEntry: 6 reserved + 2 data_ref_index + 8 reserved + channelcount(2) + samplesize(2)
    # + pre_defined(2) + reserved(2) + samplerate (16.16)
    channels, _sample_size = struct.unpack_from(">HH", data, entry_s + 16)
    (rate_fixed,) = struct.unpack_from(">I", data, entry_s + 24)
    return InitInfo(
        timescale=timescale,
        channels=channels,
        sample_rate=rate_fixed >> 16,
        codec=_audio_codec(data, entry_s + 28, entries[0][2]),
    )


def _audio_codec(data: bytes, start: int, end: int) -> str:
    """RFC 6381 codec string from the esds DecoderConfigDescriptor (mp4a.40.<audio object type>)."""
    try:
        esds_s, esds_e = _child(data, start, end, b"esds")
    except ValidationError:
        return "mp4a.40.2"
    blob = data[esds_s + 4 : esds_e]
    dcd = blob.find(b"\x04")
    # DecoderConfigDescriptor tag 0x04, then length (1-4 bytes), objectTypeIndication, ...,
    # DecoderSpecificInfo tag 0x05 whose first 5 bits are the audio object type.
    if dcd < 0:
        return "mp4a.40.2"
    dsi = blob.find(b"\x05", dcd + 1)
    i = dsi + 1
    while 0 < i < len(blob) and blob[i] & 0x80:
        i += 1
    if dsi < 0 or i + 1 >= len(blob):
        return "mp4a.40.2"
    object_type = blob[i + 1] >> 3
    return f"mp4a.40.{object_type}"


def inspect_segment(data: bytes) -> SegmentInfo:
    """Validate a CMAF media segment (moof + mdat) and sum its sample durations."""
    tops = list(_boxes(data, 0, len(data)))
    types = [t for t, _, _ in tops]
    if any(t not in _SEGMENT_TOP_LEVEL for t in types):
        raise ValidationError(f"not an fMP4 media segment: top-level boxes {types}")
    if b"moof" not in types or b"mdat" not in types or types.index(b"moof") > types.index(b"mdat"):
        raise ValidationError("not an fMP4 media segment: expected moof followed by mdat")
    duration = 0
    samples = 0
    base_time: int | None = None
    for t, s, e in tops:
        if t != b"moof":
            continue
        for traf_type, traf_s, traf_e in _boxes(data, s, e):
            if traf_type != b"traf":
                continue
            d, n, bt = _traf(data, traf_s, traf_e)
            duration += d
            samples += n
            base_time = bt if base_time is None else base_time
    if samples == 0 or duration <= 0:
        raise ValidationError("media segment carries no samples")
    return SegmentInfo(duration_ticks=duration, base_decode_time=base_time or 0, sample_count=samples)


def _traf(data: bytes, start: int, end: int) -> tuple[int, int, int]:
    tfhd_s, _ = _child(data, start, end, b"tfhd")
    (tfhd_vf,) = struct.unpack_from(">I", data, tfhd_s)
    tfhd_flags = tfhd_vf & 0xFFFFFF
    off = tfhd_s + 8  # version/flags + track_ID
    if tfhd_flags & _TFHD_BASE_DATA_OFFSET:
        off += 8
    if tfhd_flags & _TFHD_SAMPLE_DESCRIPTION_INDEX:
        off += 4
    default_duration = 0
    if tfhd_flags & _TFHD_DEFAULT_SAMPLE_DURATION:
        (default_duration,) = struct.unpack_from(">I", data, off)
    base_time = 0
    for t, s, _e in _boxes(data, start, end):
        if t == b"tfdt":
            base_time = (
                struct.unpack_from(">Q", data, s + 4)[0] if data[s] == 1 else struct.unpack_from(">I", data, s + 4)[0]
            )
    duration = 0
    samples = 0
    for t, s, e in _boxes(data, start, end):
        if t != b"trun":
            continue
        (vf, count) = struct.unpack_from(">II", data, s)
        flags = vf & 0xFFFFFF
        off = s + 8
        if flags & _TRUN_DATA_OFFSET:
            off += 4
        if flags & _TRUN_FIRST_SAMPLE_FLAGS:
            off += 4
        per_sample = 4 * sum(
            1 for f in (_TRUN_SAMPLE_DURATION, _TRUN_SAMPLE_SIZE, _TRUN_SAMPLE_FLAGS, _TRUN_SAMPLE_CTO) if flags & f
        )
        if off + per_sample * count > e:
            raise ValidationError("trun sample table runs past its box")
        if flags & _TRUN_SAMPLE_DURATION:
            for i in range(count):
                duration += struct.unpack_from(">I", data, off + i * per_sample)[0]
        else:
            duration += default_duration * count
        samples += count
    return duration, samples, base_time


def retime_segment(data: bytes, *, base_decode_time: int, sequence_number: int) -> bytes:
    """Return a copy of a media segment whose first sample decodes at `base_decode_time` (track timescale).

    Used for the origin's filler (silence) segments: one encoded template, placed anywhere on a session's
    timeline by rewriting tfdt (§8.8.12) and the fragment sequence number in mfhd (§8.8.5). Sizes do not
    change, so every offset in the segment stays valid.
    """
    inspect_segment(data)  # refuse anything that is not a media segment
    out = bytearray(data)
    for t, s, e in _boxes(data, 0, len(data)):
        if t != b"moof":
            continue
        for mt, ms, me in _boxes(data, s, e):
            if mt == b"mfhd":
                struct.pack_into(">I", out, ms + 4, sequence_number & 0xFFFFFFFF)
            elif mt == b"traf":
                for tt, ts, _te in _boxes(data, ms, me):
                    if tt != b"tfdt":
                        continue
                    if data[ts] == 1:
                        struct.pack_into(">Q", out, ts + 4, base_decode_time)
                    elif base_decode_time <= 0xFFFFFFFF:
                        struct.pack_into(">I", out, ts + 4, base_decode_time)
                    else:
                        raise ValidationError("tfdt version 0 cannot hold this decode time")
    for t2, s2, _e2 in _boxes(data, 0, len(data)):
        if t2 == b"sidx":
            # sidx earliest_presentation_time must agree with tfdt for players that read it.
            if data[s2] == 1:
                struct.pack_into(">Q", out, s2 + 12, base_decode_time)
            elif base_decode_time <= 0xFFFFFFFF:
                struct.pack_into(">I", out, s2 + 12, base_decode_time)
    return bytes(out)
