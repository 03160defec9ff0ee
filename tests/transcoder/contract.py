"""What the origin relies on, checked against what a Receiver recorded for one session (docs/ingest.md).

True and relied on: start before any PUT; every PUT a complete chunked body without Content-Type; the init
segment's PUT starts before any segment of its rendition; segment indices 0..n without holes; end after every
PUT has completed. Not asserted (not true of ffmpeg 5.1): that a playlist PUT follows its segment's PUT.
"""

from __future__ import annotations

from tests.transcoder.receiver import Put, Receiver


def final_playlist(rx: Receiver, session: str, rendition: str) -> str:
    playlists = [p for p in rx.session_puts(session) if p.rendition == rendition and p.kind == "playlist"]
    assert playlists, f"no playlist PUT for {rendition}"
    return max(playlists, key=lambda p: p.seq).body.decode()


def playlist_segments(text: str) -> list[str]:
    return [line.rsplit("/", 1)[-1] for line in text.splitlines() if line and not line.startswith("#")]


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
    for put in puts:
        assert put.seq > start.seq, f"{put.name} PUT before the start call"
        assert put.chunked and put.complete, f"{put.rendition}/{put.name}: body incomplete"
        assert put.content_type is None
        assert put.status == 201, f"{put.rendition}/{put.name}: {put.status}"
        assert put.rendition in renditions
    by_rendition: dict[str, list[Put]] = {}
    for name in renditions:
        init = rx.init(session, name)
        assert init is not None, f"{name}: no init segment"
        assert init.body[4:8] == b"ftyp" and b"moov" in init.body
        segments = rx.segments(session, name)
        assert segments, f"{name}: no segment"
        assert sorted(segments) == list(range(len(segments))), f"{name}: holes in {sorted(segments)}"
        assert init.seq < min(p.seq for p in segments.values()), f"{name}: a segment PUT began before init"
        for put in segments.values():
            assert put.body[4:8] == b"styp" and b"moof" in put.body and b"mdat" in put.body
        by_rendition[name] = [segments[i] for i in sorted(segments)]
    end = rx.call(session, "end")
    if end_reason is None:
        assert end is None
    else:
        assert end is not None, "no end call"
        assert end.body == {"reason": end_reason}
        assert end.seq > max(p.done_seq for p in puts), "end arrived before a PUT completed"
        assert end.at >= max(p.finished for p in puts)
    return by_rendition
