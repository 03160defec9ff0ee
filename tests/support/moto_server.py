"""Run moto's standalone S3 server on a free loopback port for tests (a real HTTP endpoint, no mocking).

    with moto_server(buckets=["spillway-test"]) as moto:
        client = moto.client()                    # boto3 client with explicit fake credentials
        storage = S3Storage(bucket="spillway-test", endpoint_url=moto.endpoint_url)  # needs aws_env

The process runs in its own session and is terminated (its whole process group) on exit. Boto3 code under
test resolves credentials from the environment: set FAKE_AWS_ENV for the test only, with pytest's
`monkeypatch` (see `apply_fake_aws_env`) or with the `fake_aws_env()` context manager outside pytest. The
fake environment also points the shared config files at /dev/null and disables the instance-metadata lookup,
so no real profile is read and nothing leaves 127.0.0.1.

Notes: anonymous GETs against moto need a `public-read` ACL (or a bucket policy); moto manages roughly
100-250 PUT/s on this machine, so keep load loops small.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import boto3
from botocore.config import Config

from tests.support.net import free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FAKE_AWS_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Removed from the environment while fake credentials are in force (they would override or confuse them).
_AWS_ENV_UNSET = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL")


class _MonkeyPatch(Protocol):
    def setenv(self, name: str, value: str, prepend: str | None = None) -> None: ...

    def delenv(self, name: str, raising: bool = True) -> None: ...


def apply_fake_aws_env(monkeypatch: _MonkeyPatch) -> None:
    """Set fake AWS credentials for the current test only (pytest restores the environment after)."""
    for name in _AWS_ENV_UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)


@contextlib.contextmanager
def fake_aws_env() -> Iterator[None]:
    """Same as apply_fake_aws_env, for code outside pytest (benchmarks, scripts); restores on exit."""
    names = (*FAKE_AWS_ENV, *_AWS_ENV_UNSET)
    saved = {name: os.environ.get(name) for name in names}
    try:
        for name in _AWS_ENV_UNSET:
            os.environ.pop(name, None)
        os.environ.update(FAKE_AWS_ENV)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass(kw_only=True)
class MotoServer:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    buckets: list[str] = field(default_factory=list)
    _client: S3Client | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> S3Client:
        """A boto3 S3 client for setup and inspection (explicit fake credentials; no env needed). Cached."""
        if self._client is not None:
            return self._client
        session = boto3.session.Session(
            aws_access_key_id=FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=FAKE_AWS_ENV["AWS_DEFAULT_REGION"],
        )
        config = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10)
        self._client = session.client("s3", endpoint_url=self.endpoint_url, config=config)
        return self._client

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def log_tail(self, n_bytes: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-n_bytes:].decode(errors="replace")
        return ""


def _moto_command(port: int, *, atomic_puts: bool = False) -> list[str]:
    if atomic_puts:
        return [sys.executable, str(Path(__file__).with_name("moto_atomic.py")), "-H", "127.0.0.1", "-p", str(port)]
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script), "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", "/moto-api/data.json")
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # the process group: moto_server and any child it made
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@contextlib.contextmanager
def moto_server(*, buckets: Sequence[str] = (), startup_timeout_s: float = 20.0, atomic_puts: bool = False
                ) -> Iterator[MotoServer]:  # fmt: skip
    """Start moto's server on a free 127.0.0.1 port, create `buckets`, yield it, then stop it.

    `atomic_puts`: conditional PUTs check and write atomically, as S3's do (tests/support/moto_atomic.py)."""
    fd, log_name = tempfile.mkstemp(prefix="moto-server-", suffix=".log")
    log_path = Path(log_name)
    env = {**os.environ, **FAKE_AWS_ENV}
    for name in _AWS_ENV_UNSET:
        env.pop(name, None)
    process: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(3):  # a free port can be taken between free_port() and bind(): retry
            port = free_port()
            process = subprocess.Popen(
                _moto_command(port, atomic_puts=atomic_puts),
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                env=env,
                start_new_session=True,
            )
            server = MotoServer(port=port, process=process, log_path=log_path)
            deadline = time.monotonic() + startup_timeout_s
            while process.poll() is None and time.monotonic() < deadline and not _answers(port):
                time.sleep(0.05)
            if process.poll() is None and _answers(port):
                break
            _terminate(process)
        else:
            raise RuntimeError(f"moto server did not start: {server.log_tail()}")
        for bucket in buckets:
            server.create_bucket(bucket)
        yield server
    finally:
        if process is not None:
            _terminate(process)
        os.close(fd)
        log_path.unlink(missing_ok=True)
