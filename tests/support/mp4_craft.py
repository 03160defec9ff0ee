"""A tiny ISO-BMFF (ISO/IEC 14496-12) box writer for crafting fMP4 init and media segments at test time.

Defaults build a valid 48 kHz stereo AAC-LC CMAF track shaped like ffmpeg's output; every keyword lets a test
break exactly one thing. `splice` edits a box and fixes the sizes of the boxes around it, so mutations reach the
inner checks instead of failing at the outermost size. Nothing here is committed media: bytes are made per test.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

FRAME = 1024  # AAC-LC samples per frame
CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"dinf", b"edts"})


def u8(*values: int) -> bytes:
    return struct.pack(f">{len(values)}B", *values)


def u16(*values: int) -> bytes:
    return struct.pack(f">{len(values)}H", *values)


def u32(*values: int) -> bytes:
    return struct.pack(f">{len(values)}I", *values)


def u64(*values: int) -> bytes:
    return struct.pack(f">{len(values)}Q", *values)


def box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return u32(8 + len(payload)) + kind + payload


def full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return box(kind, u32((version << 24) | flags), *parts)


# ---- init segment -------------------------------------------------------------------------------------------


def descriptor(tag: int, payload: bytes) -> bytes:
    """MPEG-4 descriptor with ffmpeg's 4-byte size form (0x80 0x80 0x80 len)."""
    n = len(payload)
    return u8(tag, 0x80 | (n >> 21 & 0x7F), 0x80 | (n >> 14 & 0x7F), 0x80 | (n >> 7 & 0x7F), n & 0x7F) + payload


def audio_specific_config(*, object_type: int = 2, freq_index: int = 3, channels: int = 2) -> bytes:
    return u16((object_type << 11) | (freq_index << 7) | (channels << 3))


def esds(
    *, asc: bytes | None = None, object_type_indication: int = 0x40, stream_type: int = 0x05, es_flags: int = 0
) -> bytes:
    dcd = u8(object_type_indication, (stream_type << 2) | 1) + b"\0\0\0" + u32(128_000, 128_000)
    dsi = descriptor(0x05, audio_specific_config() if asc is None else asc)
    es = descriptor(0x03, u16(1) + u8(es_flags) + descriptor(0x04, dcd + dsi) + descriptor(0x06, u8(2)))
    return full_box(b"esds", 0, 0, es)


def mp4a(
    *, sample_rate: int = 48_000, channelcount: int = 2, entry_version: int = 0, children: bytes | None = None
) -> bytes:
    rate_field = sample_rate if sample_rate <= 0xFFFF else 0  # 16.16; ffmpeg writes 0 above 65535 Hz
    head = b"\0" * 6 + u16(1) + u16(entry_version) + b"\0" * 6 + u16(channelcount, 16, 0, 0) + u32(rate_field << 16)
    return box(b"mp4a", head, esds() if children is None else children)


def tkhd(track_id: int = 1) -> bytes:
    return full_box(b"tkhd", 0, 3, u32(0, 0, track_id, 0, 0), u64(0), b"\0" * 8, u32(0x10000, 0, 0) * 3, u32(0, 0))


def trak(*, track_id: int = 1, timescale: int = 48_000, handler: bytes = b"soun", entry: bytes | None = None) -> bytes:
    mdhd = full_box(b"mdhd", 0, 0, u32(0, 0, timescale, 0), u16(0x55C4, 0))
    hdlr = full_box(b"hdlr", 0, 0, u32(0), handler, b"\0" * 12, b"SoundHandler\0")
    stsd = full_box(b"stsd", 0, 0, u32(1), mp4a() if entry is None else entry)
    stbl = box(b"stbl", stsd, *(full_box(k, 0, 0, u32(0)) for k in (b"stts", b"stsc", b"stco")))
    minf = box(b"minf", full_box(b"smhd", 0, 0, u32(0)), stbl)
    return box(b"trak", tkhd(track_id), box(b"mdia", mdhd, hdlr, minf))


def trex(*, track_id: int = 1, default_duration: int = 0, default_size: int = 0) -> bytes:
    return full_box(b"trex", 0, 0, u32(track_id, 1, default_duration, default_size, 0))


def init_segment(*, traks: Sequence[bytes] | None = None, mvex: bytes | None = None, extra: bytes = b"") -> bytes:
    ftyp = box(b"ftyp", b"iso5", u32(512), b"iso5iso6mp41")
    mvhd = full_box(b"mvhd", 0, 0, u32(0, 0, 1000, 0, 0x10000), u16(0x100), b"\0" * 70, u32(2))
    tracks = [trak()] if traks is None else traks
    return ftyp + box(b"moov", mvhd, *tracks, box(b"mvex", trex()) if mvex is None else mvex, extra)


# ---- media segment ------------------------------------------------------------------------------------------


def tfhd(
    *, track_id: int = 1, default_duration: int | None = FRAME, default_size: int | None = None, flags: int = 0
) -> bytes:
    fields = b""
    flags |= 0x020000  # default-base-is-moof
    if default_duration is not None:
        flags, fields = flags | 0x08, fields + u32(default_duration)
    if default_size is not None:
        flags, fields = flags | 0x10, fields + u32(default_size)
    return full_box(b"tfhd", 0, flags, u32(track_id), fields)


