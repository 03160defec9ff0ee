"""`spillway demo` (what `make demo` runs): the whole pipeline prints a listener URL that plays."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.hls_check import decoded_duration_s


def test_demo_runs_the_pipeline_and_prints_playable_urls(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "origin.cli", "demo", "--port", "0", "--data-dir", str(tmp_path),
         "--duration", "8", "--exit-after-replay"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )  # fmt: skip
    out = proc.stdout
    logs = "".join((tmp_path / "logs" / n).read_text()[-3000:] for n in ("origin.log", "transcoder.log"))
    assert proc.returncode == 0, out + proc.stderr + logs
    live = re.search(r"LIVE\s+listener URL \(HLS\): (\S+)", out)
    replay = re.search(r"REPLAY (\S+)", out)
    assert live and replay, out
    assert "nginx edge caching" in out  # the listener path is the edge, not the origin
    # The demo has exited: its replay is decodable from the storage it left behind.
    stored = tmp_path / "storage" / "rooms" / "demo" / "replay.m3u8"
    assert decoded_duration_s(str(stored)) >= 6.0
    log = (tmp_path / "logs/transcoder.log").read_text()
    assert "(crash)" not in log, log[-2000:]
