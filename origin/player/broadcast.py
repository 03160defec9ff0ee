"""The broadcast as listeners need to see it in status.json (wraps the ingest side's BroadcastView).

Two refinements over the raw ingest state, both so a client never fetches a URL that does not exist yet:

* `live` only once the stream is playable: an ingest session starts (state live) a segment or two before
  the publisher writes the first master playlist; until then the room reads as `idle`, so a player that
  follows status.json never loads a master playlist that 404s.
* `download_url` once the replay `.m4a` exists (origin/replay_download.py writes a local done-marker).

Both checks are local reads (the room's SQLite state, a stat); a room once playable is remembered.
"""

from __future__ import annotations

import dataclasses
import threading

from origin.admission.status import BroadcastInfo, BroadcastView
from origin.replay_download import ReplayDownloads, download_url
from origin.state import StateStore


class ListenerBroadcastView:
    def __init__(
        self, inner: BroadcastView, *, store: StateStore, downloads: ReplayDownloads, public_base_url: str
    ) -> None:
        self.inner = inner
        self.store = store
        self.downloads = downloads
        self.public_base_url = public_base_url
        self._playable: set[str] = set()
        self._lock = threading.Lock()

    def _master_published(self, room: str) -> bool:
        with self._lock:
            if room in self._playable:
                return True
        if not self.store.db_path(room).exists():
            return False
        with self.store.open(room) as db:
            published = db.master_texts()[0] is not None
        if published:
            with self._lock:
                self._playable.add(room)
        return published

    def broadcast(self, room: str) -> BroadcastInfo:
        info = self.inner.broadcast(room)
        if info.state == "live" and not self._master_published(room):
            return dataclasses.replace(info, state="idle", replay_url=None)
        if info.state == "ended" and self.downloads.ready(room):
            return dataclasses.replace(info, download_url=download_url(self.public_base_url, room))
        return info
