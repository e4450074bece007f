"""Building blocks shared by the dashboards: the datasource, PromQL targets, panel defaults.

Every panel and every query references the Prometheus datasource by the fixed uid that Grafana
provisioning gives it (config/monitoring.py), never by name or a datasource variable.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableOption, VariableRefresh

from config.monitoring import API_JOB, GRAFANA_DATASOURCE_UID

# The API's metrics all carry this prefix (app/serving/metrics.py NAMESPACE).
METRIC_PREFIX = "mlserve_"
# Grafana's rate window: at least four scrape intervals, from the datasource's timeInterval.
RATE_WINDOW = "$__rate_interval"


def matcher(label: str, operator: str, value: str) -> str:
    """One PromQL label matcher, e.g. matcher("le", "=", "0.9") -> le="0.9"."""
    return f'{label}{operator}"{value}"'


# Selector of the API's series; `$job` is the dashboard variable of the same name.
API = matcher("job", "=", "$job")
# Request panels leave out Prometheus's own scrapes of /metrics.
API_REQUESTS = f"{API},{matcher('endpoint', '!=', '/metrics')}"
PREDICTION_ENDPOINTS = f"{API},{matcher('endpoint', '=~', '/predict|/invocations')}"


def rate(metric: str, *matchers: str) -> str:
    """`rate(metric{matchers}[$__rate_interval])`."""
    selector = f"{{{','.join(matchers)}}}" if matchers else ""
    return f"rate({metric}{selector}[{RATE_WINDOW}])"


def datasource() -> DataSourceRef:
    return DataSourceRef(type_val="prometheus", uid=GRAFANA_DATASOURCE_UID)


def query(
    expr: str, legend: str = "__auto", ref_id: str = "A", *, instant: bool = False
) -> prometheus.Dataquery:
    """A PromQL target on the fixed datasource."""
    target = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).datasource(datasource())
    return target.instant() if instant else target.range()


def default_timeseries(title: str, description: str, unit: str) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .unit(unit)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .draw_style(common.GraphDrawStyle.LINE)
        .span_nulls(False)
        .legend(
            common_builder.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(common_builder.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
        .height(8)
    )


def default_stat(title: str, description: str, unit: str) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .unit(unit)
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .height(4)
    )


def default_table(title: str, description: str) -> table.Panel:
    return table.Panel().title(title).description(description).datasource(datasource()).height(8)


def job_variable() -> dashboard.QueryVariable:
    """`$job`: the API's scrape job; the default is the API service name."""
    return (
        dashboard.QueryVariable("job")
        .label("API job")
        .datasource(datasource())
        .query(f"label_values({METRIC_PREFIX}model_info, job)")
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .current(VariableOption(selected=True, text=API_JOB, value=API_JOB))
    )
