"""The alert rules pass promtool, and each alert fires and resolves on synthetic series (promtool test rules)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

OPS = Path(__file__).resolve().parents[2] / "ops" / "prometheus"
RULES = OPS / "spillway.rules.yml"
RULE_TESTS = OPS / "spillway.rules.test.yml"
RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "operations.md"

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing (Debian: prometheus)")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, cwd=OPS, check=False)


def alerts() -> list[dict[str, object]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_rules_and_scrape_config_check() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    result = promtool("check", "config", str(OPS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_resolves_in_the_unit_tests() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    for rule in alerts():
        name = rule["alert"]
        checks = [c for t in tests for c in t.get("alert_rule_test", []) if c["alertname"] == name]
        assert any(c["exp_alerts"] for c in checks), f"{name} is never seen firing"
        firing_at = min(int(c["eval_time"].rstrip("s")) for c in checks if c["exp_alerts"])
        assert any(not c["exp_alerts"] and int(c["eval_time"].rstrip("s")) > firing_at for c in checks), (
            f"{name} is never seen resolving"
        )


def test_a_broken_expectation_fails_promtool(tmp_path: Path) -> None:
    """The unit tests can fail: the same file with one expected label changed does."""
    broken = RULE_TESTS.read_text().replace("severity: critical, instance: o1, job: spillway-origin, room: r}",
                                            "severity: warning, instance: o1, job: spillway-origin, room: r}", 1)
    (tmp_path / "spillway.rules.yml").write_text(RULES.read_text())
    (tmp_path / "t.yml").write_text(broken)
    result = subprocess.run(["promtool", "test", "rules", "t.yml"], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path, check=False)  # fmt: skip
    assert result.returncode != 0 and "SpillwayRoomStalled" in result.stdout + result.stderr


def test_every_alert_has_a_runbook_section_and_a_severity() -> None:
    runbook = RUNBOOK.read_text()
    headings = {re.sub(r"[^a-z0-9]", "", h.lower()) for h in re.findall(r"^### (.+)$", runbook, re.M)}
    for rule in alerts():
        name = str(rule["alert"])
        assert rule["labels"]["severity"] in ("warning", "critical"), name  # type: ignore[index]
        assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}"  # type: ignore[index]
        assert name.lower() in headings, f"docs/operations.md has no '### {name}' runbook"
