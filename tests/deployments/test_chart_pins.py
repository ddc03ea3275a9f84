"""Every `helm install` of a third-party chart, in the README and in our values files, pins the
version that `make deploy-check` renders, so what is checked is what gets installed."""

from __future__ import annotations

import re

import pytest

from deployments.charts import CHARTS, Chart
from tests.deployments.charts import README


@pytest.mark.parametrize("chart", CHARTS.values(), ids=CHARTS)
def test_every_helm_install_of_the_chart_pins_its_version(chart: Chart) -> None:
    for path in (README, chart.values_dir / "values.yaml", chart.values_dir / "monitoring.yaml"):
        text = path.read_text().replace("\\\n", " ")
        commands = re.findall(rf"helm (?:install|upgrade)[^\n]*bitnami/{chart.name}[^\n]*", text)
        assert commands, path
        for command in commands:
            assert f"--version {chart.version}" in command, f"{path.name}: {command}"
