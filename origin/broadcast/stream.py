"""Low-latency ingest, pure: a chunked fragmented-MP4 stream split into its init and its parts, and parts
grouped into segments.

    ftyp moov | moof mdat | moof mdat | …      (ffmpeg: -f mp4 -movflags empty_moov+default_base_moof
                                                -frag_duration 200000 -flush_packets 1, PUT chunked)
      init     part 0      part 1

`FragmentStream.feed` takes the body's chunks as they arrive and returns whole pieces; a box larger than the
cap, a size field that cannot be a box, or media before the init is a ValidationError. `SegmentCutter` closes a
segment once its parts last about the session's segment length (≥ the length minus half a part), so every
rendition of a session, fed the same frames, cuts at the same parts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from origin.errors import ValidationError

_INIT_BOXES = frozenset({b"ftyp", b"moov", b"free", b"skip", b"uuid"})
_PART_BOXES = frozenset({b"styp", b"prft", b"emsg", b"moof", b"mdat", b"free", b"skip"})
_DROPPED = frozenset({b"mfra"})  # ffmpeg's random-access index at the end of the stream: not media


@dataclass(frozen=True, kw_only=True)
class Piece:
    kind: str  # "init" or "part"
    data: bytes


@dataclass(kw_only=True)
class FragmentStream:
    max_piece_bytes: int
    _buf: bytearray = field(default_factory=bytearray)
    _pending: list[bytes] = field(default_factory=list)  # boxes of the piece being assembled
    _pending_bytes: int = 0
    _have_init: bool = False

    def feed(self, chunk: bytes) -> list[Piece]:
        self._buf += chunk
        out: list[Piece] = []
        while len(self._buf) >= 8:
            size, kind = struct.unpack_from(">I4s", self._buf, 0)
            header = 8
            if size == 1:
                if len(self._buf) < 16:
                    break
                (size,) = struct.unpack_from(">Q", self._buf, 8)
                header = 16
            if size < header:
                raise ValidationError(f"stream box {kind!r} has bad size {size} (a stream box needs its size)")
            if self._pending_bytes + size > self.max_piece_bytes:
                raise ValidationError(f"stream piece over {self.max_piece_bytes} bytes at box {kind!r}")
            if len(self._buf) < size:
                break
            box = bytes(self._buf[:size])
            del self._buf[:size]
            out.extend(self._box(kind, box))
        return out

    def _box(self, kind: bytes, box: bytes) -> list[Piece]:
        if kind in _DROPPED and self._have_init and not self._pending:
            return []
        allowed = _PART_BOXES if self._have_init else _INIT_BOXES
        if kind not in allowed:
            where = "after the init" if self._have_init else "before moov (the init comes first)"
            raise ValidationError(f"unexpected {kind.decode('latin-1')!r} box in the stream {where}")
        self._pending.append(box)
        self._pending_bytes += len(box)
        if kind == (b"mdat" if self._have_init else b"moov"):
            piece = Piece(kind="part" if self._have_init else "init", data=b"".join(self._pending))
            self._pending, self._pending_bytes, self._have_init = [], 0, True
            return [piece]
        return []

    def finish(self) -> None:
        """The body ended: anything left is a truncated box (the last part is lost, and said so)."""
        if self._buf or self._pending:
            raise ValidationError(f"stream ended inside a box ({len(self._buf) + self._pending_bytes} bytes)")


@dataclass(kw_only=True)
class SegmentCutter:
    """Numbers parts (segment index, part index) and says when a segment is complete."""

    segment_s: float
    index: int = 0
    parts: list[float] = field(default_factory=list)  # durations of the open segment's parts

    def add(self, duration_s: float) -> tuple[int, int, bool]:
        """(segment index, part index, whether this part completes the segment)."""
        self.parts.append(duration_s)
        position = (self.index, len(self.parts) - 1)
        done = sum(self.parts) >= self.segment_s - duration_s / 2
        if done:
            self.index += 1
            self.parts = []
        return position[0], position[1], done
