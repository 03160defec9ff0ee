"""Replay download: plan (pure, from published rows), the remux argv, and real runs on ffmpeg-made sessions."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from origin.broadcast.journal.files import FileJournal
from origin.broadcast.lifecycle import apply
from origin.broadcast.model import INIT_INDEX, BroadcastState, Publication, RenditionSpec, RoomState, StoredObject
from origin.broadcast.records import (
    MasterWritten,
    ObjectStored,
    Published,
    Record,
    SessionStarted,
    StateChanged,
)
from origin.broadcast.states import RoomStates
from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.replay.download import (
    MARKER_DIR,
    ReplayDownloadError,
    ReplayDownloads,
    _flock,
    best_rendition,
    concat_script,
    plan_download,
    remux_argv,
)
from origin.storage.filesystem import FilesystemStorage

ROOM = "town-hall"
AAC_FRAME_S = 1024 / 48_000
LADDER = (RenditionSpec(name="a48", bitrate=48_000, channels=1, sample_rate=48_000),
          RenditionSpec(name="a64", bitrate=64_000, channels=2, sample_rate=48_000))  # fmt: skip


# -- pure -----------------------------------------------------------------------------------------------


def _pub(session: str, idx: int, msn: int, *, rendition: str = "a64", disc: bool = False,
         filler: bool = False) -> Publication:  # fmt: skip
    return Publication(rendition=rendition, msn=msn, session=session, idx=idx, duration_s=2.0, pdt=100.0 + 2 * msn,
                       discontinuity=disc, size=1, received_at=0.0, filler=filler)  # fmt: skip


def _three_sessions() -> list[Publication]:
    out: list[Publication] = []
    for n, (session, count) in enumerate((("s1", 4), ("s2", 3), ("s3", 5))):
        out += [_pub(f"{session}-0000000", i, len(out) + i, disc=n > 0 and i == 0) for i in range(count)]
    return out


def test_best_rendition_is_the_highest_bitrate_published() -> None:
    state = RoomState(room=ROOM)
    apply(state, SessionStarted(session="s1-0000000", at=0.0, segment_seconds=1.0, ladder=LADDER))
    with pytest.raises(ReplayDownloadError, match="no segment"):
        best_rendition(state)
    apply(state, Published(publications=(_pub("s1-0000000", 0, 0, rendition="a48"),)))
    assert best_rendition(state) == "a48"
    apply(state, Published(publications=(_pub("s1-0000000", 0, 0),)))
    assert best_rendition(state) == "a64"


def test_plan_splits_at_each_session() -> None:
    plan = plan_download(ROOM, "a64", _three_sessions())
    assert [len(p.segment_keys) for p in plan.parts] == [4, 3, 5]
    first = plan.parts[0]
    assert first.init_key == "rooms/town-hall/media/s1-0000000/a64/init.mp4"
    assert first.segment_keys[0] == "rooms/town-hall/media/s1-0000000/a64/000000.m4s"
    assert plan.parts[2].init_key == "rooms/town-hall/media/s3-0000000/a64/init.mp4"
    assert plan.duration_s == pytest.approx(12 * 2.0)


def test_plan_splits_at_a_discontinuity_within_a_session_and_keeps_filler() -> None:
    pubs = _three_sessions()
    pubs[2] = Publication(**{**pubs[2].__dict__, "discontinuity": True})
    pubs.insert(4, _pub("s1-0000000", 3, 4, filler=True))
    pubs = [Publication(**{**p.__dict__, "msn": i}) for i, p in enumerate(pubs)]
    plan = plan_download(ROOM, "a64", pubs)
    assert [len(p.segment_keys) for p in plan.parts] == [2, 3, 3, 5]
    assert plan.parts[0].init_key == plan.parts[1].init_key
    assert plan.parts[1].segment_keys[-1] == "rooms/town-hall/media/s1-0000000/a64/fill-000000004.m4s"


def test_plan_needs_a_segment() -> None:
    with pytest.raises(ReplayDownloadError, match="no segment"):
        plan_download(ROOM, "a64", [_pub("s1-0000000", 0, 0, rendition="a48")])


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


def _publish_replay(storage: FilesystemStorage, state_dir: Path, work: Path, sessions: list[Session], *,
                    ended: bool = True, room: str = ROOM, published: bool = True) -> None:  # fmt: skip
    """Store the sessions' objects and journal the records a publisher would have written for them."""
    records: list[Record] = []
    msn = 0
    for n, session in enumerate(sessions):
        local = work / room / session.id
        records.append(SessionStarted(session=session.id, at=float(n), segment_seconds=1.0, ladder=LADDER))
        encoded = _encode_session(local, session, freq=440 + 220 * n)
        storage.put(layout.init_segment(room, session.id, "a64"), (local / "init.mp4").read_bytes(),
                    headers_for(ObjectKind.INIT))  # fmt: skip
        records.append(ObjectStored(obj=StoredObject(session=session.id, rendition="a64", idx=INIT_INDEX, size=1,
                                                     received_at=0.0, timescale=48_000)))  # fmt: skip
        pubs = []
        for name, duration in encoded:
            idx = int(name.split(".")[0])
            storage.put(layout.media_segment(room, session.id, "a64", idx), (local / name).read_bytes(),
                        headers_for(ObjectKind.SEGMENT))  # fmt: skip
            pubs.append(Publication(rendition="a64", msn=msn, session=session.id, idx=idx, duration_s=duration,
                                    pdt=100.0 + msn, discontinuity=n > 0 and idx == 0, size=1, received_at=0.0))
            msn += 1
        if published:
            records.append(Published(publications=tuple(pubs)))
    records.append(MasterWritten(renditions=("a64",)))
    if ended:
        records.append(StateChanged(state=BroadcastState.ENDED, at=100.0))
    FileJournal(state_dir).append(room, records)


