"""The alert rules are what an on-call engineer can act on: each carries a severity, a summary,
a description and a link to its runbook section in deployments/README.md, and each has a
promtool unit test that fires it and one that shows it quiet (check.sh runs them with
`promtool test rules`; these tests hold the suite to covering every alert)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.deployments.manifests import REPO
from tests.deployments.queries import alert_rules

README = REPO / "deployments" / "README.md"
UNIT_TESTS = Path(__file__).with_name("alerts.test.yaml")


def runbook_sections() -> dict[str, str]:
    """GitHub's anchor of each README heading -> the text under it."""
    parts = re.split(r"^#{2,4} (.+)$", README.read_text(), flags=re.MULTILINE)
    return {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-"): body
        for heading, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def expectations() -> dict[str, list[bool]]:
    """Alert name -> for each of its promtool checks, whether it expects the alert to fire."""
    found: dict[str, list[bool]] = {}
    for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"]:
        for check in test.get("alert_rule_test", []):
            found.setdefault(check["alertname"], []).append(bool(check["exp_alerts"]))
    return found


def test_every_alert_has_a_severity_summary_description_and_runbook_section() -> None:
    sections = runbook_sections()
    for rule in alert_rules():
        name = rule["alert"]
        annotations = rule["annotations"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        page, anchor = annotations["runbook_url"].split("#")
        assert page == "deployments/README.md", name
        assert anchor == name.lower(), name
        assert "What to do" in sections.get(anchor, ""), f"no runbook section for {name}"


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tested = expectations()
    for rule in alert_rules():
        assert sorted(set(tested.get(rule["alert"], []))) == [False, True], rule["alert"]


def test_the_unit_tests_name_only_alerts_that_exist() -> None:
    assert set(expectations()) == {rule["alert"] for rule in alert_rules()}


def test_the_unit_tests_read_the_file_check_sh_writes() -> None:
    assert yaml.safe_load(UNIT_TESTS.read_text())["rule_files"] == ["orders.rules.yaml"]
