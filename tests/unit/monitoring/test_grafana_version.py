"""The dashboards load in the Grafana the stack runs: the SDK build and the schema match its release."""

from __future__ import annotations

from importlib.metadata import version

from grafana_foundation_sdk.builders import dashboard
from packaging.version import Version

from config.monitoring import REPO_ROOT
from config.services import GRAFANA_DASHBOARD_SCHEMA_VERSION, GRAFANA_VERSION, SERVICES
from dashboards.queries import load_dashboards

SDK = "grafana_foundation_sdk"


def _pinned(name: str) -> str:
    lines = (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split("==", 1) for line in lines if "==" in line)[name]


def _grafana_release(sdk_version: str) -> str:
    # The SDK versions its builds `<build time>!<Grafana release>`: the release is the public version.
    return ".".join(map(str, Version(sdk_version).release))


def test_the_sdk_pinned_and_installed_is_the_build_for_the_stacks_grafana() -> None:
    assert SERVICES.grafana.image == f"grafana/grafana-oss:{GRAFANA_VERSION}"
    assert _grafana_release(_pinned(SDK)) == GRAFANA_VERSION
    assert version(SDK) == _pinned(SDK)


def test_that_sdk_build_writes_the_schema_version_config_states() -> None:
    assert dashboard.Dashboard("probe").build().schema_version == GRAFANA_DASHBOARD_SCHEMA_VERSION


def test_every_generated_dashboard_has_the_pinned_grafanas_schema_version() -> None:
    dashboards = load_dashboards()
    assert dashboards
    assert {d["uid"]: d["schemaVersion"] for d in dashboards} == dict.fromkeys(
        (d["uid"] for d in dashboards), GRAFANA_DASHBOARD_SCHEMA_VERSION
    )
