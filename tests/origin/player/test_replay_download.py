"""Replay download: plan (pure, golden playlists), the remux argv, and real runs on ffmpeg-made sessions."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.playlist import (
    MediaPlaylistKind,
    PublishedSegment,
    RenditionEntry,
    render_master_playlist,
    render_media_playlist,
)
from origin.replay_download import (
    MARKER_DIR,
    ReplayDownloadError,
    ReplayDownloads,
    _flock,
    best_rendition,
    concat_script,
    plan_download,
    remux_argv,
)
from origin.state import RenditionSpec, StateStore
from origin.storage.filesystem import FilesystemStorage

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
ROOM = "town-hall"
AAC_FRAME_S = 1024 / 48_000


# -- pure -----------------------------------------------------------------------------------------------


def test_best_rendition_is_the_highest_bandwidth() -> None:
    master = (GOLDEN / "master.m3u8").read_text().replace("live/", "replay/")
    assert best_rendition(master) == "a128"
    with pytest.raises(ReplayDownloadError, match="unexpected variant"):
        best_rendition((GOLDEN / "master.m3u8").read_text())  # live/ URIs are not a replay master


def test_plan_splits_at_each_session() -> None:
    plan = plan_download(ROOM, "a64", (GOLDEN / "replay.m3u8").read_text())
    assert [len(p.segment_keys) for p in plan.parts] == [4, 3, 5]
    first = plan.parts[0]
    assert first.init_key == "rooms/town-hall/media/s1/a64/init.mp4"
    assert first.segment_keys[0] == "rooms/town-hall/media/s1/a64/000000.m4s"
    assert plan.parts[2].init_key == "rooms/town-hall/media/s3/a64/init.mp4"
    assert plan.duration_s == pytest.approx(12 * 2.005333)


def test_plan_splits_at_a_discontinuity_within_a_session() -> None:
    text = (GOLDEN / "replay.m3u8").read_text()
    text = text.replace("#EXTINF:2.005333,\n../media/s1/a64/000002.m4s",
                        "#EXT-X-DISCONTINUITY\n#EXTINF:2.005333,\n../media/s1/a64/000002.m4s")
    plan = plan_download(ROOM, "a64", text)
    assert [len(p.segment_keys) for p in plan.parts] == [2, 2, 3, 5]
    assert plan.parts[0].init_key == plan.parts[1].init_key


def test_plan_needs_a_final_replay() -> None:
    with pytest.raises(ReplayDownloadError, match="not final"):
        plan_download(ROOM, "a64", (GOLDEN / "event.m3u8").read_text())


@pytest.mark.parametrize("uri", ["../../other-room/media/s1/a64/000000.m4s", "https://evil.example/x.m4s",
                                 "/rooms/town-hall/media/s1/a64/000000.m4s", "../live/a64.m3u8"])
def test_plan_refuses_uris_outside_the_rooms_media(uri: str) -> None:
    text = (GOLDEN / "replay.m3u8").read_text().replace("../media/s2/a64/000001.m4s", uri)
    with pytest.raises(ReplayDownloadError):
        plan_download(ROOM, "a64", text)


def test_concat_script_quotes_paths() -> None:
    assert concat_script([Path("/w/part-0000.mp4"), Path("/w/it's.mp4")]) == (
        "ffconcat version 1.0\nfile '/w/part-0000.mp4'\nfile '/w/it'\\''s.mp4'\n"
    )


def test_remux_argv_copies_without_reencoding() -> None:
    argv = remux_argv(concat_list=Path("/w/parts.ffconcat"), output=Path("/w/replay.m4a"))
    assert argv == [
        "ffmpeg", "-f", "concat", "-safe", "0", "-i", "/w/parts.ffconcat", "-map", "0:a:0", "-f", "ipod",
        "-c", "copy", "-movflags", "+faststart", "/w/replay.m4a", "-hide_banner", "-nostdin", "-v", "error", "-y",
    ]  # fmt: skip


# -- real ffmpeg ------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Session:
    id: str
    seconds: float
    channels: int = 2


def _encode_session(out: Path, session: Session, freq: int) -> list[tuple[str, float]]:
    """fMP4 HLS of a sine (1 s segments), as an ingest session would push it. Returns (name, duration)."""
    out.mkdir(parents=True)
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", f"sine=f={freq}:r=48000:d={session.seconds}", "-c:a", "aac", "-b:a", "64k",
         "-ac", str(session.channels), "-ar", "48000", "-f", "hls", "-hls_time", "1", "-hls_segment_type", "fmp4",
         "-hls_flags", "independent_segments", "-hls_fmp4_init_filename", "init.mp4",
         "-hls_segment_filename", str(out / "%06d.m4s"), str(out / "index.m3u8")],
        check=True, timeout=60,
    )  # fmt: skip
    lines = (out / "index.m3u8").read_text().splitlines()
    return [(lines[i + 1], float(line.split(":")[1].rstrip(","))) for i, line in enumerate(lines)
            if line.startswith("#EXTINF")]


def _publish_replay(storage: FilesystemStorage, work: Path, sessions: list[Session], *, final: bool = True) -> None:
    """Store the sessions' objects and a replay master + VOD playlist the way the publisher lays them out."""
    segments: list[PublishedSegment] = []
    for n, session in enumerate(sessions):
        local = work / session.id
        for name, duration in _encode_session(local, session, freq=440 + 220 * n):
            idx = int(name.split(".")[0])
            storage.put(layout.media_segment(ROOM, session.id, "a64", idx), (local / name).read_bytes(),
                        headers_for(ObjectKind.SEGMENT))
            segments.append(PublishedSegment(
                media_sequence=len(segments), uri=f"../media/{session.id}/a64/{name}",
                init_uri=f"../media/{session.id}/a64/init.mp4", duration_s=duration,
                program_date_time=datetime(2026, 11, 26, 9, n, tzinfo=UTC), discontinuity=n > 0 and idx == 0,
            ))
        storage.put(layout.init_segment(ROOM, session.id, "a64"), (local / "init.mp4").read_bytes(),
                    headers_for(ObjectKind.INIT))
    media = render_media_playlist(segments, kind=MediaPlaylistKind.VOD if final else MediaPlaylistKind.EVENT,
                                  target_duration=1, discontinuity_sequence=0, ended=final)
    master = render_master_playlist([
        RenditionEntry(uri="replay/a64.m3u8", bandwidth_bps=70_000, average_bandwidth_bps=66_000),
        RenditionEntry(uri="replay/a48.m3u8", bandwidth_bps=52_000, average_bandwidth_bps=50_000, channels=1),
    ])
    storage.put(layout.replay_playlist(ROOM, "a64"), media.encode(), headers_for(ObjectKind.REPLAY_PLAYLIST))
    storage.put(layout.replay_master(ROOM), master.encode(), headers_for(ObjectKind.REPLAY_PLAYLIST))


