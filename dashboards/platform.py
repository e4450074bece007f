"""The "Platform" dashboard: are the scrape targets up, and how much do the processes use.

Process panels read the standard `process_*` metrics of every target that exports them
(Prometheus always does; the API does when its collector exposes them), one series per job.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, stat, timeseries
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync

from config.monitoring import PROMETHEUS_JOB
from dashboards.panels import default_stat, default_timeseries, matcher, query, rate

UID = "mlops-platform"
TITLE = "Platform"
PROMETHEUS = matcher("job", "=", PROMETHEUS_JOB)


def targets_up() -> stat.Panel:
    return (
        default_stat(
            "Scrape targets up", "1 when Prometheus scraped the target successfully (alert ApiDown).", "none"
        )
        .with_target(query("up", "{{job}} {{instance}}", instant=True))
        .span(12)
    )


def alerts_firing() -> stat.Panel:
    return (
        default_stat("Alerts firing", "Alerts in state firing (see Prometheus /alerts for details).", "none")
        .with_target(query('count(ALERTS{alertstate="firing"}) or vector(0)', "firing", instant=True))
        .span(6)
    )


def rule_evaluation_failures() -> stat.Panel:
    return (
        default_stat("Rule evaluation failures", "Failed rule evaluations per second (should be 0).", "short")
        .with_target(
            query(f"sum({rate('prometheus_rule_evaluation_failures_total', PROMETHEUS)})", "failures")
        )
        .span(6)
    )


def scrape_duration() -> timeseries.Panel:
    return (
        default_timeseries("Scrape duration", "Time Prometheus needs to scrape each target.", "s")
        .with_target(query("scrape_duration_seconds", "{{job}} {{instance}}"))
        .span(12)
    )


def samples_scraped() -> timeseries.Panel:
    return (
        default_timeseries(
            "Samples per scrape", "Samples each target exposes (a jump means new label values).", "short"
        )
        .with_target(query("scrape_samples_scraped", "{{job}} {{instance}}"))
        .span(12)
    )


def process_cpu() -> timeseries.Panel:
    return (
        default_timeseries("Process CPU", "CPU seconds used per second (1 = one core), per job.", "short")
        .with_target(query(f"sum by (job) ({rate('process_cpu_seconds_total')})", "{{job}}"))
        .span(8)
    )


def process_memory() -> timeseries.Panel:
    return (
        default_timeseries("Process resident memory", "Resident memory of each target's process.", "bytes")
        .with_target(query("sum by (job) (process_resident_memory_bytes)", "{{job}}"))
        .span(8)
    )


def process_open_fds() -> timeseries.Panel:
    return (
        default_timeseries(
            "Open file descriptors", "Open file descriptors as a share of the process limit.", "percentunit"
        )
        .with_target(query("max by (job) (process_open_fds / process_max_fds)", "{{job}}"))
        .span(8)
    )


def tsdb_head_series() -> timeseries.Panel:
    return (
        default_timeseries(
            "Prometheus series in memory", "Active series in the TSDB head (label cardinality).", "short"
        )
        .with_target(query(f"prometheus_tsdb_head_series{{{PROMETHEUS}}}", "head series"))
        .span(12)
    )


def tsdb_storage() -> timeseries.Panel:
    return (
        default_timeseries("Prometheus samples ingested", "Samples appended to the TSDB per second.", "short")
        .with_target(
            query(f"sum({rate('prometheus_tsdb_head_samples_appended_total', PROMETHEUS)})", "samples/s")
        )
        .span(12)
    )


def platform_dashboard() -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(TITLE)
        .uid(UID)
        .tags(["mlops-platform", "prometheus", "generated"])
        .description("Scrape targets, Prometheus health and process resources of the stack.")
        .readonly()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .with_row(dashboard.Row("Targets and alerting"))
        .with_panel(targets_up())
        .with_panel(alerts_firing())
        .with_panel(rule_evaluation_failures())
        .with_panel(scrape_duration())
        .with_panel(samples_scraped())
        .with_row(dashboard.Row("Processes"))
        .with_panel(process_cpu())
        .with_panel(process_memory())
        .with_panel(process_open_fds())
        .with_row(dashboard.Row("Prometheus storage"))
        .with_panel(tsdb_head_series())
        .with_panel(tsdb_storage())
    )
