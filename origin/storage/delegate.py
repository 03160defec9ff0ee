"""Storage wrappers that change how writes happen (hedged, fenced) answer reads and deletes from the store below."""

from __future__ import annotations

from origin.storage.base import Storage


class ReadsBelow:
    """get, exists, list, delete and check answered by `below`."""

    below: Storage

    def delete(self, key: str) -> None:
        self.below.delete(key)

    def get(self, key: str) -> bytes:
        return self.below.get(key)

    def exists(self, key: str) -> bool:
        return self.below.exists(key)

    def list(self, prefix: str) -> list[str]:
        return self.below.list(prefix)

    def check(self) -> None:
        self.below.check()