def tfdt(time: int, *, version: int = 1) -> bytes:
    return full_box(b"tfdt", version, 0, u64(time) if version == 1 else u32(time))


def trun(
    *,
    sizes: Sequence[int] = (),
    durations: Sequence[int] | None = None,
    data_offset: int | None = 0,
    count: int | None = None,
) -> bytes:
    """A TrackRunBox; `count` may lie about how many samples the table holds."""
    flags = (0x001 if data_offset is not None else 0) | (0x200 if sizes else 0) | (0x100 if durations else 0)
    rows = [
        (u32(durations[i]) if durations else b"") + (u32(sizes[i]) if sizes else b"")
        for i in range(max(len(sizes), len(durations or ())))
    ]
    n = len(rows) if count is None else count
    head = u32(n) + (struct.pack(">i", data_offset) if data_offset is not None else b"")
    return full_box(b"trun", 0, flags, head, *rows)


def fragment(
    *,
    base: int = 0,
    sizes: Sequence[int] = (200,) * 10,
    durations: Sequence[int] | None = None,
    sequence: int = 1,
    tfhd_box: bytes | None = None,
    tfdt_box: bytes | None = None,
    truns: Callable[[int], Sequence[bytes]] | None = None,
    extra_traf: Sequence[bytes] = (),
    extra_moof: Sequence[bytes] = (),
    mdat_payload: bytes | None = None,
) -> bytes:
    """moof + mdat. `truns` gets the data offset of the mdat payload (what ffmpeg writes) and returns the runs."""

    def build(offset: int) -> bytes:
        runs = truns(offset) if truns else [trun(sizes=sizes, durations=durations, data_offset=offset)]
        traf = box(b"traf", tfhd() if tfhd_box is None else tfhd_box, tfdt(base) if tfdt_box is None else tfdt_box,
                   *runs, *extra_traf)  # fmt: skip
        return box(b"moof", full_box(b"mfhd", 0, 0, u32(sequence)), traf, *extra_moof)

    moof = build(len(build(0)) + 8)
    return moof + box(b"mdat", bytes(sum(sizes)) if mdat_payload is None else mdat_payload)


def styp() -> bytes:
    return box(b"styp", b"msdh", u32(0), b"msdhmsix")


def sidx(*, ept: int = 0, version: int = 1, refs: int = 1, reference_count: int | None = None) -> bytes:
    times = u64(ept, 0) if version == 1 else u32(ept, 0)
    n = refs if reference_count is None else reference_count
    return full_box(b"sidx", version, 0, u32(1, 48_000), times, u16(0, n), u32(0, 0, 0x90000000) * refs)


def media_segment(*fragments: bytes, head: bytes | None = None) -> bytes:
    """styp + sidx (ffmpeg's hls muxer shape) + the given moof/mdat pairs (one default fragment if none)."""
    return (styp() + sidx() if head is None else head) + b"".join(fragments or (fragment(),))


# ---- reading and editing ------------------------------------------------------------------------------------


def walk(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of every box, descending into CONTAINERS (and stsd/mp4a); stops at malformed sizes."""
    out: list[tuple[bytes, int, int]] = []
    end = len(data) if end is None else end
    off = start
    while end - off >= 8:
        size, kind = struct.unpack_from(">I4s", data, off)
        if size < 8 or off + size > end:
            break
        out.append((kind, off, off + size))
        if kind in CONTAINERS:
            out.extend(walk(data, off + 8, off + size))
        elif kind == b"stsd":
            out.extend(walk(data, off + 16, off + size))
        elif kind == b"mp4a":
            out.extend(walk(data, off + 36, off + size))
        off += size
    return out


def splice(data: bytes, start: int, end: int, replacement: bytes) -> bytes:
    """Replace data[start:end] (start < end) and grow or shrink every box enclosing it by the difference."""
    delta = len(replacement) - (end - start)
    out = bytearray(data[:start] + replacement + data[end:])
    for _, s, e in walk(data):
        if s < start and end <= e:
            (size,) = struct.unpack_from(">I", out, s)
            struct.pack_into(">I", out, s, (size + delta) & 0xFFFFFFFF)
    return bytes(out)


def find(data: bytes, kind: bytes, nth: int = 0) -> tuple[int, int]:
    """(start, end) of the nth box of that type anywhere in the tree."""
    return [(s, e) for k, s, e in walk(data) if k == kind][nth]


def replace_box(data: bytes, kind: bytes, new: bytes, nth: int = 0) -> bytes:
    return splice(data, *find(data, kind, nth), new)


def top_level(data: bytes) -> list[bytes]:
    """The top-level boxes as separate byte strings (stops at the first malformed size)."""
    out, off = [], 0
    while len(data) - off >= 8:
        (size,) = struct.unpack_from(">I", data, off)
        if size < 8 or off + size > len(data):
            break
        out.append(data[off : off + size])
        off += size
    return out
