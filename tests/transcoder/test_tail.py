"""ffmpeg's final playlist (pure parse): closed, and naming nothing after the last segment written."""

from __future__ import annotations

import pytest

from transcoder.tail import parse_tail

CLOSED = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:1
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-MAP:URI="init_a48.mp4"
#EXTINF:1.002667,
http://127.0.0.1:8999/ingest/r1/s1/a48/000011.m4s
#EXTINF:0.341333,
http://127.0.0.1:8999/ingest/r1/s1/a48/000012.m4s
#EXT-X-ENDLIST
"""


@pytest.mark.parametrize(
    ("text", "written", "complete", "described"),
    [(CLOSED, 12, True, "a48 ends at 000012.m4s, closed"),
     (CLOSED, 11, False, "a48 ends at 000012.m4s, closed"),  # the playlist names a segment never written
     (CLOSED.replace("#EXT-X-ENDLIST\n", ""), 12, False, "a48 ends at 000012.m4s, open"),  # a crash
     ("", None, False, "a48 ends at nothing, open"),
     # an input that delivered nothing: ffmpeg names an empty 000000.m4s the tracker does not count
     ('#EXTM3U\n#EXTINF:0.000000,\n000000.m4s\n#EXT-X-ENDLIST\n', None, True, "a48 ends at 000000.m4s, closed")],
)  # fmt: skip
def test_a_tail_is_complete_when_closed_and_written(text: str, written: int | None, complete: bool,
                                                    described: str) -> None:  # fmt: skip
    tail = parse_tail("a48", text)
    assert tail.complete(written) is complete and tail.describe() == described
