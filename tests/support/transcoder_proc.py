"""`spillway transcode` as a real process (supervisor + ffmpeg), for system tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


class TranscoderProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    def ffmpeg_pid(self, timeout_s: float = 15.0) -> int:
        """The supervised ffmpeg child (waits for one to be running)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            out = subprocess.run(["pgrep", "-P", str(self.proc.pid), "ffmpeg"], capture_output=True, text=True)
            pids = [int(p) for p in out.stdout.split()]
            if pids:
                return pids[0]
            time.sleep(0.05)
        raise TimeoutError(f"no ffmpeg child running:\n{self.log()}")

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGINT, as Ctrl-C: the supervisor delivers the final segment and ends its session."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return int(self.proc.returncode)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""


@contextlib.contextmanager
def transcoder(
    *, origin: str, room: str, token: str, source: str = "sine=f=440:r=48000", segment_seconds: float = 1.0,
    extra: tuple[str, ...] = (),
    source_args: tuple[str, ...] | None = None, env: dict[str, str] | None = None,
) -> Iterator[TranscoderProcess]:  # fmt: skip
    """`source_args` replaces the default generated input (`--input lavfi:source --realtime`), e.g. `--janus URL`."""
    inputs = source_args if source_args is not None else ("--input", source, "--input-format", "lavfi", "--realtime")
    with tempfile.TemporaryDirectory(prefix="spillway-transcoder-") as tmp:
        log_path = Path(tmp) / "transcoder.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "origin.cli", "transcode", "--room", room, "--origin", origin,
                 "--token", token, *inputs,
                 "--segment-seconds", str(segment_seconds), "--backoff", "0.2", *extra],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env=None if env is None else {**os.environ, **env},
            )  # fmt: skip
            handle = TranscoderProcess(proc, log_path)
            try:
                yield handle
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
