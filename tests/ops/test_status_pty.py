"""`spillway status` in a terminal (a pty) against a live origin: the room goes idle → live → ended on screen."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.origin_server import ADMIN_TOKEN, origin_server
from tests.support.pusher import Push

ROOM = "ptyroom"
TOKEN = "pty-ingest-token-0123456789abcdef"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CLEAR = "\x1b[H\x1b[2J"


class Terminal:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.fd, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self.text = ""

    def read(self) -> None:
        while select.select([self.fd], [], [], 0.05)[0]:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # the child closed the terminal
                return
            if not chunk:
                return
            self.text += chunk.decode(errors="replace")

    def screen(self) -> str:
        """The newest complete screen, without colour codes."""
        screens = self.text.split(CLEAR)
        return ANSI.sub("", screens[-2] if len(screens) > 2 else screens[-1])

    def row(self) -> list[str]:
        return next((line.split() for line in self.screen().splitlines() if line.startswith(ROOM + " ")), [])

    def wait_row(self, predicate: object, *, timeout_s: float, what: str) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.read()
            row = self.row()
            if row and predicate(row):  # type: ignore[operator]
                return row
            assert self.proc.poll() is None, self.text[-2000:]
        raise TimeoutError(f"{what}; last screen:\n{self.screen()}")


def test_status_follows_a_room_on_a_live_origin() -> None:
    with origin_server(workers=2) as origin:
        origin.create_room(ROOM, ingest_token=TOKEN, realtime_cap=2)
        env = {**os.environ, "SPILLWAY_ADMIN_TOKEN": ADMIN_TOKEN, "TERM": "xterm"}
        env.pop("NO_COLOR", None)
        term = Terminal([sys.executable, "-m", "origin.cli", "status", "--origin", origin.base_url,
                         "--interval", "0.3"], env)  # fmt: skip
        try:
            assert term.wait_row(lambda r: r[1] == "idle", timeout_s=20, what="the idle room")[7] == "0/2"
            assert "\x1b[?1049h" in term.text  # the alternate screen: the operator's scrollback survives
            push = Push(origin=origin.base_url, room=ROOM, token=TOKEN, seconds=8.0)
            ffmpeg = push.spawn()
            try:
                live = term.wait_row(lambda r: r[1] == "live" and r[3] == "a48,a64" and r[4].endswith("s"),
                                     timeout_s=20, what="the room on air")  # fmt: skip
                assert live[2] == push.session[-12:]  # the open session
                assert float(live[4].rstrip("s")) < 3.0  # live edge age
                assert "\x1b[32mlive\x1b[0m" in term.text  # live in green on a colour terminal
                # The source dies without an end call: its session times out and filler keeps the edge moving
                # (SPILLWAY_FILL_GAPS is on by default); the row turns yellow.
                ffmpeg.kill()
                gone = term.wait_row(lambda r: "gone" in r, timeout_s=25, what="the room without a source")
                assert gone[1:3] == ["live", "-"] and "filler" in gone
                assert "\x1b[33mptyroom" in term.text
            finally:
                ffmpeg.kill()
                ffmpeg.wait()
            assert origin.end_broadcast(ROOM).status_code == 200
            ended = term.wait_row(lambda r: r[1] == "ended", timeout_s=30, what="the ended room")
            assert "STALLED" not in ended
            term.proc.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 20
            while term.proc.poll() is None and time.monotonic() < deadline:
                term.read()  # keep draining: a full pty would block the view's last writes
            if term.proc.poll() is None:  # say where it is stuck before failing
                spy = Path(sys.executable).with_name("py-spy")
                dump = subprocess.run([str(spy), "dump", "--pid", str(term.proc.pid)], capture_output=True, text=True,
                                      timeout=30) if spy.exists() else None  # fmt: skip
                raise AssertionError(f"status ignored SIGINT for 20 s:\n{dump.stdout + dump.stderr if dump else ''}")
            assert term.proc.wait(timeout=1) == 0
            term.read()
            assert term.text.endswith("\x1b[?25h\x1b[?1049l")  # cursor and the normal screen restored
        finally:
            if term.proc.poll() is None:
                term.proc.kill()
                term.proc.wait()
            os.close(term.fd)
