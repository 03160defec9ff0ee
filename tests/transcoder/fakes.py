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
