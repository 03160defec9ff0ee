"""A contract-following ingest client built from plain ffmpeg (docs/ingest.md), for origin tests.

It is independent of transcoder/ on purpose: origin tests pin the contract, not one implementation.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
from dataclasses import dataclass, field

import httpx

LADDER = (("a48", 48_000, 1), ("a64", 64_000, 2), ("a128", 128_000, 2))


def new_session_id() -> str:
    return time.strftime("%Y%m%dt%H%M%Sz", time.gmtime()) + "-" + secrets.token_hex(4)


@dataclass(kw_only=True)
class Push:
    origin: str
    room: str
    token: str
    seconds: float = 6.0
    segment_seconds: float = 1.0
    ladder: tuple[tuple[str, int, int], ...] = LADDER[:2]
    realtime: bool = True
    source: str = "anoisesrc=r=48000:a=0.08:c=pink"
    session: str = field(default_factory=new_session_id)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def start(self) -> httpx.Response:
        body = {
            "segment_seconds": self.segment_seconds,
            "renditions": [
                {"name": n, "bitrate": b, "channels": c, "sample_rate": 48_000} for n, b, c in self.ladder
            ],
        }
        return httpx.post(
            f"{self.origin}/ingest/{self.room}/{self.session}/start", json=body, headers=self._headers(), timeout=10
        )

    def end(self, reason: str = "eos") -> httpx.Response:
        return httpx.post(
            f"{self.origin}/ingest/{self.room}/{self.session}/end",
            json={"reason": reason},
            headers=self._headers(),
            timeout=10,
        )

    def argv(self, *, stoppable: bool = False) -> list[str]:
        n = len(self.ladder)
        split = "".join(f"[a{i}]" for i in range(n))
        argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", *(() if stoppable else ("-nostdin",))]
        if self.realtime:
            argv.append("-re")
        argv += ["-f", "lavfi", "-i", f"{self.source}:d={self.seconds}"]
        argv += ["-filter_complex", f"[0:a]asplit={n}{split}"]
        for i in range(n):
            argv += ["-map", f"[a{i}]"]
        argv += ["-c:a", "aac", "-ar", "48000"]
        for i, (_name, bitrate, channels) in enumerate(self.ladder):
            argv += [f"-b:a:{i}", str(bitrate), f"-ac:a:{i}", str(channels)]
        base = f"{self.origin}/ingest/{self.room}/{self.session}/%v"
        argv += [
            "-f", "hls", "-hls_time", str(self.segment_seconds), "-hls_segment_type", "fmp4",
            "-hls_flags", "independent_segments", "-hls_list_size", "4", "-method", "PUT",
            "-http_persistent", "0", "-headers", f"Authorization: Bearer {self.token}\r\n",
            "-var_stream_map", " ".join(f"a:{i},name:{name}" for i, (name, _, _) in enumerate(self.ladder)),
            "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", f"{base}/%06d.m4s",
            f"{base}/index.m3u8",
        ]  # fmt: skip
        return argv

    def spawn(self, *, stoppable: bool = False) -> subprocess.Popen[bytes]:
        """`stoppable`: ffmpeg reads its keyboard from a pipe, so `stop_early` can end the push before `seconds`."""
        r = self.start()
        assert r.status_code == 201, r.text
        stdin = subprocess.PIPE if stoppable else subprocess.DEVNULL
        return subprocess.Popen(self.argv(stoppable=stoppable), stdin=stdin, stderr=subprocess.PIPE)

    @staticmethod
    def stop_early(proc: subprocess.Popen[bytes]) -> None:
        """ffmpeg's `q`: it stops reading its input, then ends the stream as at the input's end (exit 0)."""
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it had already finished
            proc.stdin.write(b"q")
            proc.stdin.flush()

    def run(self) -> None:
        """start → ffmpeg to completion → end."""
        proc = self.spawn()
        _, err = proc.communicate(timeout=self.seconds * 3 + 30)
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
        r = self.end()
        assert r.status_code == 200, r.text
