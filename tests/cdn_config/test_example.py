"""cdn-config/nginx/edge.conf.example is what `spillway edge render` prints for its example server, from the
template the package ships (origin/edge/templates/): operators read a real config, and it cannot go stale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from origin.edge.nginx_process import TEMPLATE_PATH, check_config, find_nginx

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "cdn-config" / "nginx" / "edge.conf.example"
ARGV = ["edge", "render", "--listen", "0.0.0.0:80", "--cache-dir", "/var/cache/spillway-edge",
        "--worker-user", "www-data:www-data", "--allow-origin", "https://news.example",
        "--origin-url", "http://127.0.0.1:8080"]  # fmt: skip
REGENERATE = "spillway " + " ".join(ARGV) + " > cdn-config/nginx/edge.conf.example"


def render() -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPILLWAY_")}
    proc = subprocess.run([sys.executable, "-m", "origin.cli", *ARGV], capture_output=True, text=True, env=env,
                          check=True, cwd=ROOT)  # fmt: skip
    return proc.stdout


def test_the_example_is_what_the_packaged_template_renders() -> None:
    assert TEMPLATE_PATH.is_relative_to(ROOT / "origin" / "edge" / "templates")
    assert EXAMPLE.read_text() == render(), f"the template changed: regenerate the example with\n  {REGENERATE}"


def test_nginx_accepts_the_example(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("/var/cache/spillway-edge", str(tmp_path / "cache"))
    text = text.replace("user www-data www-data;", "# user: not set for this check")
    for sub in ("logs", "tmp", "cache"):
        (tmp_path / sub).mkdir()
    conf = tmp_path / "edge.conf"
    conf.write_text(text)
    check_config(find_nginx(), tmp_path, conf)
