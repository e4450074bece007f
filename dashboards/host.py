"""The "Host" dashboard: the VM under the stack: disk, memory, CPU, container restarts, backups.

Everything comes from node-exporter (job `node-exporter`): the kernel's view of the host, plus two
series of its textfile collector that the host writes itself: the last successful backup's time
and each stack container's Docker restart count. The data disk's filesystem carries the label
`volume="data"` (set by the scrape config), the one the DataVolumeAlmostFull alert watches.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, stat, timeseries
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync

from config.monitoring import NODE_EXPORTER_JOB
from dashboards.panels import default_stat, default_timeseries, matcher, query, rate

UID = "mlops-host"
TITLE = "Host"
HOST = matcher("job", "=", NODE_EXPORTER_JOB)
DATA_VOLUME = f"{HOST},{matcher('volume', '=', 'data')}"
# Real filesystems only: not the container runtime's overlays or memory-backed mounts.
REAL_FILESYSTEMS = f"{HOST},{matcher('fstype', '!~', 'tmpfs|overlay|squashfs|nsfs')}"


def _used(selector: str) -> str:
    return f"1 - node_filesystem_avail_bytes{{{selector}}} / node_filesystem_size_bytes{{{selector}}}"


def data_volume_used() -> stat.Panel:
    return (
        default_stat(
            "Data volume used",
            "Share of the data disk in use (MLflow's store, Docker's data root); alert at 85 %.",
            "percentunit",
        )
        .with_target(query(f"max({_used(DATA_VOLUME)})", "used", instant=True))
        .span(8)
    )


def backup_age() -> stat.Panel:
    return (
        default_stat(
            "Time since the last successful backup",
            "Written by the backup job after each success; alert BackupTooOld after 26 h.",
            "s",
        )
        .with_target(
            query(f"time() - max(mlops_backup_last_success_timestamp_seconds{{{HOST}}})", "age", instant=True)
        )
        .span(8)
    )


def restarts_last_hour() -> stat.Panel:
    return (
        default_stat(
            "Container restarts (1 h)",
            "Docker restarts of the stack's containers in the last hour (alert ContainerRestarting).",
            "none",
        )
        .with_target(
            query(f"sum(increase(mlops_container_restarts_total{{{HOST}}}[1h]))", "restarts", instant=True)
        )
        .span(8)
    )


def filesystem_used() -> timeseries.Panel:
    return (
        default_timeseries(
            "Filesystem used", "Share in use of each real filesystem, by mount point.", "percentunit"
        )
        .with_target(query(_used(REAL_FILESYSTEMS), "{{mountpoint}}"))
        .span(12)
    )


def disk_io() -> timeseries.Panel:
    return (
        default_timeseries(
            "Disk busy", "Share of time each disk was busy with I/O (1 = saturated).", "percentunit"
        )
        .with_target(query(rate("node_disk_io_time_seconds_total", HOST), "{{device}}"))
        .span(12)
    )


def cpu_busy() -> timeseries.Panel:
    idle = rate("node_cpu_seconds_total", HOST, matcher("mode", "=", "idle"))
    return (
        default_timeseries("CPU busy", "Share of CPU time not idle, over all cores.", "percentunit")
        .with_target(query(f"1 - avg by (instance) ({idle})", "{{instance}}"))
        .span(8)
    )


def memory_available() -> timeseries.Panel:
    return (
        default_timeseries(
            "Memory available",
            "Share of memory the kernel can give without swapping (alert HostMemoryPressure under 10 %).",
            "percentunit",
        )
        .with_target(
            query(
                f"node_memory_MemAvailable_bytes{{{HOST}}} / node_memory_MemTotal_bytes{{{HOST}}}",
                "{{instance}}",
            )
        )
        .span(8)
    )


def major_page_faults() -> timeseries.Panel:
    return (
        default_timeseries(
            "Major page faults",
            "Pages read back from disk per second: sustained high values mean thrashing (alert over 500/s).",
            "short",
        )
        .with_target(query(rate("node_vmstat_pgmajfault", HOST), "{{instance}}"))
        .span(8)
    )


def container_restarts() -> timeseries.Panel:
    return (
        default_timeseries(
            "Container restarts (15 min)", "Docker restarts of each stack container over 15 minutes.", "none"
        )
        .with_target(query(f"increase(mlops_container_restarts_total{{{HOST}}}[15m])", "{{container}}"))
        .span(12)
    )


def network_traffic() -> timeseries.Panel:
    devices = matcher("device", "!~", "lo|veth.*|docker.*|br-.*")
    return (
        default_timeseries(
            "Network traffic", "Bytes per second received and sent by the host's interfaces.", "Bps"
        )
        .with_target(query(rate("node_network_receive_bytes_total", HOST, devices), "{{device}} in"))
        .with_target(query(rate("node_network_transmit_bytes_total", HOST, devices), "{{device}} out", "B"))
        .span(12)
    )


def host_dashboard() -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(TITLE)
        .uid(UID)
        .tags(["mlops-platform", "node-exporter", "generated"])
        .description("The VM under the stack: disk, memory, CPU, container restarts and backups.")
        .readonly()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_row(dashboard.Row("At a glance"))
        .with_panel(data_volume_used())
        .with_panel(backup_age())
        .with_panel(restarts_last_hour())
        .with_row(dashboard.Row("Disk"))
        .with_panel(filesystem_used())
        .with_panel(disk_io())
        .with_row(dashboard.Row("CPU and memory"))
        .with_panel(cpu_busy())
        .with_panel(memory_available())
        .with_panel(major_page_faults())
        .with_row(dashboard.Row("Containers and network"))
        .with_panel(container_restarts())
        .with_panel(network_traffic())
    )
