"""Prometheus and the API group (apiReplicas > 1): find every replica, and know how many must be up.

The replicas come and go with the autoscaler and autohealing, so Prometheus discovers them through
the Compute Engine API (`gce_sd_configs`, one per zone of the regional group; the management VM's
service account holds `roles/compute.viewer` for it) and keeps the instances that carry the
replicas' network tag. They carry the API's own job label, so every API rule and dashboard covers
them (per instance, and summed), and a `zone` label; `instance` becomes the VM's name.

How many healthy replicas are enough is per stack (`apiMinReplicas`): the stack's Prometheus gets a
recording rule holding that number, and the `ApiReplicasBelowMinimum` alert (rules/api.yml) compares
the healthy replicas against it. Without a group the number does not exist and the alert is silent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from config.services import SERVICES

# The network tag every API replica carries: the firewall rules and this discovery select it.
REPLICA_TAG = "mlops-api-replica"
# The recording rule that holds a stack's minimum of healthy replicas.
MIN_REPLICAS_RECORD = "mlops:api_min_replicas"
# The rule file the stack role writes next to the committed rules when the stack scales out.
MIN_REPLICAS_RULE_FILE = "api_group.yml"
# Compute Engine is asked for the group's instances this often (API quota is per project and minute).
DISCOVERY_REFRESH = "60s"


def replica_scrape_config(job: str, project: str, zones: Sequence[str]) -> dict[str, Any]:
    """The scrape job of the group's replicas: discovered per zone, kept by tag, relabelled."""
    if not zones:
        raise ValueError("the API group spans at least one zone")
    return {
        # Job names are unique per config: the replicas' own, relabelled to the API's job below.
        "job_name": f"{job}-replicas",
        "metrics_path": "/metrics",
        "gce_sd_configs": [
            {
                "project": project,
                "zone": zone,
                "port": SERVICES.api.port,
                # Compute Engine's list filter: only running VMs answer; a stopping or provisioning
                # one would only page as ApiDown.
                "filter": 'status = "RUNNING"',
                "refresh_interval": DISCOVERY_REFRESH,
            }
            for zone in zones
        ],
        "relabel_configs": [
            # __meta_gce_tags is the tag list wrapped in the separator (",a,b,"): keep the replicas.
            {"source_labels": ["__meta_gce_tags"], "regex": f".*,{REPLICA_TAG},.*", "action": "keep"},
            # __meta_gce_zone is the zone's URL: its last path segment is the zone's name.
            {"source_labels": ["__meta_gce_zone"], "regex": ".*/([^/]+)", "target_label": "zone"},
            {"source_labels": ["__meta_gce_instance_name"], "target_label": "instance"},
            {"target_label": "job", "replacement": job},
        ],
    }


def min_replicas_rules(minimum: int) -> dict[str, Any]:
    """The stack's rule file that records its minimum of healthy replicas."""
    if minimum < 1:
        raise ValueError(f"a group keeps at least one replica, got {minimum}")
    return {
        "groups": [
            {
                "name": "api-group-size",
                "rules": [{"record": MIN_REPLICAS_RECORD, "expr": f"vector({minimum})"}],
            }
        ]
    }
