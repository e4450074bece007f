"""Write the dashboards' JSON to dashboards/json/ (`make dashboards`).

The JSON is committed: Grafana provisioning mounts the folder, and a unit test fails when the
files differ from what this module generates. The same command regenerates the Prometheus
config and Grafana provisioning files derived from config/ (config/monitoring.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from config.monitoring import DASHBOARDS_JSON_DIR, REPO_ROOT, write_rendered_files
from dashboards.platform import platform_dashboard
from dashboards.prediction_service import prediction_service_dashboard

DASHBOARDS: tuple[Callable[[], Dashboard], ...] = (prediction_service_dashboard, platform_dashboard)


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


def main() -> None:
    DASHBOARDS_JSON_DIR.mkdir(parents=True, exist_ok=True)
    written = list(write_rendered_files())
    for path, text in rendered_dashboards().items():
        path.write_text(text, encoding="utf-8")
        written.append(path)
    for path in written:
        print(f"wrote {path.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
