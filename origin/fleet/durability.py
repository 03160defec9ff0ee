"""What a 201 waits for in a fleet, and what "durable" means there.

A segment is in S3 before its record is appended (a PUT that returned is durable: S3's promise), so what
is left is the record (and a spooled copy) in Redis:

* `replicas == 0` (default): Redis's own persistence decides. Run it with `appendonly yes` and
  `appendfsync always` (or use a durable Redis such as MemoryDB): Redis then fsyncs every write before it
  answers any client, so a record another instance can read is already on disk, the barrier has nothing
  to wait for, and no publication waits for one (`visible_is_durable`). `check` warns at start when Redis
  says otherwise (managed Redis often hides CONFIG; then it says nothing).
* `replicas == N`: the group commit's barrier writes a marker and runs `WAIT N` on the same connection:
  replication is in order, so every write that completed before the marker is on N replicas when it
  returns. A 201 then survives the primary's loss (failover to a replica). Publications wait for a barrier
  as on one host (the durability stamps ride the rings).
"""

from __future__ import annotations

import logging

import redis

from origin.errors import StorageError
from origin.fleet.keys import BACKEND, DEFAULT_PREFIX

log = logging.getLogger(__name__)


class RedisDurability:
    def __init__(
        self, client: redis.Redis[bytes], *, replicas: int = 0, timeout_s: float = 1.0, prefix: str = DEFAULT_PREFIX
    ) -> None:
        self.client = client
        self.replicas = replicas
        self.timeout_ms = int(timeout_s * 1000)
        self._marker = f"{prefix}barrier"

    @property
    def visible_is_durable(self) -> bool:
        return self.replicas == 0

    def sync(self) -> None:
        if self.replicas == 0:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.incr(self._marker)
            pipe.wait(self.replicas, self.timeout_ms)
            _, acked = pipe.execute()
        except redis.RedisError as exc:
            raise StorageError(f"durability barrier failed: {exc}", key="(barrier)", backend=BACKEND) from exc
        if int(acked) < self.replicas:
            raise StorageError(f"{acked} of {self.replicas} replicas acknowledged within {self.timeout_ms} ms",
                               key="(barrier)", backend=BACKEND)  # fmt: skip

    def check(self) -> None:
        """Log at start how durable an acknowledged record is with this Redis."""
        if self.replicas:
            log.info("redis durability: a 201 waits for %d replica(s) (WAIT)", self.replicas)
            return
        try:
            aof = self.client.config_get("appendonly").get("appendonly")
            fsync = self.client.config_get("appendfsync").get("appendfsync")
        except redis.RedisError as exc:
            log.info("redis durability: cannot read its persistence settings (%s); make sure it is durable", exc)
            return
        if (aof, fsync) != ("yes", "always"):
            log.warning("redis durability: appendonly=%s appendfsync=%s, so a 201 can be lost with Redis: run it "
                        "with appendonly yes + appendfsync always, or set SPILLWAY_REDIS_WAIT_REPLICAS", aof, fsync)
        else:
            log.info("redis durability: every record is fsynced before Redis answers (appendfsync always)")
