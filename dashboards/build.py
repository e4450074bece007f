"""The dashboards as JSON files for dashboards/json/, one per dashboard, named by its uid.

`make generate` (stacks/generate.py) writes them; they are committed because Grafana provisioning
mounts the folder, and `make generate CHECK=1` fails when one is stale.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from config.monitoring import DASHBOARDS_JSON_DIR
from dashboards.host import host_dashboard
from dashboards.platform import platform_dashboard
from dashboards.prediction_service import prediction_service_dashboard

DASHBOARDS: tuple[Callable[[], Dashboard], ...] = (
    prediction_service_dashboard,
    platform_dashboard,
    host_dashboard,
)


def dashboard_json(builder: Dashboard) -> dict[str, Any]:
    """The dashboard model as plain JSON data, with stable panel ids (1, 2, ... in layout order)."""
    data: dict[str, Any] = json.loads(JSONEncoder().encode(builder.build()))
    for panel_id, panel in enumerate(data.get("panels", []), start=1):
        panel["id"] = panel_id
    return data


def rendered_dashboards() -> dict[Path, str]:
    """File path -> JSON text of every dashboard, named by its uid."""
    files = {}
    for make in DASHBOARDS:
        data = dashboard_json(make())
        files[DASHBOARDS_JSON_DIR / f"{data['uid']}.json"] = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return files
