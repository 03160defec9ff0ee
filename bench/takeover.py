"""What a new owner pays to take over a room, by broadcast length (not a test).

A room's owner keeps its state in memory and its decisions in the room's journal; a new owner (another worker,
a restarted origin, another instance of a fleet) folds the whole journal, then its first pass rebuilds the DVR
bodies from the published records and rewrites the playlists. The journal is not compacted while the room is
live, so this grows with the broadcast. For each length: the real file journal and publish pass, the product's
1 s segments and 3-rendition ladder, one pass per segment on a manual clock (records as ingest and the owner
write them); then a fresh RoomStates and RoomPublisher (empty DVR directory: a host that never had the room)
take the room over. Reports the journal's records and bytes, the fold and the first pass, in seconds of wall
time on this machine (no other load).

    .venv/bin/python bench/takeover.py --hours 0.25 1 2 4
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from origin.broadcast.ingest import object_key  # noqa: E402
from origin.broadcast.journal.files import FileJournal  # noqa: E402
from origin.broadcast.lifecycle import LifecyclePolicy  # noqa: E402
from origin.broadcast.model import INIT_INDEX, RenditionSpec, StoredObject  # noqa: E402
from origin.broadcast.publish.playlists import RoomPlaylists  # noqa: E402
from origin.broadcast.publish.room import PublishPolicy, RoomPublisher  # noqa: E402
from origin.broadcast.records import ObjectStored, SessionStarted  # noqa: E402
from origin.broadcast.spool import Spool  # noqa: E402
from origin.broadcast.states import RoomStates  # noqa: E402
from origin.broadcast.stores import RoomStores  # noqa: E402
from origin.contract.cache_policy import ObjectHeaders  # noqa: E402
from origin.contract.ingest import SEGMENT_SECONDS_DEFAULT  # noqa: E402
from origin.metrics import Metrics  # noqa: E402
from origin.settings import Settings  # noqa: E402
from origin.storage.group_commit import GroupCommit  # noqa: E402
from origin.storage.memory import MemoryStorage  # noqa: E402

ROOM, SESSION, RATE = "takeover", "20261208t010000z-0a1b2c3d", 48_000
LADDER = tuple(RenditionSpec(name=n, bitrate=b, channels=c, sample_rate=RATE)
               for n, b, c in (("a48", 48_000, 1), ("a64", 64_000, 2), ("a128", 128_000, 2)))  # fmt: skip
T0 = 1_790_000_000.0


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _publisher(journal: FileJournal, storage: MemoryStorage, clock: _Clock, work: Path) -> RoomPublisher:
    settings = Settings()
    ownership = journal.try_own(ROOM)
    assert ownership is not None, "the room is owned"
    policy = PublishPolicy(live_window_segments=settings.live_window_segments, lifecycle=LifecyclePolicy(),
                           filler=None, settle_s=2.0, event_interval_s=6.0)  # fmt: skip
    return RoomPublisher(
        room=ROOM, ownership=ownership, commit=GroupCommit(lambda: None, clock=clock), metrics=Metrics(), clock=clock,
        stores=RoomStores(journal=journal, states=RoomStates(journal), storage=storage, spool=Spool(work / "spool")),
        playlists=RoomPlaylists(ROOM, work / "dvr", live_window_segments=settings.live_window_segments,
                                event_interval_s=6.0),
        filler=None, policy=policy,
    )  # fmt: skip


def _store(storage: MemoryStorage, obj: StoredObject) -> ObjectStored:
    storage.objects[object_key(ROOM, obj)] = (b"m", ObjectHeaders(content_type="audio/mp4", cache_control=""))
    return ObjectStored(obj=obj)


def broadcast(state_dir: Path, work: Path, segments: int, storage: MemoryStorage) -> float:
    """Write `segments` seconds of a live room through the real journal and pass; the owner's CPU seconds."""
    clock, journal = _Clock(), FileJournal(state_dir)
    seg_s = SEGMENT_SECONDS_DEFAULT
    ticks = int(seg_s * RATE)
    journal.append(ROOM, [SessionStarted(session=SESSION, at=T0, segment_seconds=seg_s, ladder=LADDER)])
    journal.append(ROOM, [_store(storage, StoredObject(session=SESSION, rendition=r.name, idx=INIT_INDEX, size=700,
                                                       received_at=T0, timescale=RATE)) for r in LADDER])  # fmt: skip
    owner = _publisher(journal, storage, clock, work / "owner")
    started = time.process_time()
    for idx in range(segments):
        clock.now = T0 + (idx + 1) * seg_s
        journal.append(ROOM, [_store(storage, StoredObject(
            session=SESSION, rendition=r.name, idx=idx, size=8_000, received_at=clock.now, duration_ticks=ticks,
            base_ticks=idx * ticks)) for r in LADDER])  # fmt: skip
        clock.now += 1e-6
        owner.commit.barrier_blocking()
        owner.run()
    cpu = time.process_time() - started
    owner.ownership.release()
    return cpu


def take_over(state_dir: Path, work: Path, storage: MemoryStorage, at: float) -> dict[str, float]:
    clock, journal = _Clock(), FileJournal(state_dir)
    clock.now = at
    path = journal.room_dir(ROOM) / "journal.jsonl"
    started = time.perf_counter()
    states = RoomStates(journal)
    with states.hold(ROOM) as state:
        records = state.records
    fold_s = time.perf_counter() - started
    successor = _publisher(journal, storage, clock, work / "successor")
    started = time.perf_counter()
    result = successor.run()
    pass_s = time.perf_counter() - started
    successor.close()
    return {"records": records, "journal_bytes": path.stat().st_size, "fold_s": round(fold_s, 3),
            "first_pass_s": round(pass_s, 3), "first_pass_published": result.published}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, nargs="+", default=[0.25, 1.0, 2.0, 4.0])
    args = parser.parse_args()
    steps = []
    for hours in args.hours:
        segments = int(hours * 3600 / SEGMENT_SECONDS_DEFAULT)
        with tempfile.TemporaryDirectory() as tmp:
            storage = MemoryStorage()
            owner_cpu = broadcast(Path(tmp) / "state", Path(tmp), segments, storage)
            step = {"hours": hours, "segments": segments, "owner_cpu_ms_per_pass": round(owner_cpu / segments * 1e3, 3),
                    **take_over(Path(tmp) / "state", Path(tmp), storage, T0 + segments + 2.0)}  # fmt: skip
        print(json.dumps(step), flush=True)
        steps.append(step)
    out = ROOT / "bench" / "results" / "takeover"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"segment_seconds": SEGMENT_SECONDS_DEFAULT,
                                                    "renditions": len(LADDER), "steps": steps}, indent=2))  # fmt: skip
    _plot(steps, out.with_suffix(".png"))
    return 0


def _plot(steps: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = [s["hours"] for s in steps]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(hours, [s["fold_s"] for s in steps], marker="o", label="fold the journal")
    ax.plot(hours, [s["first_pass_s"] for s in steps], marker="o", label="first pass (DVR rebuilt)")
    ax.set_xlabel("broadcast length (hours, 1 s segments, 3 renditions)")
    ax.set_ylabel("seconds")
    ax.set_title("Takeover cost by broadcast length")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
