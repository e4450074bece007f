"""The "Prediction service" dashboard: RED metrics of the API, the model, its inputs and drift.

One small function per panel (the grafana-foundation-sdk red-method style); the queries use the
metrics of app/serving/metrics.py and the same selectors as the alert rules in config/prometheus/rules/.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, stat, table, timeseries
from grafana_foundation_sdk.models.common import BigValueTextMode
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, VariableOption, VariableRefresh
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from dashboards.annotations import PrometheusAnnotation, appeared
from dashboards.panels import (
    API,
    API_REQUESTS,
    PREDICTION_ENDPOINTS,
    datasource,
    default_stat,
    default_table,
    default_timeseries,
    job_variable,
    matcher,
    query,
    rate,
)

UID = "mlserve-prediction-service"
TITLE = "Prediction service"

REQUESTS = "mlserve_http_requests_total"
DURATION_BUCKET = "mlserve_http_request_duration_seconds_bucket"
PREDICTIONS = "mlserve_predictions_total"
FEATURE_BUCKET = "mlserve_feature_training_quantile_bucket"
FEATURES = matcher("feature", "=~", "$feature")


def _status_ratio(status_class: str) -> str:
    """Share of API requests (not /metrics) answered with a status of this class; 0 when none."""
    failed = f"sum({rate(REQUESTS, API_REQUESTS, matcher('status', '=~', status_class))}) or vector(0)"
    return f"({failed}) / sum({rate(REQUESTS, API_REQUESTS)})"


def _class_share() -> str:
    """Share of predicted rows per class; a class with no predictions gets 0 (not no series)."""
    rows = f"sum by (class_name) ({rate(PREDICTIONS, API)}) or {_baseline_share()} * 0"
    return f"({rows}) / ignoring (class_name) group_left sum({rate(PREDICTIONS, API)})"


def _baseline_share() -> str:
    return f"max by (class_name) (mlserve_baseline_class_share{{{API}}})"


def _feature_bucketrate(le: str) -> str:
    return f"sum by (feature) ({rate(FEATURE_BUCKET, API, FEATURES, matcher('le', '=', le))})"


def request_rate_by_status() -> timeseries.Panel:
    return (
        default_timeseries(
            "Request rate by status",
            "Requests answered per second by HTTP status (without /metrics).",
            "reqps",
        )
        .with_target(query(f"sum by (status) ({rate(REQUESTS, API_REQUESTS)})", "{{status}}"))
        .span(8)
    )


def error_ratio() -> timeseries.Panel:
    return (
        default_timeseries(
            "Error ratio",
            "Share of requests answered 5xx (server errors; alert High5xxRatio above 5 %) "
            "and 4xx (rejected input, unknown routes).",
            "percentunit",
        )
        .with_target(query(_status_ratio("5.."), "5xx", "A"))
        .with_target(query(_status_ratio("4.."), "4xx", "B"))
        .min(0)
        .span(8)
    )


def latency_quantiles() -> timeseries.Panel:
    panel = default_timeseries(
        "Prediction latency p50 / p95 / p99",
        "Time to answer /predict and /invocations (alert HighP99Latency above 500 ms).",
        "s",
    ).span(8)
    for ref_id, quantile in (("A", "0.5"), ("B", "0.95"), ("C", "0.99")):
        expr = f"histogram_quantile({quantile}, sum by (le) ({rate(DURATION_BUCKET, PREDICTION_ENDPOINTS)}))"
        panel = panel.with_target(query(expr, f"p{quantile[2:].ljust(2, '0')}", ref_id))
    return panel


def model_version() -> stat.Panel:
    expr = "max by (model_name, model_version, model_format, source) (mlserve_model_info{" + API + "})"
    return (
        default_stat("Model being served", "Name, version, format and source of the loaded model.", "none")
        .with_target(
            query(expr, "{{model_name}} v{{model_version}} ({{model_format}}, {{source}})", instant=True)
        )
        .text_mode(BigValueTextMode.NAME)
        .span(8)
    )


def model_ready() -> stat.Panel:
    return (
        default_stat(
            "Model ready",
            "1 when every worker has a verified model loaded (alert ModelNotReady at 0).",
            "none",
        )
        .with_target(query(f"min(mlserve_model_ready{{{API}}})", "ready", instant=True))
        .span(4)
    )


def invalid_input_ratio() -> stat.Panel:
    invalid = f"sum({rate('mlserve_invalid_requests_total', API)}) or vector(0)"
    return (
        default_stat(
            "Invalid input ratio",
            "Share of /predict and /invocations requests rejected before prediction (alert above 25 %).",
            "percentunit",
        )
        .with_target(query(f"({invalid}) / sum({rate(REQUESTS, PREDICTION_ENDPOINTS)})", "invalid"))
        .span(4)
    )


def largest_class_deviation() -> stat.Panel:
    return (
        default_stat(
            "Largest class-share deviation",
            "Largest |live share - training share| over the classes "
            "(alert PredictionClassDrift above 20 points).",
            "percentunit",
        )
        .with_target(query(f"max(abs({_class_share()} - on (class_name) {_baseline_share()}))", "deviation"))
        .span(8)
    )


def predictions_by_class() -> timeseries.Panel:
    return (
        default_timeseries("Predictions by class", "Rows predicted per second, by predicted class.", "short")
        .with_target(query(f"sum by (class_name) ({rate(PREDICTIONS, API)})", "{{class_name}}"))
        .span(8)
    )


def class_share_vs_baseline() -> timeseries.Panel:
    return (
        default_timeseries(
            "Class share: live vs training",
            "Share of rows predicted as each class, against the class's share in the training data.",
            "percentunit",
        )
        .with_target(query(_class_share(), "{{class_name}} live", "A"))
        .with_target(query(_baseline_share(), "{{class_name}} training", "B"))
        .min(0)
        .max(1)
        .span(8)
    )


def prediction_confidence() -> timeseries.Panel:
    buckets = "mlserve_prediction_confidence_bucket"
    low = f"sum({rate(buckets, API, matcher('le', '=', '0.6'))})"
    return (
        default_timeseries(
            "Prediction confidence",
            "Probability of the predicted class: median, 10th percentile, "
            "and the share of rows at or below 0.6.",
            "percentunit",
        )
        .with_target(query(f"histogram_quantile(0.5, sum by (le) ({rate(buckets, API)}))", "p50", "A"))
        .with_target(query(f"histogram_quantile(0.1, sum by (le) ({rate(buckets, API)}))", "p10", "B"))
        .with_target(
            query(f"{low} / sum({rate('mlserve_prediction_confidence_count', API)})", "share <= 0.6", "C")
        )
        .min(0)
        .max(1)
        .span(8)
    )


def invalid_inputs_by_reason() -> timeseries.Panel:
    return (
        default_timeseries(
            "Invalid inputs by reason", "Requests rejected before prediction per second, by reason.", "reqps"
        )
        .with_target(query(f"sum by (reason) ({rate('mlserve_invalid_requests_total', API)})", "{{reason}}"))
        .span(12)
    )


def feature_outside_training_band() -> timeseries.Panel:
    outside = f"{_feature_bucketrate('+Inf')} - {_feature_bucketrate('0.9')} + {_feature_bucketrate('0.1')}"
    return (
        default_timeseries(
            "Feature drift: values outside the training 10-90 % band",
            "Share of each feature's values below the training 10th or above the 90th percentile. "
            "Without drift about 20 %; alert FeatureDrift above 40 %.",
            "percentunit",
        )
        .with_target(query(f"({outside}) / {_feature_bucketrate('+Inf')}", "{{feature}}"))
        .min(0)
        .max(1)
        .span(12)
    )


def feature_decile_table() -> table.Panel:
    cumulative = f"sum by (feature, le) ({rate(FEATURE_BUCKET, API, FEATURES)})"
    expr = f"{cumulative} / ignoring (le) group_left {_feature_bucketrate('+Inf')}"
    return (
        default_table(
            "Feature drift: live share at or below each training decile",
            "Cumulative share of live values at or below each training decile (le). "
            "Without drift it is close to le.",
        )
        .with_target(query(expr, "{{feature}} le={{le}}", instant=True).format(PromQueryFormat.TABLE))
        .span(24)
    )


def feature_variable() -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable("feature")
        .label("Feature")
        .datasource(datasource())
        .query(f'label_values({FEATURE_BUCKET}{{job="$job"}}, feature)')
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def model_change_annotation() -> PrometheusAnnotation:
    """A marker on every panel when the API starts serving another model version (a promotion,
    a rollback, a restore): the moment a regression started is then visible next to its cause."""
    served = f"mlserve_model_info{{{API}}}"
    return PrometheusAnnotation(
        "Model changes", appeared(served, "model_version"), "Model version {{model_version}} served", "blue"
    )


def model_refusal_annotation() -> PrometheusAnnotation:
    """A marker when the API refused a new champion (it failed verification: the old one serves on)."""
    refused = f'increase(mlserve_model_swaps_total{{{API},outcome="refused"}}[1m]) > 0'
    return PrometheusAnnotation(
        "Model refused", refused, "New model version refused; the old one serves on", "red"
    )


def prediction_service_dashboard() -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(TITLE)
        .uid(UID)
        .tags(["mlops-platform", "api", "generated"])
        .description("RED metrics, model, inputs and drift of the prediction API.")
        .readonly()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .with_variable(job_variable())
        .with_variable(feature_variable())
        .annotation(model_change_annotation())
        .annotation(model_refusal_annotation())
        .with_row(dashboard.Row("Requests"))
        .with_panel(request_rate_by_status())
        .with_panel(error_ratio())
        .with_panel(latency_quantiles())
        .with_row(dashboard.Row("Model and predictions"))
        .with_panel(model_version())
        .with_panel(model_ready())
        .with_panel(invalid_input_ratio())
        .with_panel(largest_class_deviation())
        .with_panel(predictions_by_class())
        .with_panel(class_share_vs_baseline())
        .with_panel(prediction_confidence())
        .with_row(dashboard.Row("Inputs and drift"))
        .with_panel(invalid_inputs_by_reason())
        .with_panel(feature_outside_training_band())
        .with_panel(feature_decile_table())
    )
