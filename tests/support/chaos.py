"""Faults for chaos runs on a live room (bench/chaos.py, tests/system/test_never_dead_air.py).

The room is fed over RTP (`RtpSender` → `spillway transcode --sdp`) until a host change moves it to a second
transcoder on another source. `inject` applies one fault and returns when recovery counts from.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.fault_proxy import Delay, Drop, FaultProxy, Hang, Reply
from tests.support.hls_check import wait_for
from tests.support.moto_server import moto_server
from tests.support.origin_server import OriginServer, origin_server
from tests.support.transcoder_proc import TranscoderProcess, transcoder
from tests.transcoder.rtp import RtpSender, free_rtp_port, sdp_for

RENDITIONS = ("a48", "a64", "a128")
FAULTS = ("source_drop", "host_change", "ffmpeg_kill", "worker_kill", "storage_faults")
STORAGE_FAULTS = (Reply(status=503), Reply(status=500, forward_first=True), Hang(seconds=6.0), Delay(seconds=2.0),
                  Drop())  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Durations:
    drop_s: float = 20.0  # the RTP source is gone this long (longer than the transcoder's 10 s idle timeout)
    storage_faults_s: float = 20.0
    storage_fault_rate: float = 0.2


def owner_pid(origin: OriginServer, room: str) -> int | None:
    """The worker holding the room's owner lock (an open descriptor on state_dir/rooms/{room}/owner.lock)."""
    lock = str(origin.state_dir / "rooms" / room / "owner.lock")
    for pid in origin.worker_pids():
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == lock:
                        return pid
    return None


@dataclass(kw_only=True)
class Fault:
    kind: str
    detail: str
    t: float  # when it was injected
    back: float  # when recovery counts from (the source's return, the end of the storage faults)


@dataclass(kw_only=True)
class Stack:
    room: str
    token: str
    origin: OriginServer
    proxy: FaultProxy
    sender: RtpSender
    sdp: Path
    tx: contextlib.ExitStack
    current: TranscoderProcess
    read: str  # the room's objects as listeners read them (storage, straight)
    on_rtp: bool = True

    @property
    def live(self) -> list[str]:
        return [f"{self.read}/live/{r}.m3u8" for r in RENDITIONS]

    @property
    def playlists(self) -> list[str]:
        return [f"{self.read}/master.m3u8", *self.live, *(f"{self.read}/replay/{r}.m3u8" for r in RENDITIONS)]


@contextlib.contextmanager
def rtp_room(*, room: str, token: str, bucket: str, seed: int) -> Iterator[Stack]:
    """An origin (2 workers, default settings) on S3 (moto) behind the fault proxy, and a room fed over RTP
    through `spillway transcode --sdp` (default flags), playable. Needs fake AWS credentials in the environment."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spillway-chaos-")))
        moto = stack.enter_context(moto_server(buckets=[bucket], atomic_puts=True))  # conditional PUTs as S3
        proxy = stack.enter_context(FaultProxy(moto.endpoint_url, seed=seed))
        env = {"SPILLWAY_STORAGE": "s3", "SPILLWAY_S3_BUCKET": bucket, "SPILLWAY_S3_ENDPOINT_URL": proxy.url,
               "SPILLWAY_S3_ACL": "public-read"}  # fmt: skip
        origin = stack.enter_context(origin_server(workers=2, env=env))
        origin.create_room(room, ingest_token=token)
        port = free_rtp_port()
        sdp = tmp / "room.sdp"
        sdp.write_text(sdp_for(port))
        sender = stack.enter_context(RtpSender(port))
        tx = contextlib.ExitStack()
        first = tx.enter_context(transcoder(origin=origin.base_url, room=room, token=token,
                                            source_args=("--sdp", str(sdp))))  # fmt: skip
        s = Stack(room=room, token=token, origin=origin, proxy=proxy, sender=sender, sdp=sdp, tx=tx, current=first,
                  read=f"{moto.endpoint_url}/{bucket}/rooms/{room}")  # fmt: skip
        stack.callback(lambda: s.tx.close())  # the room's transcoder of the moment (a host change replaces it)
        wait_for(lambda: httpx.get(f"{s.read}/master.m3u8").status_code == 200, timeout_s=60, what="the stream")
        yield s


def inject(kind: str, s: Stack, rng: random.Random, d: Durations) -> tuple[float, str]:
    """Apply one fault; return the time recovery counts from and a detail."""
    if kind == "source_drop" and s.on_rtp:
        s.sender.stop()
        time.sleep(d.drop_s)
        s.sender.start()
        return time.monotonic(), f"{d.drop_s:g}s without RTP"
    if kind == "source_drop":  # the room moved off RTP: its source stalls instead
        stalled = s.current.ffmpeg_pid()
        os.kill(stalled, signal.SIGSTOP)
        time.sleep(d.drop_s)
        os.kill(stalled, signal.SIGCONT)
        return time.monotonic(), f"ffmpeg stopped {d.drop_s:g}s"
    if kind == "host_change":
        new_stack = contextlib.ExitStack()
        new = new_stack.enter_context(transcoder(origin=s.origin.base_url, room=s.room, token=s.token,
                                                 source=f"sine=f={rng.choice((550, 660, 770))}:r=48000"))  # fmt: skip
        time.sleep(1)
        s.current.stop()
        s.tx.close()
        s.tx, s.current, s.on_rtp = new_stack, new, False
        return time.monotonic(), ""
    if kind == "ffmpeg_kill":
        os.kill(s.current.ffmpeg_pid(), signal.SIGKILL)
        return time.monotonic(), ""
    if kind == "worker_kill":
        pid = owner_pid(s.origin, s.room)
        target = pid if pid is not None else s.origin.worker_pids()[0]
        os.kill(target, signal.SIGKILL)
        return time.monotonic(), "owner" if pid is not None else "a worker (owner not found)"
    s.proxy.set_random_faults(d.storage_fault_rate, STORAGE_FAULTS)
    time.sleep(d.storage_faults_s)
    s.proxy.clear_faults()
    return time.monotonic(), f"{d.storage_fault_rate:.0%} of writes for {d.storage_faults_s:g}s"
