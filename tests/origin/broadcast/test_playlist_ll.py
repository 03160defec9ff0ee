"""The Low-Latency HLS playlist against the rules of draft-pantos-hls-rfc8216bis, parsed by the m3u8 library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import m3u8

from origin.broadcast.playlist import PublishedSegment
from origin.broadcast.playlist_ll import OpenSegment, RenditionReport, edge_of, part_target_s, render_ll_playlist

PART = 10 * 1024 / 48_000
T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def window(count: int, first_msn: int = 10) -> list[PublishedSegment]:
    return [PublishedSegment(
        media_sequence=first_msn + i, uri=f"../media/s/a64/{i:06d}.m4s", init_uri="../media/s/a64/init.mp4",
        duration_s=5 * PART, program_date_time=T0 + timedelta(seconds=i * 5 * PART), discontinuity=False,
        parts=tuple((f"../media/s/a64/{i:06d}.p{k}.m4s", PART) for k in range(5)),
    ) for i in range(count)]  # fmt: skip


OPEN = OpenSegment(parts=(("../media/s/a64/000008.p0.m4s", PART), ("../media/s/a64/000008.p1.m4s", PART)),
                   next_part_uri="../media/s/a64/000008.p2.m4s", init_uri="../media/s/a64/init.mp4",
                   discontinuity=False)  # fmt: skip


def render(**kw: object) -> str:
    args: dict[str, object] = {"target_duration": 1, "part_target": part_target_s(PART), "discontinuity_sequence": 0,
                               "reports": [RenditionReport(uri="a48.m3u8", last_msn=18, last_part=1)]}  # fmt: skip
    args.update(kw)
    return render_ll_playlist(window(8), OPEN, **args)  # type: ignore[arg-type]


def test_server_control_and_part_rules() -> None:
    text = render()
    pl = m3u8.loads(text)
    part_target = pl.part_inf.part_target
    assert part_target == 0.214 and all(p.duration <= part_target for s in pl.segments for p in s.parts)
    sc = pl.server_control
    assert sc.can_block_reload == "YES" and sc.part_hold_back >= 3 * part_target
    assert sc.hold_back >= 3 * pl.target_duration and sc.can_skip_until >= 6 * pl.target_duration
    assert all(p.independent == "YES" for s in pl.segments for p in s.parts)
    assert pl.preload_hint.uri.endswith("000008.p2.m4s") and pl.preload_hint.hint_type == "PART"
    assert [(r.uri, r.last_msn, r.last_part) for r in pl.rendition_reports] == [("a48.m3u8", 18, 1)]
    assert pl.version == 9 and "\n\n" not in text


def test_parts_leave_after_three_target_durations() -> None:
    pl = m3u8.loads(render())
    with_parts = [s for s in pl.segments if s.parts and s.uri]
    covered = sum(s.duration for s in with_parts)
    assert 2 < covered <= 3 + 5 * PART and not pl.segments[0].parts  # old segments list no parts
    assert pl.segments[-1].uri is None and len(pl.segments[-1].parts) == 2  # the open segment


def test_delta_update_skips_what_is_older_than_can_skip_until() -> None:
    full, delta = m3u8.loads(render()), render(skip=True)
    pl = m3u8.loads(delta)
    skipped = pl.skip.skipped_segments
    assert skipped >= 1 and len(pl.segments) == len(full.segments) - skipped
    assert sum(s.duration for s in full.segments[skipped:] if s.uri) >= 6 - 5 * PART
    assert pl.media_sequence == full.media_sequence


def test_the_edge_reads_back_from_the_text() -> None:
    edge = edge_of(render())
    assert (edge.last_msn, edge.next_parts) == (17, 2)
    assert edge_of(render(skip=True)) == edge
