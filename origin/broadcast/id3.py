"""ID3v2.4 tags (pure): the payload of an in-band timed-metadata message (ID3v2.4.0 structure and frames).

Only what Spillway writes: text frames (TIT2 …) and user-defined text frames (TXXX), UTF-8 (encoding 3), no
unsynchronisation, no extended header. Sizes are synchsafe integers (7 bits per byte) in the tag header and,
in v2.4, in every frame header too. `parse` reads such a tag back (tests, tools); it refuses anything else.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from origin.errors import ValidationError

HEADER = b"ID3\x04\x00"  # ID3v2, major version 4, revision 0
UTF8 = 3
MAX_SYNCHSAFE = (1 << 28) - 1


@dataclass(frozen=True, kw_only=True)
class Frame:
    id: str  # four characters, A-Z 0-9
    description: str = ""  # TXXX only
    text: str = ""


def synchsafe(n: int) -> bytes:
    if not 0 <= n <= MAX_SYNCHSAFE:
        raise ValueError(f"{n} does not fit a synchsafe integer")
    return bytes(((n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F))


def _unsynchsafe(data: bytes, off: int) -> int:
    raw = data[off : off + 4]
    if len(raw) != 4 or any(b & 0x80 for b in raw):
        raise ValidationError("ID3: bad synchsafe integer")
    return (raw[0] << 21) | (raw[1] << 14) | (raw[2] << 7) | raw[3]


def _frame(frame: Frame) -> bytes:
    if len(frame.id) != 4 or not frame.id.isascii() or not frame.id.isalnum() or not frame.id.isupper():
        raise ValueError(f"bad ID3 frame id {frame.id!r}")
    if frame.id == "TXXX":  # §4.2.6: encoding, description, NUL, value
        body = bytes([UTF8]) + frame.description.encode() + b"\x00" + frame.text.encode()
    elif frame.id.startswith("T"):  # §4.2: encoding, text
        body = bytes([UTF8]) + frame.text.encode()
    else:
        raise ValueError(f"only text frames are written, not {frame.id}")
    return frame.id.encode() + synchsafe(len(body)) + b"\x00\x00" + body


def tag(frames: Sequence[Frame]) -> bytes:
    """A complete ID3v2.4 tag holding `frames`."""
    body = b"".join(_frame(f) for f in frames)
    return HEADER + b"\x00" + synchsafe(len(body)) + body


def parse(data: bytes) -> list[Frame]:
    """The text frames of an ID3v2.4 tag written by `tag` (ValidationError for anything else)."""
    if len(data) < 10 or data[:5] != HEADER or data[5] != 0:
        raise ValidationError("ID3: not an ID3v2.4 tag without flags")
    end = 10 + _unsynchsafe(data, 6)
    if end > len(data):
        raise ValidationError("ID3: tag runs past its data")
    frames: list[Frame] = []
    off = 10
    while off + 10 <= end and data[off] != 0:  # padding (NULs) may follow the frames
        frame_id = data[off : off + 4].decode("latin-1")
        size = _unsynchsafe(data, off + 4)
        (flags,) = struct.unpack_from(">H", data, off + 8)
        body = data[off + 10 : off + 10 + size]
        if len(body) != size or flags or not body or body[0] != UTF8:
            raise ValidationError(f"ID3: frame {frame_id!r} is not a plain UTF-8 text frame")
        text = body[1:].decode()
        if frame_id == "TXXX":
            description, _, value = text.partition("\x00")
            frames.append(Frame(id=frame_id, description=description, text=value))
        else:
            frames.append(Frame(id=frame_id, text=text))
        off += 10 + size
    return frames
