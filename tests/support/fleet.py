"""An origin fleet on 127.0.0.1 for system tests and bench/fleet.py: N origin instances (gunicorn each, its own
state directory), nginx round-robin in front of them, one moto S3 server and one durable redis-server.

    with fleet(instances=3) as f:
        f.lb_url                   # the one ingest/API URL (nginx)
        f.kill(1)                  # SIGKILL instance 1 (master and workers) and wipe its state directory
        f.owners()                 # room -> index of the instance whose worker holds the room's lease
        f.stop_redis() / f.start_redis()

Listeners' reads go straight to the bucket (`f.bucket_url`, objects uploaded public-read).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from origin.edge.nginx_process import find_nginx
from tests.support.moto_server import FAKE_AWS_ENV, MotoServer, moto_server
from tests.support.net import free_port, wait_for_port
from tests.support.origin_server import ADMIN_TOKEN, OriginServer, origin_server, stop_group
from tests.support.redis_server import RedisServer, run_redis

BUCKET = "spillway-fleet"
PREFIX = "spillway:"  # origin/fleet/keys.py DEFAULT_PREFIX

_NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
events {{ worker_connections 2048; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  client_max_body_size 16m;
  upstream origins {{
{servers}
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://origins;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      # A dead or stopped instance: try the next one (PUT is idempotent; nginx never retries a POST).
      proxy_next_upstream error timeout http_502;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 1s;
      proxy_read_timeout 3s;
    }}
  }}
}}
"""


@dataclass(kw_only=True)
class Instance:
    index: int
    port: int
    state_dir: Path
    server: OriginServer | None = None
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def pids(self) -> list[int]:
        assert self.server is not None
        return [self.server.process.pid, *self.server.worker_pids()]


@dataclass(kw_only=True)
class Fleet:
    lb_url: str
    moto: MotoServer
    redis_dir: Path
    redis_port: int
    env: dict[str, str]
    instances: list[Instance]
    redis_durable: bool = True
    redis: RedisServer | None = None
    _redis_stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def bucket_url(self) -> str:
        return f"{self.moto.endpoint_url}/{BUCKET}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def client(self) -> redis.Redis[bytes]:
        return redis.Redis.from_url(self.redis_url, socket_timeout=2)

    # -- Redis ------------------------------------------------------------------------------------------

    def start_redis(self) -> None:
        self.redis = self._redis_stack.enter_context(run_redis(self.redis_dir, durable=self.redis_durable,
                                                               port=self.redis_port))  # fmt: skip

    def stop_redis(self, *, crash: bool = False) -> None:
        """SIGTERM (a restart: Redis shuts down cleanly) or SIGKILL (a crash); the data directory stays."""
        if self.redis is not None and crash:
            self.redis.process.kill()
        self._redis_stack.close()
        self._redis_stack = contextlib.ExitStack()
        self.redis = None

    # -- instances --------------------------------------------------------------------------------------

    def start(self, index: int) -> Instance:
        inst = self.instances[index]
        inst.stack = contextlib.ExitStack()
        inst.server = inst.stack.enter_context(origin_server(
            workers=int(self.env.get("SPILLWAY_WORKERS", "1")), env=self.env, state_dir=inst.state_dir,
            port=inst.port, startup_timeout_s=60))  # fmt: skip
        return inst

    def kill(self, index: int, *, wipe: bool = True) -> None:
        """SIGKILL the instance's whole process group (gunicorn master and workers), then delete its disk."""
        inst = self.instances[index]
        assert inst.server is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(inst.server.process.pid, signal.SIGKILL)
        inst.server.process.wait(timeout=10)
        inst.stack.close()
        inst.server = None
        if wipe:
            shutil.rmtree(inst.state_dir, ignore_errors=True)

    def signal(self, index: int, sig: signal.Signals) -> None:
        inst = self.instances[index]
        assert inst.server is not None
        os.killpg(inst.server.process.pid, sig)

    def owners(self) -> dict[str, int]:
        """room -> the instance whose worker holds its lease (values: "{epoch}|{host}-{pid}-{nonce}|{claim id}")."""
        by_pid = {pid: inst.index for inst in self.instances if inst.server is not None for pid in inst.pids}
        out: dict[str, int] = {}
        with self.client() as client:
            for key in client.scan_iter(match=f"{PREFIX}{{*}}:owner"):
                value = client.get(key)
                if value is None:
                    continue
                pid = int(value.decode().split("|")[1].rsplit("-", 2)[1])
                room = key.decode()[len(PREFIX) + 1:].split("}", 1)[0]
                if pid in by_pid:
                    out[room] = by_pid[pid]
        return out

    def busiest(self) -> tuple[int, list[str]]:
        """The running instance that owns the most rooms, and those rooms."""
        owners = self.owners()
        alive = [i.index for i in self.instances if i.server is not None]
        index = max(alive, key=lambda i: sum(1 for o in owners.values() if o == i))
        return index, sorted(r for r, o in owners.items() if o == index)

    def tokens(self) -> dict[str, int]:
        """room -> its current fencing token (epoch)."""
        with self.client() as client:
            return {key.decode()[len(PREFIX) + 1:].split("}", 1)[0]: int(client.get(key) or 0)
                    for key in client.scan_iter(match=f"{PREFIX}{{*}}:epoch")}  # fmt: skip

    def log(self, index: int) -> str:
        inst = self.instances[index]
        return inst.server.log_tail(200_000) if inst.server is not None else ""

    # -- rooms ------------------------------------------------------------------------------------------

    def create_room(self, room: str, token: str) -> None:
        r = httpx.put(f"{self.lb_url}/v1/rooms/{room}", json={"ingest_token": token, "realtime_cap": 0},
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)  # fmt: skip
        assert r.status_code in (200, 201), r.text

    def end_room(self, room: str) -> None:
        r = httpx.post(f"{self.lb_url}/v1/rooms/{room}/end", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                       timeout=10)  # fmt: skip
        assert r.status_code in (200, 202, 409), r.text


