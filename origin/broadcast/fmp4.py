"""Pure inspection of fragmented MP4 (ISO/IEC 14496-12) init and media segments.

The origin never trusts ffmpeg's playlist: it reads each segment's duration from the boxes and refuses anything
that is not a well-formed CMAF AAC-LC audio object, with a ValidationError naming the box. Parsing follows only
the fixed container paths it needs (bounded depth) and counts box headers against MAX_BOXES: O(size) at most.
Sample data rule (a choice): each moof's samples tile the payload of the mdat right after it (first data offset
at its first byte, contiguous runs, sizes summing to its length), as ffmpeg writes: no byte goes undescribed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from origin.errors import ValidationError

AAC_LC_CODEC = "mp4a.40.2"  # RFC 6381 codecs value for AAC-LC (audio object type 2)
TIMESCALE_RANGE = range(8_000, 192_001)  # mdhd ticks per second
SAMPLE_RATE_RANGE = range(8_000, 96_001)  # Hz
MAX_SAMPLES_PER_SEGMENT = 8192  # ~170 s of 48 kHz AAC, far above any segment the origin publishes
MAX_FRAME_SAMPLES = 2048  # AAC-LC frames are 1024 samples; no sample may last longer than two
MAX_SAMPLE_TICKS_WITHOUT_INIT = MAX_FRAME_SAMPLES * TIMESCALE_RANGE[-1] // SAMPLE_RATE_RANGE[0]  # worst allowed ratio
MAX_DECODE_TIME_TICKS = 2**48  # exact as a float, fits SQLite INTEGER; > 46 years at 192 kHz
MAX_BOXES = 2048  # box headers read per object (a 2 s segment of one-frame LL chunks needs ~700)

_SEGMENT_TOP_LEVEL = frozenset({b"styp", b"sidx", b"prft", b"emsg", b"moof", b"mdat", b"free", b"skip"})
_INIT_TOP_LEVEL = frozenset({b"ftyp", b"moov", b"free", b"skip", b"uuid"})
# ISO/IEC 14496-3 §1.6.3.4 samplingFrequencyIndex 0-12 (13, 14 reserved; 15 = explicit 24-bit rate)
_ASC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_TFHD_FORBIDDEN = 0x010001  # tfhd (§8.8.7) duration-is-empty, base-data-offset (ties a segment to a file position)
_TFHD_SDI, _TFHD_DURATION, _TFHD_SIZE, _TFHD_OPTIONAL = 0x02, 0x08, 0x10, 0x3A  # one u32 each (+ flags 0x20)
_TRUN_DATA_OFFSET, _TRUN_FIRST_SAMPLE_FLAGS = 0x001, 0x004
_TRUN_DURATION, _TRUN_SIZE, _TRUN_PER_SAMPLE = 0x100, 0x200, 0xF00  # trun (§8.8.8) per-sample u32s (+ flags, cto)

_Box = tuple[bytes, int, int, int]  # (type, box start, payload start, box end)
_Index = dict[bytes, list[_Box]]


@dataclass(frozen=True, kw_only=True)
class InitInfo:
    timescale: int  # mdhd timescale of the audio track (ticks per second)
    channels: int  # from the AudioSpecificConfig (ffmpeg writes the template channelcount 2 even for mono)
    sample_rate: int  # from the AudioSpecificConfig (the entry's 16.16 field cannot hold 88.2/96 kHz)
    codec: str  # RFC 6381 codecs value; always AAC_LC_CODEC
    track_id: int
    default_sample_duration: int  # trex defaults (0 = none), used when a fragment gives none
    default_sample_size: int

    @property
    def max_sample_ticks(self) -> int:
        return -(-MAX_FRAME_SAMPLES * self.timescale // self.sample_rate)


@dataclass(frozen=True, kw_only=True)
class SegmentInfo:
    duration_ticks: int  # sum of sample durations, in the track timescale
    base_decode_time: int  # tfdt baseMediaDecodeTime of the first fragment, in the track timescale
    sample_count: int
    fragment_count: int  # moof+mdat pairs: 1 from ffmpeg's hls muxer, several for low-latency chunks
    track_id: int


def _name(kind: bytes) -> str:
    text = kind.decode("latin-1")
    return text if text.isprintable() else kind.hex()


@dataclass(slots=True)
class _Walk:
    """Box header reader over one object, with one budget of header reads."""

    data: bytes
    left: int = MAX_BOXES

    def children(self, start: int, end: int, where: str) -> list[_Box]:
        """The boxes that tile data[start:end] exactly."""
        data, out, off, left = self.data, [], start, self.left
        while off < end:
            left -= 1
            if left < 0:
                raise ValidationError(f"{where}: more than {MAX_BOXES} boxes")
            if end - off < 8:
                raise ValidationError(f"{where}: truncated box header at offset {off}")
            size, kind = struct.unpack_from(">I4s", data, off)
            header = 8
            if size == 1:
                if end - off < 16:
                    raise ValidationError(f"{where}: truncated largesize header at offset {off}")
                (size,) = struct.unpack_from(">Q", data, off + 8)
                header = 16
            elif size == 0:
                size = end - off  # "extends to the end of its container"
            if size < header or size > end - off:
                raise ValidationError(f"{where}: box {_name(kind)} at offset {off} has bad size {size}")
            out.append((kind, off, off + header, off + size))
            off += size
        self.left = left
        return out

    def index(self, box: _Box, where: str) -> _Index:
        idx: _Index = {}
        for child in self.children(box[2], box[3], where):
            idx.setdefault(child[0], []).append(child)
        return idx

    def full_box(self, box: _Box, where: str, *, size: tuple[int, int] | None = None, versions: int = 1) -> int:
        """Flags of a FullBox whose version is below `versions`; `size` = exact payload for (v0, v1)."""
        s, e = box[2], box[3]
        if e - s < 4:
            raise ValidationError(f"{where}: truncated version/flags")
        (vf,) = struct.unpack_from(">I", self.data, s)
        if vf >> 24 >= versions:
            raise ValidationError(f"{where}: unsupported version {vf >> 24}")
        if size is not None and e - s != size[vf >> 24]:
            raise ValidationError(f"{where}: payload is {e - s} bytes, expected {size[vf >> 24]}")
        return int(vf & 0xFFFFFF)


def _one(idx: _Index, kind: bytes, where: str) -> _Box:
    boxes = idx.get(kind, ())
    if len(boxes) != 1:
        raise ValidationError(f"{where}: {len(boxes)} {_name(kind)} boxes, expected exactly one")
    return boxes[0]


def _uint(data: bytes, off: int, version: int = 0) -> int:
    """The u32 (version 0) or u64 (version 1) at data[off]: the FullBox fields that widen with the version."""
    return int(struct.unpack_from(">Q" if version == 1 else ">I", data, off)[0])


def inspect_init(data: bytes) -> InitInfo:
    """Validate an init segment (ftyp + moov with exactly one AAC-LC audio track) and read what playlists need."""
    w = _Walk(data)
    tops = w.children(0, len(data), "init")
    if not tops or tops[0][0] != b"ftyp" or any(b[0] not in _INIT_TOP_LEVEL for b in tops):
        raise ValidationError(f"not an fMP4 init segment: top-level boxes {[_name(b[0]) for b in tops[:8]]}")
    moov = w.index(_one({b"moov": [b for b in tops if b[0] == b"moov"]}, b"moov", "init"), "moov")
    trak = w.index(_one(moov, b"trak", "moov"), "trak")
    tkhd = _one(trak, b"tkhd", "trak")
    w.full_box(tkhd, "tkhd", size=(84, 96), versions=2)
    track_id = _uint(data, tkhd[2] + (20 if data[tkhd[2]] == 1 else 12))
    if track_id == 0:
        raise ValidationError("tkhd: track_ID is 0")
    mdia = w.index(_one(trak, b"mdia", "trak"), "mdia")
    hdlr = _one(mdia, b"hdlr", "mdia")
    w.full_box(hdlr, "hdlr")
    if hdlr[3] - hdlr[2] < 24 or data[hdlr[2] + 8 : hdlr[2] + 12] != b"soun":
        raise ValidationError("hdlr: the track is not audio (handler type is not soun)")
    mdhd = _one(mdia, b"mdhd", "mdia")
    w.full_box(mdhd, "mdhd", size=(24, 36), versions=2)
    timescale = _uint(data, mdhd[2] + (20 if data[mdhd[2]] == 1 else 12))
    if timescale not in TIMESCALE_RANGE:
        raise ValidationError(f"mdhd: timescale {timescale} is outside {TIMESCALE_RANGE.start}-{TIMESCALE_RANGE[-1]}")
    stbl = w.index(_one(w.index(_one(mdia, b"minf", "mdia"), "minf"), b"stbl", "minf"), "stbl")
    stsd = _one(stbl, b"stsd", "stbl")
    w.full_box(stsd, "stsd")
    if stsd[3] - stsd[2] < 8 or _uint(data, stsd[2] + 4) != 1:
        raise ValidationError("stsd: expected exactly one sample entry")
    entries = w.children(stsd[2] + 8, stsd[3], "stsd")
    if len(entries) != 1 or entries[0][0] != b"mp4a":
        raise ValidationError("stsd: the sample entry is not mp4a (AAC)")
    channels, sample_rate = _mp4a(w, entries[0])
    trex = _one(w.index(_one(moov, b"mvex", "moov (not fragmented)"), "mvex"), b"trex", "mvex")
    w.full_box(trex, "trex", size=(24, 24))
    trex_track, _sdi, default_duration, default_size = struct.unpack_from(">4I", data, trex[2] + 4)
    if trex_track != track_id:
        raise ValidationError(f"trex: track_ID {trex_track} is not the trak's {track_id}")
    info = InitInfo(
        timescale=timescale,
        channels=channels,
        sample_rate=sample_rate,
        codec=AAC_LC_CODEC,
        track_id=track_id,
        default_sample_duration=default_duration,
        default_sample_size=default_size,
    )
    if default_duration > info.max_sample_ticks:
        raise ValidationError(f"trex: default sample duration {default_duration} ticks is longer than two AAC frames")
    return info


def _mp4a(w: _Walk, entry: _Box) -> tuple[int, int]:
    """(channels, sample rate) of an AudioSampleEntry (§12.2.3) whose esds says AAC-LC."""
    data, s = w.data, entry[2]
    if entry[3] - s < 28:
        raise ValidationError("mp4a: truncated sample entry")
    # 6 reserved + data_reference_index, then entry version + 6 reserved + channelcount + 6 + samplerate (16.16)
    entry_version, rate_fixed = struct.unpack_from(">H14xI", data, s + 8)
    if entry_version != 0:
        raise ValidationError(f"mp4a: sound sample entry version {entry_version} is not supported")
    esds = _one(w.index((b"mp4a", s, s + 28, entry[3]), "mp4a"), b"esds", "mp4a")
    w.full_box(esds, "esds")
    s, e = _descriptor(data, esds[2] + 4, esds[3], 0x03)  # ES_Descriptor
    if e - s < 3:
        raise ValidationError("esds: truncated ES_Descriptor")
    if data[s + 2] & 0xE0:  # after ES_ID: streamDependence, URL, OCRstream flags (ffmpeg sets none)
        raise ValidationError("esds: ES_Descriptor stream dependence / URL / OCR stream are not supported")
    s, e = _descriptor(data, s + 3, e, 0x04)  # DecoderConfigDescriptor: MPEG-4 audio (0x40), streamType audio (5)
    if e - s < 13 or data[s] != 0x40 or data[s + 1] >> 2 != 0x05:
        raise ValidationError("esds: DecoderConfigDescriptor is not MPEG-4 audio")
    s, e = _descriptor(data, s + 13, e, 0x05)  # DecoderSpecificInfo = AudioSpecificConfig (14496-3 §1.6.2.1)
    if e - s < 2:
        raise ValidationError("esds: truncated AudioSpecificConfig")
    bits = (data[s] << 8) | data[s + 1]  # audioObjectType:5 samplingFrequencyIndex:4 channelConfiguration:4
    if (bits >> 7) & 0xF >= len(_ASC_RATES):  # 15 = explicit rate: the AAC encoders use the table's rates only
        raise ValidationError(f"esds: sampling frequency index {(bits >> 7) & 0xF} is reserved or explicit")
    aot, rate, channels = bits >> 11, _ASC_RATES[(bits >> 7) & 0xF], (bits >> 3) & 0xF
    if aot != 2:
        raise ValidationError(f"esds: audio object type {aot} is not AAC-LC (2)")
    if rate not in SAMPLE_RATE_RANGE:
        raise ValidationError(f"esds: sample rate {rate} Hz is outside {SAMPLE_RATE_RANGE.start}-96000")
    if channels not in (1, 2):
        raise ValidationError(f"esds: channel configuration {channels} is not mono or stereo")
    if rate_fixed >> 16 != (rate if rate <= 0xFFFF else 0):
        raise ValidationError(f"mp4a: sample rate {rate_fixed >> 16} disagrees with the esds ({rate} Hz)")
    return channels, rate


def _descriptor(data: bytes, off: int, end: int, tag: int) -> tuple[int, int]:
    """Payload span of the MPEG-4 descriptor `tag` at data[off] (ISO/IEC 14496-1 §8.3.3: 1-4 size bytes)."""
    if off >= end or data[off] != tag:
        raise ValidationError(f"esds: expected descriptor tag {tag}")
    length = 0
    for i in range(off + 1, min(off + 5, end)):
        length = (length << 7) | (data[i] & 0x7F)
        if not data[i] & 0x80:
            break
    else:
        raise ValidationError(f"esds: descriptor {tag} has a truncated or over-long size")
    if length > end - i - 1:
        raise ValidationError(f"esds: descriptor {tag} runs past its box")
    return i + 1, i + 1 + length


def inspect_segment(data: bytes, *, init: InitInfo | None = None, max_duration_s: float | None = None) -> SegmentInfo:
    """Validate a CMAF media segment ((moof mdat)+, optional styp/sidx/prft/emsg) and sum its durations.

    `init` adds the checks that need the track (track_ID, frame duration, trex defaults); `max_duration_s` needs it."""
    return _scan_segment(data, init, max_duration_s)[0]


def _scan_segment(
    data: bytes, init: InitInfo | None, max_duration_s: float | None
) -> tuple[SegmentInfo, list[int], list[tuple[int, int, int]]]:
    """(info, mfhd sequence_number offsets, (offset, version, value) of every tfdt and sidx time)."""
    if max_duration_s is not None and init is None:
        raise ValueError("max_duration_s needs init (the track timescale)")
    w = _Walk(data)
    tops = w.children(0, len(data), "segment")
    sequences: list[int] = []
    times: list[tuple[int, int, int]] = []
    pending: tuple[int, int] | None = None  # sample bytes the last moof promised its mdat holds
    base = duration = samples = track_id = 0
    for n, box in enumerate(tops):  # error messages name top-level boxes by type and index: mdat[3]
        kind = box[0]
        if kind == b"mdat":
            if pending is None:
                raise ValidationError(f"mdat[{n}]: mdat without a moof before it")
            if box[2] == box[3]:
                raise ValidationError(f"mdat[{n}]: empty mdat")
            if pending != box[2:]:
                raise ValidationError(f"mdat[{n}]: samples cover bytes {pending} but the mdat payload is {box[2:]}")
            pending = None
        elif pending is not None:
            raise ValidationError(f"{_name(kind)}[{n}]: the moof before it is not followed by its mdat")
        elif kind == b"moof":
            try:
                track, sequence, tfdt, frag_duration, frag_samples, pending = _fragment(
                    w, box, init, MAX_SAMPLES_PER_SEGMENT - samples
                )
            except ValidationError as exc:  # say which fragment; inner paths are static strings (cheap)
                raise ValidationError(f"{exc} (top-level box {n})") from None
            if not sequences:
                base, track_id = tfdt[2], track
            elif track != track_id or tfdt[2] != base + duration:
                raise ValidationError(f"moof[{n}]: fragment does not continue the previous one (track_ID, tfdt)")
            sequences.append(sequence)
            times.append(tfdt)
            duration, samples = duration + frag_duration, samples + frag_samples
        elif kind not in _SEGMENT_TOP_LEVEL:
            raise ValidationError(f"not an fMP4 media segment: unexpected top-level box {_name(kind)}")
        elif kind == b"styp" and n != 0:
            raise ValidationError(f"styp[{n}]: styp must come first")
        elif kind == b"sidx":
            if sequences:
                raise ValidationError(f"sidx[{n}]: sidx after a moof")
            version = data[box[2]] if box[3] > box[2] else 0  # SegmentIndexBox (§8.16.3); reference_count is last
            refs = _uint(data, box[2] + 20 + 8 * version) & 0xFFFF if box[3] - box[2] >= 24 + 8 * version else 0
            w.full_box(box, "sidx", size=(24 + 12 * refs, 32 + 12 * refs), versions=2)
            times.append((box[2] + 12, version, _uint(data, box[2] + 12, version)))
    if pending is not None or not sequences:
        raise ValidationError("not an fMP4 media segment: expected moof followed by mdat")
    if base + duration > MAX_DECODE_TIME_TICKS:
        raise ValidationError(f"tfdt: decode time {base} + {duration} is out of range")
    if max_duration_s is not None and init is not None and duration > max_duration_s * init.timescale:
        raise ValidationError(f"segment lasts {duration / init.timescale:.3f} s, more than {max_duration_s} s")
    info = SegmentInfo(
        duration_ticks=duration,
        base_decode_time=base,
        sample_count=samples,
        fragment_count=len(sequences),
        track_id=track_id,
    )
    return info, sequences, times


def _fragment(
    w: _Walk, moof: _Box, init: InitInfo | None, budget: int
) -> tuple[int, int, tuple[int, int, int], int, int, tuple[int, int]]:
    """(track_ID, mfhd sequence offset, (tfdt offset, version, time), duration, samples, data span) of a moof."""
    data = w.data
    boxes = w.index(moof, "moof")
    mfhd = _one(boxes, b"mfhd", "moof")
    w.full_box(mfhd, "moof/mfhd", size=(8, 8))
    traf = w.index(_one(boxes, b"traf", "moof"), "moof/traf")
    tfhd = _one(traf, b"tfhd", "moof/traf")
    flags = w.full_box(tfhd, "moof/traf/tfhd")
    if flags & _TFHD_FORBIDDEN:
        raise ValidationError("moof/traf/tfhd: base-data-offset and duration-is-empty are not allowed in CMAF")
    w.full_box(tfhd, "moof/traf/tfhd", size=(8 + 4 * (flags & _TFHD_OPTIONAL).bit_count(), 0))
    track_id = _uint(data, tfhd[2] + 4)
    if track_id == 0:  # ISO/IEC 14496-12 8.3.2: track_ID 0 is never a track
        raise ValidationError("moof/traf/tfhd: track_ID 0")
    if init is not None and track_id != init.track_id:
        raise ValidationError(f"moof/traf/tfhd: track_ID {track_id} is not the init's {init.track_id}")
    off = tfhd[2] + (12 if flags & _TFHD_SDI else 8)  # optional u32s follow track_ID in flag order
    default_duration = _uint(data, off) if flags & _TFHD_DURATION else init.default_sample_duration if init else 0
    off += 4 if flags & _TFHD_DURATION else 0
    default_size = _uint(data, off) if flags & _TFHD_SIZE else init.default_sample_size if init else 0
    tfdt = _one(traf, b"tfdt", "moof/traf")
    w.full_box(tfdt, "moof/traf/tfdt", size=(8, 12), versions=2)
    version = data[tfdt[2]]
    decode_time = _uint(data, tfdt[2] + 4, version)
    limits = (init.max_sample_ticks if init else MAX_SAMPLE_TICKS_WITHOUT_INIT, default_duration, default_size)
    truns = traf.get(b"trun")
    if not truns:
        raise ValidationError("moof/traf: missing trun box")
    duration = samples = 0
    first: int | None = None  # data offsets count from the moof (default-base-is-moof, or its implied rule)
    for trun in truns:
        d, n, offset, size = _trun(w, trun, budget - samples, limits)
        if first is None:
            if offset is None:
                raise ValidationError("moof/traf/trun: the first run has no data offset")
            first = pos = moof[1] + offset
        elif offset is not None and moof[1] + offset != pos:
            raise ValidationError("moof/traf/trun: sample data is not contiguous with the previous run")
        duration, samples, pos = duration + d, samples + n, pos + size
    return track_id, mfhd[2] + 4, (tfdt[2] + 4, version, decode_time), duration, samples, (first or 0, pos)


def _trun(w: _Walk, box: _Box, budget: int, limits: tuple[int, int, int]) -> tuple[int, int, int | None, int]:
    """(duration, samples, data offset or None, bytes) of a TrackRunBox; limits: (max ticks, default dur, size)."""
    max_ticks, default_duration, default_size = limits
    flags = w.full_box(box, "moof/traf/trun", versions=2)
    s = box[2]
    if box[3] - s < 8:
        raise ValidationError("moof/traf/trun: truncated")
    count = _uint(w.data, s + 4)
    if not 0 < count <= budget:
        raise ValidationError(f"moof/traf/trun: {count} samples (a segment carries 1-{MAX_SAMPLES_PER_SEGMENT})")
    stride = (flags & _TRUN_PER_SAMPLE).bit_count()
    head = 8 + (4 if flags & _TRUN_DATA_OFFSET else 0) + (4 if flags & _TRUN_FIRST_SAMPLE_FLAGS else 0)
    w.full_box(box, "moof/traf/trun", size=(head + 4 * stride * count,) * 2, versions=2)
    offset = struct.unpack_from(">i", w.data, s + 8)[0] if flags & _TRUN_DATA_OFFSET else None
    table = struct.unpack_from(f">{stride * count}I", w.data, s + head)
    if flags & _TRUN_DURATION:
        durations = table[0::stride] if stride > 1 else table
        low, high, duration = min(durations), max(durations), sum(durations)
    else:
        low = high = default_duration
        duration = low * count
    if low <= 0 or high > max_ticks:
        raise ValidationError(f"moof/traf/trun: sample duration {high if low else low} ticks is outside 1-{max_ticks}")
    if flags & _TRUN_SIZE:
        sizes = table[1 if flags & _TRUN_DURATION else 0 :: stride] if stride > 1 else table
        smallest, size = min(sizes), sum(sizes)
    else:
        smallest, size = default_size, default_size * count
    if smallest <= 0:
        raise ValidationError("moof/traf/trun: a sample has no size")
    return duration, count, offset, size


def retime_segment(data: bytes, *, base_decode_time: int, sequence_number: int, init: InitInfo | None = None) -> bytes:
    """Return a copy of a media segment whose first sample decodes at `base_decode_time` (track timescale).

    For the origin's filler (silence): one template placed anywhere on a session's timeline by shifting every tfdt
    (§8.8.12) and sidx time by the same amount and writing the mfhd sequence number (§8.8.5). Sizes do not change."""
    info, sequences, times = _scan_segment(data, init, None)  # refuse anything inspect_segment refuses
    if not 0 <= base_decode_time <= MAX_DECODE_TIME_TICKS - info.duration_ticks:
        raise ValidationError(f"decode time {base_decode_time} is out of range")
    out = bytearray(data)
    for off in sequences:
        struct.pack_into(">I", out, off, sequence_number & 0xFFFFFFFF)
    for off, version, value in times:
        moved = value + base_decode_time - info.base_decode_time
        if not 0 <= moved < 1 << (64 if version == 1 else 32):
            raise ValidationError(f"a version {version} tfdt/sidx cannot hold decode time {moved}")
        struct.pack_into(">Q" if version == 1 else ">I", out, off, moved)
    return bytes(out)
