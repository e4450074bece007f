"""Every panel's PromQL with the template variables substituted, for running it outside Grafana.

The live test (tests/integration/test_monitoring_live.py) sends each of these queries to a real
Prometheus; unit tests use `variables_in` to prove each variable a query uses is defined.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.monitoring import DASHBOARDS_JSON_DIR

# Variables Grafana defines itself; the caller still chooses their values.
GRAFANA_BUILTINS = frozenset({"__rate_interval", "__interval", "__range"})
# $name, ${name}, ${name:format} and the deprecated [[name]].
_VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?::\w+)?\}|\$(?P<plain>\w+)|\[\[(?P<legacy>\w+)\]\]")


@dataclass(frozen=True)
class PanelQuery:
    dashboard_uid: str
    panel_id: int
    panel_title: str
    ref_id: str
    expr: str
    instant: bool


def variables_in(expr: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in _VARIABLE.finditer(expr)}


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace every variable of `expr` by its value; a variable without a value is an error."""
    missing = variables_in(expr) - set(values)
    if missing:
        raise KeyError(f"no value for variables {sorted(missing)} in {expr!r}")
    return _VARIABLE.sub(lambda m: values[next(g for g in m.groups() if g)], expr)


def load_dashboards(folder: Path = DASHBOARDS_JSON_DIR) -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(dashboard: Mapping[str, Any], values: Mapping[str, str] | None = None) -> list[PanelQuery]:
    """Every PromQL target of the dashboard; with `values`, variables substituted."""
    queries = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if expr is None:
                continue
            queries.append(
                PanelQuery(
                    dashboard_uid=dashboard["uid"],
                    panel_id=panel["id"],
                    panel_title=panel["title"],
                    ref_id=target["refId"],
                    expr=expr if values is None else substitute(expr, values),
                    instant=bool(target.get("instant")) and not target.get("range"),
                )
            )
    return queries
