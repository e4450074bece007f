"""Prometheus annotation queries: event markers drawn over every time series panel of a dashboard.

The SDK's AnnotationQuery model carries only `expr`; Grafana's Prometheus datasource also reads
`step` (the query resolution) and `titleFormat` (a legend-style template over the series' labels),
so this module's model adds them to the JSON.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as models

from dashboards.panels import datasource


class _PrometheusAnnotationQuery(models.AnnotationQuery):
    def __init__(self, *, title_format: str, step: str, **fields: Any) -> None:
        super().__init__(**fields)
        self.title_format = title_format
        self.step = step

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), "titleFormat": self.title_format, "step": self.step}


class PrometheusAnnotation(cogbuilder.Builder[models.AnnotationQuery]):
    """A marker wherever `expr` returns a series; `title` is templated with its labels."""

    def __init__(self, name: str, expr: str, title: str, color: str, step: str = "30s") -> None:
        self._internal = _PrometheusAnnotationQuery(
            name=name,
            datasource=datasource(),
            enable=True,
            icon_color=color,
            expr=expr,
            title_format=title,
            step=step,
        )

    def build(self) -> models.AnnotationQuery:
        return self._internal


def appeared(selector: str, by: str, within: str = "1m") -> str:
    """PromQL that returns a label value only while it is new: present now, absent `within` ago."""
    return f"count by ({by}) ({selector}) unless count by ({by}) ({selector} offset {within})"
