"""The `/metrics` document: every worker's metrics, dead workers' archives, and their health.

Under gunicorn the metrics live in the multiprocess directory (app/serving/metric_files.py) and are
read under the directory's shared lock. `mlserve_metrics_degraded` is computed at each scrape, not
stored: it must be visible precisely when the directory cannot be written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from app.serving import metric_files, metric_values
from app.serving.metrics import NAMESPACE

METRICS_DEGRADED = f"{NAMESPACE}_metrics_degraded"


class MetricsHealth:
    """`mlserve_metrics_degraded`: 1 when the answering worker keeps its metrics in memory only,
    or when the directory would refuse a new worker's files right now (full or read-only)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def collect(self) -> Iterator[Metric]:
        degraded = metric_values.degraded_reason() is not None
        if not degraded:
            degraded = not metric_files.directory_accepts_worker(self._directory)
        yield GaugeMetricFamily(
            METRICS_DEGRADED,
            "1 when metrics cannot be written to the multiprocess directory (full or read-only): "
            "some counts are missing from /metrics; predictions are unaffected.",
            value=1.0 if degraded else 0.0,
        )


def exposition() -> bytes:
    """The Prometheus text of this process, or of every worker under gunicorn."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not configured:
        return generate_latest(REGISTRY)
    directory = Path(configured)
    registry = CollectorRegistry()
    registry.register(MetricsHealth(directory))
    if directory.is_dir():
        MultiProcessCollector(registry, configured)  # type: ignore[no-untyped-call]
    with metric_files.collection_lock(directory, exclusive=False):
        return generate_latest(registry)
