"""Generated dashboards: stable uids, fixed datasource, defined variables, real metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest

from config.monitoring import DASHBOARDS_JSON_DIR, GRAFANA_DATASOURCE_UID
from dashboards.queries import GRAFANA_BUILTINS, iter_panels, load_dashboards, panel_queries, substitute
from tests.support.monitoring import exported_series_names, mlserve_metrics_in

EXPECTED_UIDS = {
    "mlserve-prediction-service": "Prediction service",
    "mlops-platform": "Platform",
    "mlops-host": "Host",
}
CURRENT_PANEL_TYPES = {"timeseries", "stat", "table", "row"}
DASHBOARDS = load_dashboards()


def _ids(dashboard: dict[str, Any]) -> str:
    return str(dashboard["uid"])


def test_uids_and_titles_are_stable() -> None:
    assert {d["uid"]: d["title"] for d in DASHBOARDS} == EXPECTED_UIDS
    for dashboard in DASHBOARDS:
        assert (DASHBOARDS_JSON_DIR / f"{dashboard['uid']}.json").exists()


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=_ids)
def test_panels_use_current_types_unique_ids_and_the_fixed_datasource(dashboard: dict[str, Any]) -> None:
    panels = list(iter_panels(dashboard))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    assert all(panel_id > 0 for panel_id in ids)
    for panel in panels:
        assert panel["type"] in CURRENT_PANEL_TYPES, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": GRAFANA_DATASOURCE_UID}
        assert panel["description"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": GRAFANA_DATASOURCE_UID}
            assert target["expr"].strip()
    variables = dashboard.get("templating", {}).get("list", [])
    for variable in variables:
        assert variable["datasource"]["uid"] == GRAFANA_DATASOURCE_UID


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=_ids)
def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=_ids)
def test_query_variables_are_defined(dashboard: dict[str, Any]) -> None:
    defined = {variable["name"] for variable in dashboard.get("templating", {}).get("list", [])}
    values = dict.fromkeys(defined | GRAFANA_BUILTINS, "x")
    for query in panel_queries(dashboard, values):
        assert "$" not in query.expr, query


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=_ids)
def test_queries_use_only_metrics_the_api_exports(dashboard: dict[str, Any]) -> None:
    for query in panel_queries(dashboard):
        used = mlserve_metrics_in(query.expr)
        assert used <= exported_series_names(), (query.panel_title, used - exported_series_names())


def test_prediction_dashboard_shows_traffic_latency_errors_predictions_and_drift() -> None:
    dashboard = next(d for d in DASHBOARDS if d["uid"] == "mlserve-prediction-service")
    exprs = " ".join(query.expr for query in panel_queries(dashboard))
    for needed in (
        "sum by (status)",
        'status=~"5.."',
        "histogram_quantile(0.99",
        "mlserve_model_info",
        "sum by (class_name)",
        "mlserve_baseline_class_share",
        "mlserve_prediction_confidence_bucket",
        "sum by (reason)",
        "mlserve_feature_training_quantile_bucket",
    ):
        assert needed in exprs, needed


def test_substitute_replaces_every_form_and_refuses_unknown_variables() -> None:
    values = {"job": "api", "__rate_interval": "1m", "feature": ".*"}
    assert substitute('rate(x{job="$job"}[$__rate_interval])', values) == 'rate(x{job="api"}[1m])'
    assert substitute('x{feature=~"${feature:regex}",job="[[job]]"}', values) == 'x{feature=~".*",job="api"}'
    with pytest.raises(KeyError, match="instance"):
        substitute('x{instance="$instance"}', values)


def test_json_is_plain_data() -> None:
    for path in DASHBOARDS_JSON_DIR.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["schemaVersion"] >= 39
        assert data["editable"] is False


def test_prediction_dashboard_marks_model_changes_and_refusals_from_exported_metrics() -> None:
    dashboard = next(d for d in DASHBOARDS if d["uid"] == "mlserve-prediction-service")
    annotations = {a["name"]: a for a in dashboard["annotations"]["list"]}
    assert set(annotations) == {"Model changes", "Model refused"}
    exported = exported_series_names() | {"mlserve_model_swaps_total"}
    for annotation in annotations.values():
        assert annotation["datasource"] == {"type": "prometheus", "uid": GRAFANA_DATASOURCE_UID}
        assert annotation["titleFormat"]
        assert mlserve_metrics_in(annotation["expr"]) <= exported, annotation["name"]
    assert 'outcome="refused"' in annotations["Model refused"]["expr"]
