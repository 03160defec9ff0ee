"""Object key layout under the storage prefix (pure). Every key is built from validated ids only.

rooms/{room}/master.m3u8                     live master playlist
rooms/{room}/live/{rendition}.m3u8           live sliding-window media playlist
rooms/{room}/replay.m3u8                     DVR/replay master playlist (stable URL before and after the end)
rooms/{room}/replay/{rendition}.m3u8         EVENT playlist while live, VOD + ENDLIST once ended
rooms/{room}/media/{session}/{rendition}/init.mp4
rooms/{room}/media/{session}/{rendition}/{index:06d}.m4s   immutable; unique per ingest session
rooms/{room}/media/{session}/{rendition}/{index:06d}.p{k}.m4s  low-latency part k of a segment (immutable)
rooms/{room}/media/{session}/{rendition}/fill-{msn:09d}.m4s silence/slate while the source is gone
rooms/{room}/media/{session}/{rendition}/fill-{msn:09d}.p{k}.m4s  its parts
rooms/{room}/status.json                     room status for clients (admission, player)
rooms/{room}/replay.m4a                      whole-broadcast download after the end
"""

from __future__ import annotations

from origin.contract import ids


def room_prefix(room: str) -> str:
    return f"rooms/{ids.room_id(room)}"


def master_playlist(room: str) -> str:
    return f"{room_prefix(room)}/master.m3u8"


def live_playlist(room: str, rendition: str) -> str:
    return f"{room_prefix(room)}/live/{ids.rendition_name(rendition)}.m3u8"


def replay_master(room: str) -> str:
    return f"{room_prefix(room)}/replay.m3u8"


def replay_playlist(room: str, rendition: str) -> str:
    return f"{room_prefix(room)}/replay/{ids.rendition_name(rendition)}.m3u8"


def media_dir(room: str, session: str, rendition: str) -> str:
    return f"{room_prefix(room)}/media/{ids.session_id(session)}/{ids.rendition_name(rendition)}"


def init_segment(room: str, session: str, rendition: str) -> str:
    return f"{media_dir(room, session, rendition)}/init.mp4"


def media_segment(room: str, session: str, rendition: str, index: int) -> str:
    if index < 0:
        raise ValueError(f"segment index must be >= 0, got {index}")
    return f"{media_dir(room, session, rendition)}/{index:06d}.m4s"


def media_part(room: str, session: str, rendition: str, index: int, part: int) -> str:
    """Low-latency HLS: part `part` of segment `index` (the segment itself is the parts concatenated)."""
    if index < 0 or part < 0:
        raise ValueError(f"segment and part indexes must be >= 0, got {index}.{part}")
    return f"{media_dir(room, session, rendition)}/{index:06d}.p{part}.m4s"


def filler_part(room: str, session: str, rendition: str, media_sequence: int, part: int) -> str:
    return f"{media_dir(room, session, rendition)}/fill-{media_sequence:09d}.p{part}.m4s"


def filler_segment(room: str, session: str, rendition: str, media_sequence: int) -> str:
    """Silence/slate published while the source is gone; named by media sequence, so never reused."""
    if media_sequence < 0:
        raise ValueError(f"media sequence must be >= 0, got {media_sequence}")
    return f"{media_dir(room, session, rendition)}/fill-{media_sequence:09d}.m4s"


def status(room: str) -> str:
    return f"{room_prefix(room)}/status.json"


def replay_download(room: str) -> str:
    return f"{room_prefix(room)}/replay.m4a"


# -- URIs inside playlists (relative, so a playlist works under any CDN host and prefix) ---------------------
# Media playlists live one level below the room (live/, replay/), so their segments are "../media/…".


def segment_uri(session: str, rendition: str, idx: int) -> str:
    return f"../media/{session}/{rendition}/{idx:06d}.m4s"


def filler_uri(session: str, rendition: str, media_sequence: int) -> str:
    return f"../media/{session}/{rendition}/fill-{media_sequence:09d}.m4s"


def part_uri(session: str, rendition: str, idx: int, part: int) -> str:
    return f"../media/{session}/{rendition}/{idx:06d}.p{part}.m4s"


def filler_part_uri(session: str, rendition: str, media_sequence: int, part: int) -> str:
    return f"../media/{session}/{rendition}/fill-{media_sequence:09d}.p{part}.m4s"


def init_uri(session: str, rendition: str) -> str:
    return f"../media/{session}/{rendition}/init.mp4"


def live_uri(rendition: str) -> str:
    """A live media playlist, relative to the master."""
    return f"live/{rendition}.m3u8"


def replay_uri(rendition: str) -> str:
    return f"replay/{rendition}.m3u8"
