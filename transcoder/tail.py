"""ffmpeg's own final playlists, kept on local disk: did each rendition's tail get written?

A clean stop (SIGINT) or the input's end makes ffmpeg write the segment in progress, then a closed playlist
(`#EXT-X-ENDLIST`) naming it. ffmpeg 5.1 with persistent connections could exit 0 without either (command.py),
so after every run the supervisor compares each final playlist's last segment with the last segment ffmpeg
reported written (its "Statistics: N bytes written" line, ffmpeg_log.PushTracker) and logs the outcome.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from origin.contract.ids import SEGMENT_NAME_PATTERN
from transcoder.command import local_playlist_path

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Tail:
    rendition: str
    last_segment: str | None  # the last segment the final playlist names (None: no playlist, or empty)
    closed: bool  # the playlist ends with EXT-X-ENDLIST

    def complete(self, written_index: int | None) -> bool:
        """Closed, and naming no segment after the last one written (an input that delivered nothing still
        makes ffmpeg name an empty 000000.m4s, which the tracker does not count)."""
        match = SEGMENT_NAME_PATTERN.fullmatch(self.last_segment or "")
        named = int(match.group(1)) if match is not None else -1
        return self.closed and named <= (written_index if written_index is not None else 0)

    def describe(self) -> str:
        return f"{self.rendition} ends at {self.last_segment or 'nothing'}{', closed' if self.closed else ', open'}"


def parse_tail(rendition: str, text: str) -> Tail:
    lines = [line.strip() for line in text.splitlines()]
    segments = [line.rsplit("/", 1)[-1] for line in lines if line and not line.startswith("#")]
    return Tail(rendition=rendition, last_segment=segments[-1] if segments else None,
                closed="#EXT-X-ENDLIST" in lines)  # fmt: skip


def read_tails(local_dir: str, renditions: list[str]) -> list[Tail]:
    tails = []
    for rendition in renditions:
        try:
            text = Path(local_playlist_path(local_dir, rendition)).read_text(errors="replace")
        except OSError:
            text = ""
        tails.append(parse_tail(rendition, text))
    return tails


def report_tails(room: str, session: str, local_dir: str, renditions: list[str], written: dict[str, int]) -> None:
    """Log each rendition's final playlist against `written` (rendition -> last segment index ffmpeg wrote)."""
    tails = read_tails(local_dir, renditions)
    if not any(t.closed or t.last_segment for t in tails):
        return  # ffmpeg never got to write a playlist (it failed at start): the run's own log says why
    summary = "; ".join(t.describe() for t in tails)
    if all(t.complete(written.get(t.rendition)) for t in tails):
        log.info("room %s: session %s: ffmpeg's final playlists: %s", room, session, summary)
    else:
        log.warning("room %s: session %s: ffmpeg's final playlists: %s; last segments written: %s (a tail may be "
                    "lost)", room, session, summary, written)  # fmt: skip
