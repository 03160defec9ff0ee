"""`spillway transcode` as a child process for tests: argv, spawn with captured output, wait with a bound."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def transcode(*args: str) -> list[str]:
    return [sys.executable, "-m", "origin.cli", "transcode", *args]


def spawn(argv: list[str], **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def finish(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"transcoder did not exit in {timeout}s:\n{err[-3000:]}") from None
    return proc.returncode, err
