"""A real Janus (Debian `janus`) for tests and benchmarks: a generated config directory, `janus -F DIR`.

Only the AudioBridge plugin and the HTTP transport are loaded; the HTTP API binds 127.0.0.1 on a free port and
ICE gathers on the loopback interface only (`ice_enforce_list = "lo"`), so media never leaves 127.0.0.1. The
AudioBridge `admin_key` locks room creation and RTP forwarding (as a deployment should).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.net import free_port

JANUS_BIN = "/usr/bin/janus"
LIB_DIR = Path("/usr/lib/x86_64-linux-gnu/janus")
ADMIN_KEY = "test-janus-admin-key-0123456789abcdef"
ROOM_SECRET = "test-janus-room-secret-0123456789abcdef"


def _janus_jcfg(config_dir: Path, *, rtp_port_range: str) -> str:
    return f"""general: {{
	configs_folder = "{config_dir}"
	plugins_folder = "{LIB_DIR / "plugins"}"
	transports_folder = "{LIB_DIR / "transports"}"
	events_folder = "{LIB_DIR / "events"}"
	loggers_folder = "{LIB_DIR / "loggers"}"
	debug_level = 4
	session_timeout = 60
	server_name = "spillway-test"
}}
media: {{
	rtp_port_range = "{rtp_port_range}"
}}
nat: {{
	ice_enforce_list = "lo"
	ignore_mdns = true
}}
plugins: {{
	disable = "libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_videoroom.so,libjanus_voicemail.so"
}}
transports: {{
	disable = "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so,libjanus_websockets.so"
}}
events: {{
	broadcast = false
}}
"""  # noqa: E501


def _http_jcfg(port: int) -> str:
    return f"""general: {{
	json = "compact"
	base_path = "/janus"
	http = true
	port = {port}
	interface = "lo"
	ip = "127.0.0.1"
	https = false
}}
admin: {{
	admin_http = false
}}
cors: {{
}}
"""


def _audiobridge_jcfg() -> str:
    return f"""general: {{
	admin_key = "{ADMIN_KEY}"
	lock_rtp_forward = true
	events = false
}}
"""


@dataclass(kw_only=True)
class JanusProcess:
    url: str  # the HTTP API, e.g. http://127.0.0.1:PORT/janus
    port: int
    config_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def log_tail(self, n_bytes: int = 6000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-n_bytes:].decode(errors="replace")
        return ""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, *, timeout_s: float = 20.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open by the child; closed with the process)
        self.process = subprocess.Popen(
            [JANUS_BIN, "-F", str(self.config_dir), "-C", str(self.config_dir / "janus.jcfg"), "-o", "-D"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"janus exited early ({self.process.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/info", timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"janus not ready on {self.url}:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, *, timeout_s: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def kill(self) -> None:
        """SIGKILL: Janus dies with every room, forwarder and allowed list (a crash)."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def restart(self) -> None:
        self.kill()
        self.start()


def write_config(config_dir: Path, *, http_port: int, rtp_port_range: str) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "janus.jcfg").write_text(_janus_jcfg(config_dir, rtp_port_range=rtp_port_range))
    (config_dir / "janus.transport.http.jcfg").write_text(_http_jcfg(http_port))
    (config_dir / "janus.plugin.audiobridge.jcfg").write_text(_audiobridge_jcfg())


@contextlib.contextmanager
def janus_server(*, rtp_port_range: str = "40000-40999") -> Iterator[JanusProcess]:
    """Start Janus on a free 127.0.0.1 port from a fresh config directory; stop it after."""
    with tempfile.TemporaryDirectory(prefix="spillway-janus-") as tmp:
        config_dir = Path(tmp) / "conf"
        port = free_port()
        write_config(config_dir, http_port=port, rtp_port_range=rtp_port_range)
        server = JanusProcess(
            url=f"http://127.0.0.1:{port}/janus", port=port, config_dir=config_dir, log_path=Path(tmp) / "janus.log"
        )
        try:
            server.start()
            yield server
        finally:
            server.stop()


def plain_join(url: str, *, room: int, token: str, participant: int, timeout_s: float = 5.0) -> dict[str, object]:
    """Join an AudioBridge room as a client would, without media: the plugin's event (joined, or an error).

    Janus checks the allowed list on `join`, before any WebRTC negotiation, so this is exactly the check a
    browser meets. The session stays open (it times out in Janus) so the participant stays in the room.
    """
    with httpx.Client(base_url=url, timeout=timeout_s) as c:
        session = c.post("", json={"janus": "create", "transaction": "c"}).json()["data"]["id"]
        handle = c.post(f"/{session}", json={"janus": "attach", "plugin": "janus.plugin.audiobridge",
                                             "transaction": "a"}).json()["data"]["id"]  # fmt: skip
        body = {"request": "join", "room": room, "token": token, "id": participant, "muted": True}
        ack = c.post(f"/{session}/{handle}", json={"janus": "message", "transaction": "j", "body": body}).json()
        assert ack["janus"] == "ack", ack
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            events = c.get(f"/{session}", params={"maxev": 5}, timeout=timeout_s).json()
            for event in events if isinstance(events, list) else [events]:
                if event.get("janus") == "event" and event.get("transaction") == "j":
                    data: dict[str, object] = event["plugindata"]["data"]
                    return data
        raise TimeoutError("no join event from Janus")
