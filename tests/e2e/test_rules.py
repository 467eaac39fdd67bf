"""The rule files' unit tests (``collector-config/rules/tests/rules_test.yml``) pass under
``promtool test rules``: the rejected-spans alert fires at 100 % and 50 % rejection and stays quiet
under 1 %, and the per-call AI intensity keeps ``service_name``.

The live e2e test (``test_prometheus.py``) only sees what its traffic happens to trip; these cases
pin the edges it never reaches, such as a serve that has accounted nothing at all.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "collector-config" / "rules"
RULES_TEST = RULES_DIR / "tests" / "rules_test.yml"
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (make sysdeps installs Debian's prometheus)"
)


def _test_rules(path: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rule_unit_tests_pass() -> None:
    result = _test_rules(RULES_TEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_unit_tests_catch_an_empty_accounted_side(tmp_path: Path) -> None:
    """Without ``or vector(0)`` the alert is silent when every span is rejected; the tests say so."""
    (tmp_path / "tests").mkdir()
    shutil.copy(RULES_DIR / "downstream.rules.yml", tmp_path)
    shutil.copy(RULES_TEST, tmp_path / "tests")
    alerts = (RULES_DIR / "downstream.alerts.yml").read_text()
    guarded = "(sum(rate(downstream_spans_accounted_total[10m])) or vector(0))"
    assert guarded in alerts
    broken = alerts.replace(guarded, "sum(rate(downstream_spans_accounted_total[10m]))")
    (tmp_path / "downstream.alerts.yml").write_text(broken)
    result = _test_rules(tmp_path / "tests" / "rules_test.yml")
    assert result.returncode != 0
    assert "spans rejected, 100 %" in result.stdout + result.stderr
    assert "spans rejected, 50 %" not in result.stdout + result.stderr
