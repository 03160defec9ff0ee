"""Listener-side checks shared by end-to-end tests: watch playlists, decode with ffmpeg."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx
import m3u8


@dataclass(kw_only=True)
class PlaylistWatcher:
    """Polls playlists over HTTP; on every new version, checks that each object it names is readable.

    Records violations instead of raising, so the test can assert on them after the broadcast.
    """

    urls: Callable[[], list[str]]
    interval_s: float = 0.05
    versions: int = 0
    violations: list[str] = field(default_factory=list)
    sequence_regressions: list[str] = field(default_factory=list)
    _seen: dict[str, str] = field(default_factory=dict)
    _last_msn: dict[str, int] = field(default_factory=dict)
    _unanswered: dict[str, str] = field(default_factory=dict)  # object URL -> the playlist that named it
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> PlaylistWatcher:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        with httpx.Client(timeout=5) as client:
            self._recheck(client)
        self.violations.extend(f"{url} names {target}: no answer to HEAD" for target, url in self._unanswered.items())

    def _run(self) -> None:
        try:
            self._watch()
        except Exception as exc:  # a watcher that died would check nothing more: the test must know
            self.violations.append(f"the playlist watcher stopped: {exc!r}")
            raise

    def _watch(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                self._recheck(client)
                for url in self.urls():
                    try:
                        r = client.get(url)
                    except httpx.HTTPError:
                        continue
                    if r.status_code != 200 or self._seen.get(url) == r.text:
                        continue
                    self._seen[url] = r.text
                    self.versions += 1
                    self._check(client, url, r.text)
                self._stop.wait(self.interval_s)

    def _recheck(self, client: httpx.Client) -> None:
        for target, url in list(self._unanswered.items()):
            status = _head_status(client, target, attempts=1)
            if status is not None:
                del self._unanswered[target]
                if status != 200:
                    self.violations.append(f"{url} names {target} -> HTTP {status}")

    def _check(self, client: httpx.Client, url: str, text: str) -> None:
        playlist = m3u8.loads(text)
        names: list[str] = [p.uri for p in playlist.playlists]
        for seg in playlist.segments:
            names.append(seg.uri)
            if seg.init_section is not None:
                names.append(seg.init_section.uri)
        for name in dict.fromkeys(names):
            target = urljoin(url, name)
            status = _head_status(client, target)
            if status is None:  # the origin is restarting or its worker was killed: ask again later
                self._unanswered[target] = url
            elif status != 200:
                self.violations.append(f"{url} names {name} -> HTTP {status}")
        if playlist.segments:
            msn = int(playlist.media_sequence or 0)
            if msn < self._last_msn.get(url, -1):
                self.sequence_regressions.append(f"{url}: media sequence {self._last_msn[url]} -> {msn}")
            self._last_msn[url] = msn


def _head_status(client: httpx.Client, url: str, *, attempts: int = 3) -> int | None:
    """HEAD's status, or None when the origin does not answer (the reliability tests kill its workers and
    restart it): an object a playlist named stays in storage, so it is asked again later."""
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.1)
        try:
            return client.head(url).status_code
        except httpx.TransportError:
            pass
    return None


def decoded_duration_s(url: str, *, timeout_s: float = 120) -> float:
    """Decode every sample of an HLS URL with ffmpeg (as a listener would) and return the audio duration."""
    proc = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", url, "-map", "0:a:0",
         "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    assert not proc.stderr.strip(), proc.stderr.decode(errors="replace")[-2000:]
    return len(proc.stdout) / 2 / 48_000


def probe_streams(url: str) -> list[dict[str, object]]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", url], capture_output=True, check=True, timeout=60
    ).stdout
    streams: list[dict[str, object]] = json.loads(out)["streams"]
    return streams


def wait_for(predicate: Callable[[], bool], *, timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


class LiveListener:
    """ffmpeg playing a live HLS URL in the background, decoding to PCM until the playlist ends."""

    def __init__(self, url: str, *, keep_pcm: bool = True) -> None:
        self.url = url
        self.keep_pcm = keep_pcm
        self.pcm = bytearray()
        self.pcm_bytes = 0
        self.read_times: list[float] = []  # when decoded audio arrived (stall analysis)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", url, "-map", "0:a:0",
             "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read(65536):
            self.pcm_bytes += len(chunk)
            self.read_times.append(time.monotonic())
            if self.keep_pcm:
                self.pcm += chunk

    @property
    def decoded_s(self) -> float:
        return self.pcm_bytes / 2 / 48_000

    def finish(self, timeout_s: float = 60) -> str:
        """Wait for the player to reach EXT-X-ENDLIST; return its stderr (empty when clean)."""
        try:
            self.proc.wait(timeout=timeout_s)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read().decode(errors="replace")
        assert self.proc.returncode == 0, err[-2000:]
        return err
