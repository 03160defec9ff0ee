"""Scripted fake "ffmpeg" children for supervisor tests: print, exit with a code, or ignore signals."""

from __future__ import annotations

import sys
from pathlib import Path

CRASH = """
import sys
print("[error] fake ffmpeg: the encoder exploded (out of cheese)", file=sys.stderr, flush=True)
sys.exit(1)
"""

# Ignores SIGINT and SIGTERM: only SIGKILL stops it (bounded: exits by itself after 30 s).
STUBBORN = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("[info] fake ffmpeg: ignoring SIGINT and SIGTERM", file=sys.stderr, flush=True)
time.sleep(30)
"""


def fake_ffmpeg(directory: Path, body: str, name: str = "ffmpeg") -> Path:
    """An executable script at directory/name that runs `body` with this Python (ignores its argv)."""
    path = directory / name
    path.write_text(f"#!{sys.executable}\n{body.lstrip()}")
    path.chmod(0o755)
    return path


# Exits 1 saying the input's data is wrong (what an http stream serving an error page looks like).
BAD_INPUT = """
import sys
print("[error] http://127.0.0.1:9/live: Invalid data found when processing input", file=sys.stderr, flush=True)
sys.exit(1)
"""

# Exits 1 saying its own command is wrong.
BAD_OPTION = """
import sys
print("[error] Unrecognized option 'bogus'.", file=sys.stderr, flush=True)
sys.exit(1)
"""

# Crashes on its first `crashes` runs (counted in a file next to it), then runs until SIGINT (bounded: 30 s).
CRASH_THEN_RUN = """
import pathlib, signal, sys, time
counter = pathlib.Path(sys.argv[0]).with_suffix(".runs")
runs = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(runs + 1))
if runs < {crashes}:
    print("[error] fake ffmpeg: the encoder exploded (out of cheese)", file=sys.stderr, flush=True)
    sys.exit(1)
signal.signal(signal.SIGINT, lambda *_: sys.exit(255))
print("[info] fake ffmpeg: running", file=sys.stderr, flush=True)
time.sleep(30)
"""