def _downloads(storage: FilesystemStorage, state_dir: Path, **kw: object) -> ReplayDownloads:
    return ReplayDownloads(storage=storage, states=RoomStates(FileJournal(state_dir)), state_dir=state_dir,
                           **kw)  # type: ignore[arg-type]  # fmt: skip


def _built(state_dir: Path, room: str = ROOM) -> bool:
    with RoomStates(FileJournal(state_dir)).hold(room) as state:
        return state.download_bytes is not None


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
    _publish_replay(storage, tmp_path / "state", tmp_path / "work", sessions)
    done: list[str] = []
    downloads = _downloads(storage, tmp_path / "state", on_done=done.append)
    assert downloads.run(ROOM) is True
    assert done == [ROOM] and _built(tmp_path / "state")
    headers = storage.get_headers(layout.replay_download(ROOM))
    assert (headers.content_type, headers.cache_control) == ("audio/mp4", "public, max-age=86400")
    m4a = tmp_path / "replay.m4a"
    m4a.write_bytes(storage.get(layout.replay_download(ROOM)))
    # Not re-encoded: the file's packets are the sessions' packets, byte for byte, in order.
    expected: list[str] = []
    for s in sessions:
        joined = tmp_path / f"{s.id}.mp4"
        local = tmp_path / "work" / ROOM / s.id
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
    assert sorted(p.name for p in (tmp_path / "state" / MARKER_DIR).iterdir()) == [f"{ROOM}.lock"]


def test_sessions_with_different_codec_parameters_are_refused(tmp_path: Path, storage: FilesystemStorage) -> None:
    _publish_replay(storage, tmp_path / "state", tmp_path / "work",
                    [Session(id="20261126t090000z-aaaa1111", seconds=2.0),
                     Session(id="20261126t090100z-bbbb2222", seconds=2.0, channels=1)])  # fmt: skip
    with pytest.raises(ReplayDownloadError, match="codec parameters"):
        _downloads(storage, tmp_path / "state").run(ROOM)
    assert not storage.exists(layout.replay_download(ROOM)) and not _built(tmp_path / "state")


def test_an_unfinished_replay_is_not_downloaded(tmp_path: Path, storage: FilesystemStorage) -> None:
    _publish_replay(storage, tmp_path / "state", tmp_path / "work", [Session(id="20261126t090000z-aaaa1111",
                                                                             seconds=2.0)], ended=False)  # fmt: skip
    assert _downloads(storage, tmp_path / "state").run(ROOM) is False
    assert not storage.exists(layout.replay_download(ROOM))


def _race(root: str, state: str, results: multiprocessing.Queue[bool]) -> None:
    results.put(_downloads(FilesystemStorage(Path(root)), Path(state)).run(ROOM))


def test_exactly_one_worker_builds_it(tmp_path: Path, storage: FilesystemStorage) -> None:
    state = tmp_path / "state"
    _publish_replay(storage, state, tmp_path / "work", [Session(id="20261126t090000z-aaaa1111", seconds=3.0)])
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
    _publish_replay(storage, tmp_path / "state", tmp_path / "work", [Session(id="20261126t090000z-aaaa1111",
                                                                             seconds=2.0)])  # fmt: skip
    finished = threading.Event()
    callers: list[str] = []

    def on_done(room: str) -> None:
        callers.append(threading.current_thread().name)
        finished.set()

    downloads = _downloads(storage, tmp_path / "state", on_done=on_done)
    try:
        downloads.request(ROOM)
        downloads.request(ROOM)  # a second notification in the same worker is dropped
        assert finished.wait(timeout=60)
    finally:
        downloads.close()
    assert len(callers) == 1 and callers[0].startswith("replay-download")
    assert _built(tmp_path / "state")


def test_recover_builds_what_a_restart_left_unbuilt(tmp_path: Path, storage: FilesystemStorage) -> None:
    state = tmp_path / "state"
    one = [Session(id="20261126t090000z-aaaa1111", seconds=2.0)]
    _publish_replay(storage, state, tmp_path / "work", one)
    _publish_replay(storage, state, tmp_path / "work", one, room="never-published", published=False)
    _publish_replay(storage, state, tmp_path / "work", one, room="still-live", ended=False)
    built = threading.Event()
    downloads = _downloads(storage, state, on_done=lambda _room: built.set())
    try:
        downloads.recover()
        assert built.wait(timeout=60)
    finally:
        downloads.close()
    assert _built(state) and storage.exists(layout.replay_download(ROOM))
    assert not _built(state, "never-published") and not _built(state, "still-live")
