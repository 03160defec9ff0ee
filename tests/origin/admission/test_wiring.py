"""Construction from settings (backends, seat-token secret) and the broadcast view over the ingest state."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from pydantic import SecretStr

from origin.admission.redis_backend import RedisAdmission, RedisRoomRegistry
from origin.admission.seat_token import MIN_SECRET_BYTES
from origin.admission.setup import build_admission, seat_secret
from origin.admission.sqlite_backend import SqliteAdmission, SqliteRoomRegistry
from origin.admission.status import IdleBroadcastView
from origin.errors import ValidationError
from origin.rooms import Room
from origin.settings import Settings
from origin.storage.filesystem import FilesystemStorage
from tests.support.redis_server import RedisServer


def _settings(tmp_path: Path, **over: object) -> Settings:
    base: dict[str, object] = {"state_dir": tmp_path / "state", "public_base_url": "https://cdn.example/"}
    base.update(over)
    return Settings(**base)  # type: ignore[arg-type]


def test_embedded_backend_from_settings(tmp_path: Path) -> None:
    deps = build_admission(_settings(tmp_path), FilesystemStorage(tmp_path / "s"), IdleBroadcastView())
    try:
        assert isinstance(deps.backend, SqliteAdmission) and isinstance(deps.rooms, SqliteRoomRegistry)
        assert deps.backend.db.path == tmp_path / "state" / "admission.sqlite3"
        assert deps.public_base_url == "https://cdn.example"
        assert len(deps.seat_token_secret) >= MIN_SECRET_BYTES
        assert (deps.lease_s, deps.join_rate_per_minute) == (30.0, 30)
    finally:
        deps.backend.close()


def test_redis_backend_from_settings(tmp_path: Path, redis_server: RedisServer) -> None:
    settings = _settings(
        tmp_path, admission_backend="redis", redis_url=redis_server.url, seat_token_secret=SecretStr("s" * 40)
    )
    deps = build_admission(settings, FilesystemStorage(tmp_path / "s"), IdleBroadcastView())
    try:
        assert isinstance(deps.backend, RedisAdmission) and isinstance(deps.rooms, RedisRoomRegistry)
        deps.backend.check()
        deps.rooms.put(Room(id="wired", ingest_token="t" * 32))
        assert deps.rooms.get("wired") == Room(id="wired", ingest_token="t" * 32)
        assert deps.seat_token_secret == b"s" * 40
    finally:
        deps.backend.close()


def test_secret_rules(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least"):
        seat_secret(_settings(tmp_path, seat_token_secret=SecretStr("short")))
    with pytest.raises(ValidationError, match="redis"):
        seat_secret(_settings(tmp_path, admission_backend="redis"))
    first = seat_secret(_settings(tmp_path))
    assert first == seat_secret(_settings(tmp_path))  # kept in state_dir across restarts
    assert (tmp_path / "state" / "seat-token.secret").stat().st_mode & 0o777 == 0o600


def _secret_in_child(state_dir: str) -> bytes:
    return seat_secret(Settings(state_dir=Path(state_dir)))


def test_workers_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        secrets = pool.map(_secret_in_child, [str(tmp_path / "state")] * 8)
    assert len(set(secrets)) == 1
