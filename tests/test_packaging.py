"""The wheel works on its own (issue 10): built from what the Dockerfile copies, installed non-editable into a
fresh venv, it renders the edge config from its packaged template, runs the origin, and a `spillway edge run`
in front of that origin serves the player's assets. Nothing is read from the checkout.

Offline: the wheel is built by pip (build dependencies from the configured package index), and the fresh venv
borrows this venv's site-packages for the runtime dependencies through a .pth line (which adds the directory,
not this venv's editable install of the checkout).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.net import free_port
from tests.support.origin_server import ADMIN_TOKEN, stop_group

ROOT = Path(__file__).resolve().parents[1]
DOCKER_COPIES = ("pyproject.toml", "README.md", "transcoder", "origin")  # the Dockerfile's COPY lines


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in DOCKER_COPIES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, src / name)  # type: ignore[operator]
    shutil.rmtree(src / "origin" / "__pycache__", ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(src)],
                   check=True, timeout=180, capture_output=True)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("spillway-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    # runtime dependencies from this venv; `--no-deps` because they are there already
    (Path(purelib) / "outer-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, timeout=120, capture_output=True)  # fmt: skip
    return venv


def run_in(venv: Path, *argv: str, env: dict[str, str] | None = None, cwd: Path) -> str:
    proc = subprocess.run([str(venv / "bin" / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=60,
                          env=env, cwd=cwd, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPILLWAY_", "PYTHON", "VIRTUAL_ENV"))}
    return {**env, **extra}


@contextlib.contextmanager
def running(argv: list[str], *, env: dict[str, str], cwd: Path, ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    log = open(cwd / f"{Path(argv[0]).name}-{argv[1]}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (cwd / log.name).read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"{argv[:2]} not ready"
            time.sleep(0.2)
        yield proc
    finally:
        stop_group(proc)
        log.close()


def test_the_installed_wheel_is_the_code_under_test(fresh_venv: Path, tmp_path: Path) -> None:
    where = run_in(fresh_venv, "python", "-c", "import origin.edge.cli as m; print(m.__file__)", cwd=tmp_path)
    assert where.startswith(str(fresh_venv)) and "site-packages" in where, where


def test_the_wheel_renders_the_edge_and_serves_the_player_through_it(fresh_venv: Path, tmp_path: Path) -> None:
    conf = run_in(fresh_venv, "spillway", "edge", "render", "--listen", "127.0.0.1:18080", "--cache-dir",
                  str(tmp_path / "cache"), "--origin-url", "http://127.0.0.1:8080",
                  env=clean_env(), cwd=tmp_path)  # fmt: skip
    assert "listen 127.0.0.1:18080" in conf and "proxy_cache_path " + str(tmp_path / "cache") in conf

    port, edge_port = free_port(), free_port()
    origin_url = f"http://127.0.0.1:{port}"
    edge_url = f"http://127.0.0.1:{edge_port}"
    env = clean_env(SPILLWAY_STATE_DIR=str(tmp_path / "state"), SPILLWAY_STORAGE_ROOT=str(tmp_path / "storage"),
                    SPILLWAY_ADMIN_TOKEN=ADMIN_TOKEN, SPILLWAY_PUBLIC_BASE_URL=edge_url)  # fmt: skip
    origin_argv = [str(fresh_venv / "bin" / "spillway"), "origin", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    edge_argv = [str(fresh_venv / "bin" / "spillway"), "edge", "run", "--listen", f"127.0.0.1:{edge_port}",
                 "--origin-url", origin_url]  # fmt: skip
    with (running(origin_argv, env=env, cwd=tmp_path, ready_url=f"{origin_url}/readyz"),
          running(edge_argv, env=env, cwd=tmp_path, ready_url=f"{edge_url}/_edge/healthz")):  # fmt: skip
        r = httpx.put(f"{origin_url}/v1/rooms/packaged", json={"realtime_cap": 0, "title": "From a wheel"},
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)  # fmt: skip
        assert r.status_code == 201, r.text
        page = httpx.get(f"{edge_url}/embed/packaged", timeout=10)
        assert page.status_code == 200 and "From a wheel" in page.text
        assets = sorted(set(re.findall(r"/static/player/[0-9a-f]+/[a-z0-9.-]+\.(?:js|css)", page.text)))
        assert len(assets) >= 3, page.text[:2000]  # player.js, player.css, the vendored hls.js
        for path in assets:
            via_edge = httpx.get(f"{edge_url}{path}", timeout=10)
            assert via_edge.status_code == 200 and via_edge.content == httpx.get(origin_url + path).content, path
