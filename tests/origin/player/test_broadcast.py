"""status.json as listeners see it: live only once playable, the download URL only once it exists."""

from __future__ import annotations

import json
from pathlib import Path

from origin.admission.broadcast_view import StateBroadcastView
from origin.contract import layout
from origin.player.broadcast import ListenerBroadcastView
from origin.replay_download import MARKER_DIR, ReplayDownloads
from origin.state import RenditionSpec, StateStore
from origin.storage.filesystem import FilesystemStorage

ROOM = "town-hall"
CDN = "https://cdn.example"
NOW = 1_790_000_000.0


def test_live_once_playable_and_download_once_built(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    downloads = ReplayDownloads(storage=FilesystemStorage(tmp_path / "storage"), state_dir=tmp_path / "state")
    view = ListenerBroadcastView(StateBroadcastView(store, public_base_url=CDN), store=store, downloads=downloads,
                                 public_base_url=CDN)
    assert view.broadcast(ROOM).state == "idle"  # never broadcast
    with store.open(ROOM) as db:
        db.start_session("20261126t090000z-aaaa1111", (RenditionSpec(name="a64", bitrate=64_000, channels=2,
                                                                     sample_rate=48_000),), 1.0, NOW)
    # On air, but nothing published: a player must not load the master playlist yet.
    assert view.inner.broadcast(ROOM).state == "live"
    info = view.broadcast(ROOM)
    assert (info.state, info.replay_url) == ("idle", None)
    with store.open(ROOM) as db, db.transaction():
        db.set_master_texts("#EXTM3U\n", "#EXTM3U\n")
    info = view.broadcast(ROOM)
    assert (info.state, info.replay_url) == ("live", f"{CDN}/rooms/{ROOM}/replay.m3u8")
    with store.open(ROOM) as db, db.transaction():
        db.set_broadcast("ended", NOW + 60)
    info = view.broadcast(ROOM)
    assert (info.state, info.download_url) == ("ended", None)
    # The job's done-marker (written after the upload) makes the download visible.
    marker = tmp_path / "state" / MARKER_DIR / f"{ROOM}.done.json"
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"bytes": 1}))
    assert view.broadcast(ROOM).download_url == f"{CDN}/{layout.replay_download(ROOM)}"
