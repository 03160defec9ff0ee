"""Open an admission backend from a picklable description (so child processes can open their own)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from origin.admission.backend import AdmissionBackend
from origin.admission.decision import AdmitResult
from origin.admission.redis_backend import RedisAdmission, connect
from origin.admission.sqlite_backend import SqliteAdmission


@dataclass(frozen=True, kw_only=True)
class BackendSpec:
    kind: Literal["sqlite", "redis"]
    location: str  # state dir, or Redis URL
    prefix: str = ""


def open_backend(spec: BackendSpec) -> AdmissionBackend:
    if spec.kind == "sqlite":
        return SqliteAdmission.open(Path(spec.location))
    return RedisAdmission(connect(spec.location), prefix=spec.prefix)


def hammer_admit(spec: BackendSpec, room: str, cap: int, attempts: int, now: float, tag: str) -> list[AdmitResult]:
    """Run in a child process or thread: `attempts` admits against a fresh backend; return the results."""
    backend = open_backend(spec)
    try:
        return [
            backend.admit(room, lease=f"{tag}-lease-{i:06d}", cap=cap, now=now, lease_s=30.0) for i in range(attempts)
        ]
    finally:
        backend.close()
