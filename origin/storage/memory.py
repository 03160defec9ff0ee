"""An in-memory `Storage` for unit tests of the publish path (the twin of the real backends).

It keeps every object with its headers, can be told to fail the next writes of chosen keys, and records
every put in order so a test can check that a playlist was only written after the objects it names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from origin.contract.cache_policy import ObjectHeaders
from origin.errors import StorageError
from origin.storage.keys import validate_key, validate_prefix


@dataclass(kw_only=True)
class MemoryStorage:
    name: str = "memory"
    objects: dict[str, tuple[bytes, ObjectHeaders]] = field(default_factory=dict)
    puts: list[str] = field(default_factory=list)  # keys in the order they were written
    syncs: int = 0
    fail: Callable[[str], bool] = field(default=lambda key: False)  # True: that put raises StorageError
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, key: str, data: bytes, headers: ObjectHeaders, *, durable: bool = True) -> None:
        validate_key(key)
        if self.fail(key):
            raise StorageError("injected failure", key=key, backend=self.name)
        with self._lock:
            self.objects[key] = (bytes(data), headers)
            self.puts.append(key)

    def put_file(self, key: str, source: Path, headers: ObjectHeaders) -> None:
        self.put(key, source.read_bytes(), headers)

    def sync(self) -> None:
        self.syncs += 1

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(validate_key(key), None)

    def get(self, key: str) -> bytes:
        try:
            return self.objects[validate_key(key)][0]
        except KeyError:
            raise KeyError(key) from None

    def get_headers(self, key: str) -> ObjectHeaders:
        return self.objects[validate_key(key)][1]

    def exists(self, key: str) -> bool:
        return validate_key(key) in self.objects

    def list(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        return sorted(k for k in self.objects if k.startswith(prefix))

    def check(self) -> None:
        return None

    def text(self, key: str) -> str:
        return self.get(key).decode()