@contextlib.contextmanager
def _nginx(ports: list[int], directory: Path) -> Iterator[str]:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in ports)
    user = "user root;" if os.geteuid() == 0 else ""  # as root, workers would be nobody: no access to `directory`
    conf = directory / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(dir=directory, servers=servers, port=port, user=user))
    log = open(directory / "stderr.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([find_nginx(), "-p", str(directory), "-c", str(conf)], stdout=log, stderr=log,
                               start_new_session=True)  # fmt: skip
    try:
        wait_for_port(port, timeout_s=10)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(process)
        log.close()


@contextlib.contextmanager
def fleet(*, instances: int = 3, workers: int = 1, lease_s: float = 2.0, extra_env: dict[str, str] | None = None,
          redis_durable: bool = True, redis_replica: bool = False) -> Iterator[Fleet]:  # fmt: skip
    """`redis_replica`: a replica of the Redis server runs too (for SPILLWAY_REDIS_WAIT_REPLICAS)."""
    saved = {k: os.environ.get(k) for k in FAKE_AWS_ENV}
    os.environ.update(FAKE_AWS_ENV)  # the origins (and boto3 here) use fake credentials against moto
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spillway-fleet-")))
        moto = stack.enter_context(moto_server(buckets=[BUCKET], atomic_puts=True))
        moto.client().put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        ports = [free_port() for _ in range(instances)]
        lb_url = stack.enter_context(_nginx(ports, tmp / "nginx"))
        (tmp / "redis").mkdir()
        f = Fleet(lb_url=lb_url, moto=moto, redis_dir=tmp / "redis", redis_port=free_port(), env={}, instances=[
            Instance(index=i, port=p, state_dir=tmp / f"instance-{i}") for i, p in enumerate(ports)])  # fmt: skip
        f.redis_durable = redis_durable
        f.start_redis()
        stack.callback(f.stop_redis)
        if redis_replica:
            (tmp / "replica").mkdir()
            replica = stack.enter_context(run_redis(tmp / "replica", durable=redis_durable, replica_of=f.redis_port))
            with replica.client() as client:
                in_sync = wait_until(lambda: client.info("replication").get("master_link_status") == "up", 20)
            assert in_sync, "the Redis replica did not sync"
        f.env = {
            **FAKE_AWS_ENV, "SPILLWAY_WORKERS": str(workers), "SPILLWAY_COORDINATION": "redis",
            "SPILLWAY_STORAGE": "s3", "SPILLWAY_S3_BUCKET": BUCKET, "SPILLWAY_S3_ENDPOINT_URL": moto.endpoint_url,
            "SPILLWAY_S3_ACL": "public-read", "SPILLWAY_ADMISSION_BACKEND": "redis", "SPILLWAY_REDIS_URL": f.redis_url,
            "SPILLWAY_OWNER_LEASE_SECONDS": str(lease_s), "SPILLWAY_PUBLIC_BASE_URL": f.bucket_url,
            "SPILLWAY_API_BASE_URL": lb_url, "SPILLWAY_SESSIONS_PER_MINUTE": "100", **(extra_env or {}),
        }  # fmt: skip
        starters = [threading.Thread(target=f.start, args=(i,)) for i in range(instances)]
        for t in starters:
            t.start()
        for t in starters:
            t.join()
        for inst in f.instances:
            if inst.server is None:
                raise RuntimeError(f"instance {inst.index} did not start")
            stack.callback(inst.stack.close)
        try:
            yield f
        finally:
            for inst in f.instances:
                inst.stack.close()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return False
