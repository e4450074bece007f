"""Helpers of the monitoring unit tests: promtool and the metric names the API exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from prometheus_client import Metric
from prometheus_client.metrics import MetricWrapperBase

from app.serving import metrics as app_metrics

# The suffixes Prometheus exposition adds to a metric family's name, by type.
_SERIES_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
MLSERVE_METRIC = re.compile(r"\bmlserve_[a-z0-9_]+\b")


def exported_series_names() -> set[str]:
    """Every series name the API's metrics (app/serving/metrics.py) can expose."""
    names: set[str] = set()
    for value in vars(app_metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        for family in value.describe():
            assert isinstance(family, Metric)
            names.update(family.name + suffix for suffix in _SERIES_SUFFIXES[family.type])
    return names


def mlserve_metrics_in(text: str) -> set[str]:
    return set(MLSERVE_METRIC.findall(text))


def markdown_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a document's headings: lowercase, punctuation dropped, spaces -> `-`."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def promtool_path() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: run `make system-deps` (Debian package prometheus)"
    return path


def run_promtool(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )
