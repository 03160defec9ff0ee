"""Room configuration: the value every part of the origin reads, and the registry interface.

Implementations (embedded SQLite, Redis) live in origin/admission/ beside the admission backends,
so several origin instances that share Redis also share their rooms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class Room:
    id: str
    ingest_token: str
    title: str = ""
    host: str = ""
    realtime_cap: int = 0  # real-time (WebRTC) seats; 0 sends every listener to HLS
    embed_origins: tuple[str, ...] = field(default_factory=tuple)  # e.g. ("https://news.example",)


class RoomRegistry(Protocol):
    def get(self, room_id: str) -> Room | None: ...

    def put(self, room: Room) -> None: ...

    def ids(self) -> list[str]:
        """Every room id, sorted."""
        ...

    def delete(self, room_id: str) -> bool:
        """Remove the room; False if it did not exist."""
        ...