def _packets(path: Path) -> list[str]:
    """Size and MD5 of every audio packet, read without decoding (`-c copy` → framemd5)."""
    out = subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-i", str(path), "-map", "0:a:0", "-c", "copy",
                          "-f", "framemd5", "-"], capture_output=True, text=True, check=True, timeout=60).stdout
    return [",".join(p.strip() for p in line.split(",")[4:]) for line in out.splitlines() if not line.startswith("#")]


def _probe(path: Path) -> dict[str, object]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "format=duration,format_name:stream=codec_name,profile,sample_rate,channels",
                          "-of", "json", str(path)], capture_output=True, check=True, timeout=60).stdout
    doc: dict[str, object] = json.loads(out)
    return doc


@pytest.fixture
def storage(tmp_path: Path) -> FilesystemStorage:
    return FilesystemStorage(tmp_path / "storage")


def test_download_is_the_broadcasts_own_packets_back_to_back(tmp_path: Path, storage: FilesystemStorage) -> None:
    sessions = [Session(id="20261126t090000z-aaaa1111", seconds=3.0),
                Session(id="20261126t090100z-bbbb2222", seconds=4.0)]
    _publish_replay(storage, tmp_path / "work", sessions)
    done: list[str] = []
    downloads = ReplayDownloads(storage=storage, state_dir=tmp_path / "state", on_done=done.append)
    assert downloads.run(ROOM) is True
    assert done == [ROOM] and downloads.ready(ROOM)
    headers = storage.get_headers(layout.replay_download(ROOM))
    assert (headers.content_type, headers.cache_control) == ("audio/mp4", "public, max-age=86400")
    m4a = tmp_path / "replay.m4a"
    m4a.write_bytes(storage.get(layout.replay_download(ROOM)))
    # Not re-encoded: the file's packets are the sessions' packets, byte for byte, in order.
    expected: list[str] = []
    for s in sessions:
        joined = tmp_path / f"{s.id}.mp4"
        local = tmp_path / "work" / s.id
        joined.write_bytes(b"".join(p.read_bytes() for p in [local / "init.mp4", *sorted(local.glob("*.m4s"))]))
        expected += _packets(joined)
    assert _packets(m4a) == expected
    probe = _probe(m4a)
    assert probe["streams"] == [{"codec_name": "aac", "profile": "LC", "sample_rate": "48000", "channels": 2}]
    # Plays straight through: each session's audio (plus its encoder priming frame), no gap between them.
    duration = float(probe["format"]["duration"])  # type: ignore[index]
    assert duration == pytest.approx(7.0 + 2 * AAC_FRAME_S, abs=0.03)
    assert m4a.read_bytes()[4:12] == b"ftypM4A "
    # Index first (+faststart): the moov box precedes the media data.
    head = m4a.read_bytes()[:4096]
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))
    # A second end notification is a no-op; no work directories are left behind.
    assert downloads.run(ROOM) is False
    assert sorted(p.name for p in (tmp_path / "state" / MARKER_DIR).iterdir()) == [
        f"{ROOM}.done.json", f"{ROOM}.lock"]
    marker = json.loads((tmp_path / "state" / MARKER_DIR / f"{ROOM}.done.json").read_text())
    assert marker["parts"] == 2 and marker["rendition"] == "a64"


