"""A pack's record format (pure): one record per object, written with one pwrite (packs.py).

    magic "SWP1" | flags u8 | name u8 | content type u8 | cache control u16 | data u32 | crc32 u32 | mtime ns u64
    | name | content type | cache control | data
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass

from origin.contract.cache_policy import ObjectHeaders
from origin.storage.atomic_files import INTERNAL_MARK

MAGIC = b"SWP1"
PACK_PREFIX = f".{INTERNAL_MARK}pack."
PACK_MAX_OBJECT_BYTES = 1 << 20  # larger immutable objects stay files of their own
TOMBSTONE = 1
_FIXED = struct.Struct("<4sBBBHIIQ")  # magic, flags, name, content type, cache control, data, crc32, mtime ns
HEADER_PROBE_BYTES = 512  # one pread usually holds a record's whole header


@dataclass(frozen=True, kw_only=True)
class Header:
    """A record's header, as parsed; `size` is the header's own length (the data follows it)."""

    flags: int
    name: str
    headers: ObjectHeaders
    length: int
    crc: int
    mtime_ns: int
    size: int

    @property
    def tombstone(self) -> bool:
        return bool(self.flags & TOMBSTONE)


@dataclass(frozen=True, kw_only=True)
class Entry:
    """Where an object's bytes are: `length` bytes at `offset` of the pack file `pack` (a file name)."""

    name: str
    pack: str
    offset: int
    length: int
    crc: int
    mtime_ns: int
    headers: ObjectHeaders
    tombstone: bool = False

    def newer_than(self, other: Entry) -> bool:
        return (self.mtime_ns, self.pack, self.offset) > (other.mtime_ns, other.pack, other.offset)


class PackError(Exception):
    """A pack record could not be read back (wrong CRC, short read): the object is treated as absent."""


def encode_header(name: str, length: int, crc: int, headers: ObjectHeaders, mtime_ns: int, *,
                  tombstone: bool = False) -> bytes:  # fmt: skip
    """A record's header: its data (`length` bytes, CRC-32 `crc`) follows it in the same write (pure)."""
    raw_name, ctype, cc = name.encode("ascii"), headers.content_type.encode(), headers.cache_control.encode()
    if len(raw_name) > 255 or len(ctype) > 255 or len(cc) > 65535:
        raise ValueError(f"pack record fields too long for {name[:64]!r}")
    fixed = _FIXED.pack(MAGIC, TOMBSTONE if tombstone else 0, len(raw_name), len(ctype), len(cc), length, crc,
                        mtime_ns)  # fmt: skip
    return b"".join((fixed, raw_name, ctype, cc))


def encode_record(name: str, data: bytes, headers: ObjectHeaders, mtime_ns: int, *, tombstone: bool = False) -> bytes:
    """One record, header and data (pure)."""
    return encode_header(name, len(data), zlib.crc32(data), headers, mtime_ns, tombstone=tombstone) + data


def parse_header(buf: bytes) -> Header | None:
    """The record header at the start of `buf`, or None when `buf` does not hold all of it yet (pure).

    Raises PackError for bytes that are not a record (a torn or foreign file): scanning stops there."""
    if len(buf) < _FIXED.size:
        return None
    magic, flags, n_name, n_type, n_cc, length, crc, mtime_ns = _FIXED.unpack_from(buf)
    if magic != MAGIC:
        raise PackError("not a pack record")
    size = _FIXED.size + n_name + n_type + n_cc
    if len(buf) < size:
        return None
    at = _FIXED.size
    try:
        name = buf[at : at + n_name].decode("ascii")
        ctype = buf[at + n_name : at + n_name + n_type].decode()
        cc = buf[at + n_name + n_type : size].decode()
    except UnicodeDecodeError as exc:
        raise PackError(f"unreadable record header: {exc}") from None
    return Header(flags=flags, name=name, headers=ObjectHeaders(content_type=ctype, cache_control=cc),
                  length=length, crc=crc, mtime_ns=mtime_ns, size=size)  # fmt: skip


def scan(fd: int, start: int, end: int) -> tuple[list[tuple[Header, int]], int]:
    """Every whole record of an open pack between `start` and `end` (its size): (header, data offset) pairs,
    and where the next record will start."""
    found: list[tuple[Header, int]] = []
    at = start
    while at < end:
        buf = os.pread(fd, min(HEADER_PROBE_BYTES, end - at), at)
        header = parse_header(buf)
        if header is None and len(buf) == HEADER_PROBE_BYTES:  # a header longer than the probe
            header = parse_header(os.pread(fd, min(_FIXED.size + 255 + 255 + 65535, end - at), at))
        if header is None or at + header.size + header.length > end:
            break  # still being written (or torn): read it next time
        found.append((header, at + header.size))
        at += header.size + header.length
    return found, at


def is_pack(name: str) -> bool:
    return name.startswith(PACK_PREFIX)
