"""The container stack's services: names, ports, exposure and pinned images.

Everything that needs a port or a service name - the GCP firewall, the compose
file, Prometheus scrape targets, the Grafana datasource - derives it from here,
so they cannot disagree (tests/unit prove that they agree).
"""

from __future__ import annotations

from enum import StrEnum
from importlib.metadata import version

from pydantic import BaseModel, ConfigDict, Field


class Exposure(StrEnum):
    """Who may reach a service from outside the VM. No service's own port is ever opened: the public
    reach a service only through the edge proxy (TLS on 443, config/edge.py)."""

    # Served through the edge to the configured public source ranges; its own port is not published.
    PUBLIC = "public"
    # Through the edge only when the stack config lists it in `public_services`; bound to 127.0.0.1
    # on the VM otherwise (reach it over an SSH tunnel).
    OPTIONAL_PUBLIC = "optional-public"
    # Never through the edge; bound to 127.0.0.1 on the VM; reach it over an SSH tunnel.
    INTERNAL = "internal"


class Service(BaseModel):
    """One container of the stack."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Compose service name, also its DNS name on the stack network.")
    port: int = Field(ge=1, le=65535, description="Port the service listens on (container and host).")
    exposure: Exposure
    image: str = Field(description="Pinned image reference; never `latest`.")
    health_path: str = Field(description="HTTP path that answers 200 when the service is healthy.")
    uid: int = Field(ge=1, description="Numeric user (and group) the container runs as; never root.")
    description: str


class ServiceCatalog(BaseModel):
    """The six services of the stack, addressable by attribute."""

    model_config = ConfigDict(frozen=True)

    api: Service
    mlflow: Service
    prometheus: Service
    grafana: Service
    alertmanager: Service
    node_exporter: Service

    def all(self) -> tuple[Service, ...]:
        return (self.api, self.mlflow, self.prometheus, self.grafana, self.alertmanager, self.node_exporter)

    def by_name(self, name: str) -> Service:
        for service in self.all():
            if service.name == name:
                return service
        known = ", ".join(s.name for s in self.all())
        raise KeyError(f"unknown service {name!r}; known services: {known}")

    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.all())

    def internal(self) -> tuple[Service, ...]:
        return tuple(s for s in self.all() if s.exposure is Exposure.INTERNAL)

    def publishable(self) -> tuple[Service, ...]:
        """Services that may be opened to the public (always or when configured)."""
        return tuple(s for s in self.all() if s.exposure is not Exposure.INTERNAL)


# The project's version (pyproject.toml, read from the installed metadata) tags the images this
# repo builds, so a new release is a new tag and hosts never run a stale image under an old name.
PROJECT_VERSION = version("mlops-platform")
IMAGE_NAMESPACE = "mlops-platform"
API_IMAGE = f"{IMAGE_NAMESPACE}/api:{PROJECT_VERSION}"
# The MLflow image is tagged with the MLflow release it installs (pinned in constraints.txt; a unit
# test proves the two agree).
MLFLOW_VERSION = "3.17.2"
MLFLOW_IMAGE = f"{IMAGE_NAMESPACE}/mlflow:{MLFLOW_VERSION}"
# The one-shot trainer (compose profile, never a long-running service) reuses MLflow's user.
TRAINER_IMAGE = f"{IMAGE_NAMESPACE}/trainer:{PROJECT_VERSION}"
# The user id the repo's own images create and run as (API, MLflow, trainer).
APP_UID = 10001
# The edge proxy (config/edge.py): an image of its own, and its own unprivileged user.
EDGE_IMAGE = f"{IMAGE_NAMESPACE}/edge:{PROJECT_VERSION}"
EDGE_UID = 10002
# Grafana's release: its image tag, and the grafana-foundation-sdk build that writes the dashboards
# (the SDK publishes one build per Grafana release, generated from that release's schemas; a unit
# test checks that constraints.txt pins the build of this release). Grafana loads dashboards up to
# its own schema version: 39 for 11.3 (what that SDK build writes); newer JSON may not load.
GRAFANA_VERSION = "11.3.0"
GRAFANA_DASHBOARD_SCHEMA_VERSION = 39

SERVICES = ServiceCatalog(
    api=Service(
        name="api",
        port=8000,
        exposure=Exposure.PUBLIC,
        image=API_IMAGE,
        health_path="/ready",
        uid=APP_UID,
        description="Flask prediction API under gunicorn",
    ),
    mlflow=Service(
        name="mlflow",
        port=5000,
        exposure=Exposure.INTERNAL,
        image=MLFLOW_IMAGE,
        health_path="/health",
        uid=APP_UID,
        description="MLflow tracking server and model registry",
    ),
    prometheus=Service(
        name="prometheus",
        port=9090,
        exposure=Exposure.INTERNAL,
        image="prom/prometheus:v2.53.2",
        health_path="/-/ready",
        # The official image's `nobody`.
        uid=65534,
        description="Prometheus: scrapes the API, evaluates alert rules",
    ),
    grafana=Service(
        name="grafana",
        port=3000,
        exposure=Exposure.OPTIONAL_PUBLIC,
        image=f"grafana/grafana-oss:{GRAFANA_VERSION}",
        health_path="/api/health",
        # The official image's `grafana` user.
        uid=472,
        description="Grafana with provisioned datasource and dashboards",
    ),
    alertmanager=Service(
        name="alertmanager",
        port=9093,
        exposure=Exposure.INTERNAL,
        image="prom/alertmanager:v0.27.0",
        health_path="/-/ready",
        # The official image's `nobody`.
        uid=65534,
        description="Alertmanager: routes Prometheus' alerts to the stack's receivers",
    ),
    node_exporter=Service(
        name="node-exporter",
        port=9100,
        exposure=Exposure.INTERNAL,
        image="prom/node-exporter:v1.8.2",
        health_path="/metrics",
        # The official image's `nobody`.
        uid=65534,
        description="node-exporter: the host's disk, memory and textfile metrics",
    ),
)

# Images this repo builds (the rest are pulled by their pinned names).
OWN_IMAGE_NAMES = (API_IMAGE, MLFLOW_IMAGE, TRAINER_IMAGE, EDGE_IMAGE)
