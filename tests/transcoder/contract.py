"""What the origin relies on, checked against what a Receiver recorded for one session (docs/ingest.md).

True and relied on: start before any PUT; every PUT (the transcoder's, uploads.py) a complete body with a
Content-Length, as application/octet-stream; every object's last PUT answered 201 (earlier ones may have been
refused with a 5xx and retried); one init per rendition, before that rendition's first segment; no playlist PUT
(ffmpeg's stay local); segment indices 0..n without holes, each rendition's in order, each index's renditions
in one request (a wave) but for the last, which ffmpeg may close rendition by rendition as it exits; end after
every PUT has completed.
"""

from __future__ import annotations

import re

from tests.transcoder.receiver import Put, Receiver

_TAILS = re.compile(r"session (?P<session>\S+): ffmpeg's final playlists: (?P<tails>[^\n]*)")
_TAIL = re.compile(r"(?P<rendition>\S+) ends at (?P<rest>[^;]+)")


def final_playlists(log_text: str, session: str) -> dict[str, str]:
    """What the supervisor logged of ffmpeg's final (local) playlists for `session`: rendition -> "NNNNNN.m4s,
    closed". Raises if the line is missing or says a tail may be lost."""
    lines = [m for m in _TAILS.finditer(log_text) if m["session"] == session]
    assert len(lines) == 1, f"no final-playlists line for {session}"
    assert "a tail may be lost" not in lines[0]["tails"], lines[0][0]
    return {t["rendition"]: t["rest"].strip() for t in _TAIL.finditer(lines[0]["tails"])}


def assert_session_contract(
    rx: Receiver, session: str, *, renditions: list[str], end_reason: str | None, segment_seconds: float
) -> dict[str, list[Put]]:
    """Check one session; returns each rendition's segment PUTs in index order."""
    start = rx.call(session, "start")
    assert start is not None and start.status == 201
    assert [r["name"] for r in start.body["renditions"]] == renditions
    assert start.body["segment_seconds"] == segment_seconds
    puts = rx.session_puts(session)
    assert puts, "no PUT arrived"
    last: dict[tuple[str, str], Put] = {}
    for put in puts:
        assert put.seq > start.seq, f"{put.name} PUT before the start call"
        assert put.complete, f"{put.rendition}/{put.name}: body incomplete"
        assert put.kind != "playlist", f"{put.rendition}/{put.name}: ffmpeg's playlists stay local"
        assert (put.chunked, put.content_type) == (False, "application/octet-stream")
        if put.kind == "init":
            assert put.name == "init.mp4"
        assert put.rendition in renditions
        last[(put.rendition, put.name)] = put
    for (rendition, name), put in last.items():
        assert put.status == 201, f"{rendition}/{name}: {put.status}"
    by_rendition: dict[str, list[Put]] = {}
    for name in renditions:
        init = rx.init(session, name)
        assert init is not None, f"{name}: no init segment"
        assert sum(p.kind == "init" and p.status == 201 for p in puts if p.rendition == name) == 1, (
            f"{name}: init taken more than once"
        )
        assert init.body[4:8] == b"ftyp" and b"moov" in init.body
        segments = rx.segments(session, name)
        assert segments, f"{name}: no segment"
        assert sorted(segments) == list(range(len(segments))), f"{name}: holes in {sorted(segments)}"
        arrivals = [p.index for p in puts if p.rendition == name and p.index is not None]
        assert arrivals == sorted(arrivals), f"{name}: segments out of order: {arrivals}"
        assert init.seq < min(p.seq for p in puts if p.rendition == name and p.index is not None)
        for put in segments.values():
            assert put.body[4:8] == b"styp" and b"moof" in put.body and b"mdat" in put.body
        by_rendition[name] = [segments[i] for i in sorted(segments)]
    last_index = max(p.index for puts_ in by_rendition.values() for p in puts_ if p.index is not None)
    for name in renditions:
        single = [p.index for p in by_rendition[name] if p.wave != len(renditions) and p.index != last_index]
        assert not single or len(renditions) == 1, f"{name}: segments {single} not in a wave of the whole ladder"
    end = rx.call(session, "end")
    if end_reason is None:
        assert end is None
    else:
        assert end is not None, "no end call"
        assert end.body == {"reason": end_reason}
        assert end.seq > max(p.done_seq for p in puts), "end arrived before a PUT completed"
        assert end.at >= max(p.finished for p in puts)
    return by_rendition