def test_sessions_with_different_codec_parameters_are_refused(tmp_path: Path, storage: FilesystemStorage) -> None:
    _publish_replay(storage, tmp_path / "work", [Session(id="20261126t090000z-aaaa1111", seconds=2.0),
                                                  Session(id="20261126t090100z-bbbb2222", seconds=2.0, channels=1)])
    downloads = ReplayDownloads(storage=storage, state_dir=tmp_path / "state")
    with pytest.raises(ReplayDownloadError, match="codec parameters"):
        downloads.run(ROOM)
    assert not storage.exists(layout.replay_download(ROOM)) and not downloads.ready(ROOM)


def test_an_unfinished_replay_is_not_downloaded(tmp_path: Path, storage: FilesystemStorage) -> None:
    _publish_replay(storage, tmp_path / "work", [Session(id="20261126t090000z-aaaa1111", seconds=2.0)], final=False)
    with pytest.raises(ReplayDownloadError, match="not final"):
        ReplayDownloads(storage=storage, state_dir=tmp_path / "state").run(ROOM)


def _race(root: str, state: str, results: multiprocessing.Queue[bool]) -> None:
    results.put(ReplayDownloads(storage=FilesystemStorage(Path(root)), state_dir=Path(state)).run(ROOM))


def test_exactly_one_worker_builds_it(tmp_path: Path, storage: FilesystemStorage) -> None:
    _publish_replay(storage, tmp_path / "work", [Session(id="20261126t090000z-aaaa1111", seconds=3.0)])
    state = tmp_path / "state"
    (state / MARKER_DIR).mkdir(parents=True)
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[bool] = ctx.Queue()
    # While another worker holds the room's lock, a worker returns at once and writes nothing.
    with _flock(state / MARKER_DIR / f"{ROOM}.lock") as held:
        assert held
        blocked = ctx.Process(target=_race, args=(str(storage.root), str(state), results))
        blocked.start()
        blocked.join(timeout=60)
        assert results.get(timeout=5) is False
        assert not storage.exists(layout.replay_download(ROOM))
    # Four workers see the end at once: one builds, the others skip.
    procs = [ctx.Process(target=_race, args=(str(storage.root), str(state), results)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert sorted(results.get(timeout=5) for _ in procs) == [False, False, False, True]
    assert storage.exists(layout.replay_download(ROOM))


def test_request_runs_in_the_background(tmp_path: Path, storage: FilesystemStorage) -> None:
    _publish_replay(storage, tmp_path / "work", [Session(id="20261126t090000z-aaaa1111", seconds=2.0)])
    finished = threading.Event()
    callers: list[str] = []

    def on_done(room: str) -> None:
        callers.append(threading.current_thread().name)
        finished.set()

    downloads = ReplayDownloads(storage=storage, state_dir=tmp_path / "state", on_done=on_done)
    try:
        downloads.request(ROOM)
        downloads.request(ROOM)  # a second notification in the same worker is dropped
        assert finished.wait(timeout=60)
    finally:
        downloads.close()
    assert len(callers) == 1 and callers[0].startswith("replay-download")
    assert downloads.ready(ROOM)


def test_recover_builds_what_a_restart_left_unbuilt(tmp_path: Path, storage: FilesystemStorage) -> None:
    _publish_replay(storage, tmp_path / "work", [Session(id="20261126t090000z-aaaa1111", seconds=2.0)])
    store = StateStore(tmp_path / "state")
    ladder = (RenditionSpec(name="a64", bitrate=64_000, channels=2, sample_rate=48_000),)
    for room, state, published in ((ROOM, "ended", True), ("never-published", "ended", False),
                                   ("still-live", "live", True)):
        with store.open(room) as db:
            db.start_session("20261126t090000z-aaaa1111", ladder, 1.0, 1_790_000_000.0)
            with db.transaction():
                if published:
                    db.set_master_texts("#EXTM3U\n", "#EXTM3U\n")
                db.set_broadcast(state, 1_790_000_060.0)  # type: ignore[arg-type]
    built = threading.Event()
    downloads = ReplayDownloads(storage=storage, state_dir=tmp_path / "state", on_done=lambda _room: built.set())
    try:
        downloads.recover(store)
        assert built.wait(timeout=60)
    finally:
        downloads.close()
    assert downloads.ready(ROOM) and storage.exists(layout.replay_download(ROOM))
    assert not downloads.ready("never-published") and not downloads.ready("still-live")
