"""A tiny real HLS stream for edge tests: fMP4 AAC made by ffmpeg at test time, published under the
origin's key layout (origin.contract.layout) with the origin's headers (origin.contract.cache_policy)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from origin.contract import layout
from origin.contract.cache_policy import ObjectHeaders, ObjectKind, headers_for

SEGMENT_SECONDS = 1.0


class Putter(Protocol):
    def put(self, key: str, data: bytes, headers: ObjectHeaders) -> None: ...


@dataclass(frozen=True, kw_only=True)
class HlsStream:
    init: bytes
    segments: list[bytes]
    durations_s: list[float]


def make_stream(out: Path, *, seconds: float = 4.0) -> HlsStream:
    """Encode `seconds` of a sine tone to fMP4 HLS segments of SEGMENT_SECONDS with ffmpeg."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:a", "aac", "-b:a", "64k", "-ac", "1", "-f", "hls", "-hls_time", str(SEGMENT_SECONDS),
         "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
         "-hls_segment_filename", str(out / "%06d.m4s"), str(out / "index.m3u8")],
        check=True, timeout=60,
    )  # fmt: skip
    playlist = (out / "index.m3u8").read_text()
    durations = [float(line.split(":")[1].rstrip(",")) for line in playlist.splitlines() if line.startswith("#EXTINF")]
    return HlsStream(
        init=(out / "init.mp4").read_bytes(),
        segments=[p.read_bytes() for p in sorted(out.glob("*.m4s"))],
        durations_s=durations,
    )


def media_playlist(*, session: str, rendition: str, first: int, durations_s: list[float]) -> str:
    """A live sliding-window media playlist (RFC 8216 §4.3.3) with URIs relative to rooms/{room}/live/."""
    media = f"../media/{session}/{rendition}"
    target = max(1, round(max(durations_s, default=SEGMENT_SECONDS)))
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}",
             f"#EXT-X-MEDIA-SEQUENCE:{first}", f'#EXT-X-MAP:URI="{media}/init.mp4"']
    for offset, duration in enumerate(durations_s):
        lines += [f"#EXTINF:{duration:.3f},", f"{media}/{first + offset:06d}.m4s"]
    return "\n".join(lines) + "\n"


def master_playlist(renditions: list[str]) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7"]
    for name in renditions:
        lines += ['#EXT-X-STREAM-INF:BANDWIDTH=70000,CODECS="mp4a.40.2"', f"live/{name}.m3u8"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, kw_only=True)
class Published:
    """Keys of a published room, by object kind."""

    room: str
    session: str
    rendition: str
    init: str
    segments: list[str]
    live_playlist: str
    master: str
    replay_playlist: str
    status: str
    download: str

    def by_kind(self) -> dict[ObjectKind, str]:
        return {
            ObjectKind.INIT: self.init,
            ObjectKind.SEGMENT: self.segments[0],
            ObjectKind.LIVE_PLAYLIST: self.live_playlist,
            ObjectKind.MASTER_PLAYLIST: self.master,
            ObjectKind.EVENT_PLAYLIST: self.replay_playlist,
            ObjectKind.STATUS: self.status,
            ObjectKind.DOWNLOAD: self.download,
        }


def publish(store: Putter, stream: HlsStream, *, room: str, session: str = "sess-0001",
            rendition: str = "a64") -> Published:
    """Upload in the origin's order: media first, then the playlists that name it."""
    init_key = layout.init_segment(room, session, rendition)
    store.put(init_key, stream.init, headers_for(ObjectKind.INIT))
    segment_keys = []
    for index, data in enumerate(stream.segments):
        key = layout.media_segment(room, session, rendition, index)
        store.put(key, data, headers_for(ObjectKind.SEGMENT))
        segment_keys.append(key)
    text = media_playlist(session=session, rendition=rendition, first=0, durations_s=stream.durations_s).encode()
    live_key = layout.live_playlist(room, rendition)
    store.put(live_key, text, headers_for(ObjectKind.LIVE_PLAYLIST))
    replay_key = layout.replay_playlist(room, rendition)
    store.put(replay_key, text, headers_for(ObjectKind.EVENT_PLAYLIST))
    master_key = layout.master_playlist(room)
    store.put(master_key, master_playlist([rendition]).encode(), headers_for(ObjectKind.MASTER_PLAYLIST))
    status_key = layout.status(room)
    store.put(status_key, json.dumps({"room": room, "live": True}).encode(), headers_for(ObjectKind.STATUS))
    download_key = layout.replay_download(room)
    store.put(download_key, stream.init + b"".join(stream.segments), headers_for(ObjectKind.DOWNLOAD))
    return Published(room=room, session=session, rendition=rendition, init=init_key, segments=segment_keys,
                     live_playlist=live_key, master=master_key, replay_playlist=replay_key, status=status_key,
                     download=download_key)
