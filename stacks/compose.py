"""The container stack's compose document, derived from the service catalog in config/services.py.

`make generate` (stacks/generate.py) writes it to `deploy/compose.yml` (committed, so reviewers
see the stack). Ports, service names, images, user ids and which ports are public come only from
config/: the firewall (stacks/) and Prometheus (config/monitoring.py) derive from the same place,
so they cannot disagree.

Paths in the file are relative to the directory that holds it: on a host the stack role lays out
`compose.yml`, `config/`, `dashboards/` and `secrets/` side by side under one directory.
"""

from __future__ import annotations

from typing import Any

from config import alertmanager, edge, monitoring
from config import stack_layout as layout
from config.app_settings import (
    CHAMPION_ALIAS,
    DEFAULT_EXPERIMENT_NAME,
    DEFAULT_MODEL_NAME,
    MODEL_WATCH_SECONDS,
)
from config.services import EDGE_IMAGE, EDGE_UID, SERVICES, TRAINER_IMAGE, Exposure, Service
from stacks.host_storage import DOCKER_DATA_ROOT
from stacks.image_digests import IMAGE_VARIABLES

# The trainer logs in as its own user (EDIT on its experiment and model); the public API as its
# own read-only user. Neither is MLflow's admin.
MLFLOW_CLIENT_ENV_FILE = f"{layout.SECRETS_DIR}/{layout.MLFLOW_CLIENT_ENV_FILE}"
MLFLOW_API_CLIENT_ENV_FILE = f"{layout.SECRETS_DIR}/{layout.MLFLOW_API_CLIENT_ENV_FILE}"
# Writable scratch space on top of read-only root filesystems.
TMPFS = ["/tmp"]  # noqa: S108


def _publish(service: Service) -> list[str]:
    """Public services are not published: the edge serves them. The others bind to the host's
    loopback only, where an SSH tunnel reaches them."""
    if service.exposure is Exposure.PUBLIC:
        return []
    return [f"127.0.0.1:{service.port}:{service.port}"]


def _mlflow_ports(mlflow: Service) -> list[str]:
    """MLflow on the host's loopback (the role's checks, SSH tunnels) and, when the stack role sets
    the variable (the API scales out), also on the management VM's internal address for the API
    replicas. Unset, both entries are the same and compose publishes one."""
    bind = _variable(layout.MLFLOW_BIND_VARIABLE, "127.0.0.1")
    return [*_publish(mlflow), f"{bind}:{mlflow.port}:{mlflow.port}"]


def _variable(name: str, default: str = "") -> str:
    """A value compose reads from the stack's `.env`."""
    return f"${{{name}:-{default}}}"


def _own_image(name: str) -> str:
    """An image this repo builds: its `.env` variable (the released image by digest, with registry
    delivery), else its local name (archive delivery, `make stack`). Third-party images keep their
    pinned tags."""
    return _variable(IMAGE_VARIABLES[name], name)


def _hardening(memory: str, cpus: float, pids: int) -> dict[str, Any]:
    """Settings every long-running service shares: limits, restart policy, no privilege gain."""
    return {
        "restart": "unless-stopped",
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "mem_limit": memory,
        "cpus": cpus,
        "pids_limit": pids,
        "logging": {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}},
    }


def _http_check(url: str, *, python: bool) -> list[str]:
    if python:  # images with Python but no wget/curl
        code = f"import urllib.request; urllib.request.urlopen('{url}', timeout=4)"
        return ["CMD", "python3", "-c", code]
    return ["CMD", "wget", "-q", "-O", "/dev/null", url]  # busybox and GNU wget alike


def _healthcheck(test: list[str], start_period: str) -> dict[str, Any]:
    return {"test": test, "interval": "10s", "timeout": "5s", "retries": 6, "start_period": start_period}


def _tracking_environment() -> dict[str, str]:
    mlflow = SERVICES.mlflow
    return {
        "MLOPS_TRACKING_URI": f"http://{mlflow.name}:{mlflow.port}",
        "MLOPS_MODEL_NAME": DEFAULT_MODEL_NAME,
    }


def _depends_on_mlflow() -> dict[str, Any]:
    return {SERVICES.mlflow.name: {"condition": "service_healthy"}}


# The MLflow container reads every MLflow password: the admin's, and each user's it keeps in line.
_MLFLOW_SECRETS = (
    layout.MLFLOW_ADMIN_SECRET,
    layout.MLFLOW_API_SECRET,
    layout.MLFLOW_TRAINER_SECRET,
    layout.MLFLOW_PROMOTER_SECRET,
)


def _mlflow_check(url: str) -> list[str]:
    ready = layout.MLFLOW_IDENTITIES_READY_FILE
    code = (
        f"import os, urllib.request; assert os.path.exists('{ready}'); "
        f"urllib.request.urlopen('{url}', timeout=4)"
    )
    return ["CMD", "python3", "-c", code]


def _mlflow() -> dict[str, Any]:
    mlflow = SERVICES.mlflow
    port = str(mlflow.port)
    # Host headers MLflow accepts (DNS-rebinding guard): the service name inside the stack, and
    # loopback on any port for SSH tunnels (`ssh -L 15000:127.0.0.1:5000` sends localhost:15000).
    # The replicas send the management VM's internal address (MLflow's bind variable, below).
    bind = _variable(layout.MLFLOW_BIND_VARIABLE, "127.0.0.1")
    allowed_hosts = (
        f"{mlflow.name},{mlflow.name}:{port},localhost,localhost:*,127.0.0.1,127.0.0.1:*,{bind}:{port}"
    )
    return {
        "image": _own_image(mlflow.image),
        # The image's entrypoint adds `--app-name basic-auth` and reads the admin password secret.
        "command": [
            "--host",
            "0.0.0.0",  # noqa: S104 - inside the container; the port mapping decides exposure
            "--port",
            port,
            "--backend-store-uri",
            f"sqlite:///{layout.MLFLOW_DB_PATH}",
            "--artifacts-destination",
            layout.MLFLOW_ARTIFACTS_DIR,
            "--serve-artifacts",
            "--allowed-hosts",
            allowed_hosts,
            "--workers",
            "2",
        ],
        # The GenAI job runner (huey) is not used here; under load its supervisor stopped the server.
        "environment": {
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_ADMIN_USER": layout.MLFLOW_ADMIN_USER,
            # Compose mounts each secret at /run/secrets/<name>.
            "MLFLOW_ADMIN_PASSWORD_FILE": f"/run/secrets/{layout.MLFLOW_ADMIN_SECRET}",
            "MLFLOW_API_USER": layout.MLFLOW_API_USER,
            "MLFLOW_API_PASSWORD_FILE": f"/run/secrets/{layout.MLFLOW_API_SECRET}",
            # The users the entrypoint creates through MLflow's auth API once the server is up,
            # and what the trainer's and the promoter's may edit.
            "MLFLOW_TRAINER_USER": layout.MLFLOW_TRAINER_USER,
            "MLFLOW_TRAINER_PASSWORD_FILE": f"/run/secrets/{layout.MLFLOW_TRAINER_SECRET}",
            "MLFLOW_PROMOTER_USER": layout.MLFLOW_PROMOTER_USER,
            "MLFLOW_PROMOTER_PASSWORD_FILE": f"/run/secrets/{layout.MLFLOW_PROMOTER_SECRET}",
            "MLFLOW_TRAINING_EXPERIMENT": DEFAULT_EXPERIMENT_NAME,
            "MLFLOW_MODEL_NAME": DEFAULT_MODEL_NAME,
            "MLFLOW_IDENTITIES_READY_FILE": layout.MLFLOW_IDENTITIES_READY_FILE,
        },
        "user": _user(mlflow),
        "read_only": True,
        "tmpfs": TMPFS,
        "volumes": [f"mlflow-db:{layout.MLFLOW_DB_DIR}", f"mlflow-artifacts:{layout.MLFLOW_ARTIFACTS_DIR}"],
        "secrets": list(_MLFLOW_SECRETS),
        "ports": _mlflow_ports(mlflow),
        # Healthy once the server answers AND every identity is in place (the entrypoint's file).
        "healthcheck": _healthcheck(_mlflow_check(f"http://127.0.0.1:{port}{mlflow.health_path}"), "60s"),
        **_hardening("1g", 1.0, 256),
    }


def _trainer() -> dict[str, Any]:
    return {
        "image": _own_image(TRAINER_IMAGE),
        # Run once on a fresh stack (`docker compose run --rm trainer`), never by `up`.
        "profiles": [layout.TRAINER_PROFILE],
        # The one experiment its MLflow user may edit (MLflow's entrypoint grants it by this name).
        "environment": {**_tracking_environment(), "MLOPS_EXPERIMENT_NAME": DEFAULT_EXPERIMENT_NAME},
        "env_file": [MLFLOW_CLIENT_ENV_FILE],
        "depends_on": _depends_on_mlflow(),
        "user": _user(SERVICES.mlflow),
        "read_only": True,
        "tmpfs": TMPFS,
        **_hardening("1g", 1.0, 256),
        "restart": "no",
    }


def _api() -> dict[str, Any]:
    api = SERVICES.api
    return {
        "image": _own_image(api.image),
        "environment": {
            **_tracking_environment(),
            "MLOPS_MODEL_SOURCE": "registry",
            "MLOPS_MODEL_ALIAS": CHAMPION_ALIAS,
            "MLOPS_HOST": "0.0.0.0",  # noqa: S104 - inside the container; the port mapping decides exposure
            "MLOPS_PORT": str(api.port),
            "MLOPS_WORKERS": "2",
            # The master watches the alias: `mlops-promote` reaches the API without a redeploy.
            "MLOPS_MODEL_WATCH_SECONDS": f"{MODEL_WATCH_SECONDS:g}",
            # gunicorn trusts X-Forwarded-* headers from the edge's fixed address only.
            "FORWARDED_ALLOW_IPS": edge.EDGE_ADDRESS,
        },
        "env_file": [MLFLOW_API_CLIENT_ENV_FILE],
        "depends_on": _depends_on_mlflow(),
        "read_only": True,
        "tmpfs": TMPFS,
        # The image's HEALTHCHECK probes /ready (200 only once a model is loaded).
        **_hardening("768m", 1.0, 256),
    }


def api_service() -> dict[str, Any]:
    """The API's compose service. An API replica (stacks/replica_startup.py) runs the same container
    from it: image, environment, limits and hardening have this one source."""
    return _api()


def _prometheus() -> dict[str, Any]:
    prometheus = SERVICES.prometheus
    return {
        "image": prometheus.image,
        "command": [
            f"--config.file={monitoring.PROMETHEUS_CONTAINER_CONFIG_DIR}/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time=15d",
            f"--web.listen-address=0.0.0.0:{prometheus.port}",
        ],
        "user": _user(prometheus),
        "read_only": True,
        "volumes": [
            f"./config/prometheus:{monitoring.PROMETHEUS_CONTAINER_CONFIG_DIR}:ro",
            "prometheus-data:/prometheus",
        ],
        "ports": _publish(prometheus),
        "depends_on": {SERVICES.api.name: {"condition": "service_started"}},
        "healthcheck": _healthcheck(
            _http_check(f"http://127.0.0.1:{prometheus.port}{prometheus.health_path}", python=False), "30s"
        ),
        **_hardening("512m", 0.5, 256),
    }


def _alertmanager() -> dict[str, Any]:
    service = SERVICES.alertmanager
    return {
        "image": service.image,
        # Flags only: the official image's entrypoint is the binary, as is the test image's.
        "command": [
            f"--config.file={alertmanager.ALERTMANAGER_CONTAINER_CONFIG_FILE}",
            f"--storage.path={alertmanager.ALERTMANAGER_CONTAINER_DATA_DIR}",
            f"--web.listen-address=0.0.0.0:{service.port}",
            # One instance: no cluster gossip port.
            "--cluster.listen-address=",
        ],
        "user": _user(service),
        "read_only": True,
        "tmpfs": TMPFS,
        # The config holds the receivers' secrets: a 0600 file the stack role writes (config/alertmanager.py).
        "secrets": [alertmanager.ALERTMANAGER_CONFIG_SECRET],
        "volumes": [f"alertmanager-data:{alertmanager.ALERTMANAGER_CONTAINER_DATA_DIR}"],
        "ports": _publish(service),
        "healthcheck": _healthcheck(
            _http_check(f"http://127.0.0.1:{service.port}{service.health_path}", python=False), "30s"
        ),
        **_hardening("128m", 0.25, 128),
    }


_NODE_EXPORTER_MOUNT_EXCLUDE = (
    f"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+"
    f"|{DOCKER_DATA_ROOT.lstrip('/')}/.+)($|/)"
)


def _node_exporter() -> dict[str, Any]:
    service = SERVICES.node_exporter
    root = layout.NODE_EXPORTER_HOST_ROOT
    return {
        "image": service.image,
        "command": [
            # Reads the host's filesystems, and reports their mount points as the host names them.
            f"--path.rootfs={root}",
            f"--collector.textfile.directory={root}{layout.NODE_EXPORTER_TEXTFILE_DIR}",
            # Upstream's default plus Docker's data root, stated: Debian's build also leaves out
            # /mnt, where the data disk is mounted.
            f"--collector.filesystem.mount-points-exclude={_NODE_EXPORTER_MOUNT_EXCLUDE}",
            f"--web.listen-address=0.0.0.0:{service.port}",
        ],
        "user": _user(service),
        "read_only": True,
        # The host's process table: /proc/1/mounts is then the host's mount table.
        "pid": "host",
        # The host's filesystems as mounted when the container starts (the data disk is mounted
        # before Docker starts). No `rslave`: Docker refuses it where / is a private mount.
        "volumes": [f"/:{root}:ro"],
        "ports": _publish(service),
        "healthcheck": _healthcheck(
            _http_check(f"http://127.0.0.1:{service.port}{service.health_path}", python=False), "30s"
        ),
        **_hardening("128m", 0.25, 64),
    }


def _grafana() -> dict[str, Any]:
    grafana = SERVICES.grafana
    return {
        "image": grafana.image,
        "profiles": [layout.GRAFANA_PROFILE],
        # Group 0, as the official image expects for its writable paths.
        "user": _user(grafana, group=0),
        "read_only": True,
        "tmpfs": TMPFS,
        # Server settings (anonymous access and sign-up off, admin user) live in grafana.ini; the
        # environment only points Grafana at its files and at the admin password secret.
        "environment": {
            **monitoring.GRAFANA_ENVIRONMENT,
            # Served by the edge under its sub-path when public (an SSH tunnel reaches it too).
            "GF_SERVER_ROOT_URL": f"https://{_server_name()}{edge.GRAFANA_PATH}",
            "GF_SERVER_SERVE_FROM_SUB_PATH": "true",
        },
        "secrets": [layout.GRAFANA_ADMIN_SECRET],
        "volumes": [
            "grafana-data:/var/lib/grafana",
            f"./config/grafana/grafana.ini:{monitoring.GRAFANA_CONTAINER_INI_FILE}:ro",
            f"./config/grafana/provisioning:{monitoring.GRAFANA_CONTAINER_PROVISIONING_DIR}:ro",
            # The dashboard provider (config/grafana/provisioning/dashboards) reads this folder.
            f"./dashboards:{monitoring.GRAFANA_CONTAINER_DASHBOARDS_DIR}:ro",
        ],
        "ports": _publish(grafana),
        "depends_on": {SERVICES.prometheus.name: {"condition": "service_healthy"}},
        "healthcheck": _healthcheck(
            _http_check(f"http://127.0.0.1:{grafana.port}{grafana.health_path}", python=False), "60s"
        ),
        **_hardening("512m", 0.5, 256),
    }


def _user(service: Service, group: int | None = None) -> str:
    return f"{service.uid}:{service.uid if group is None else group}"


def _server_name() -> str:
    return _variable(layout.EDGE_SERVER_NAME_VARIABLE, "localhost")


def _edge() -> dict[str, Any]:
    bind = _variable(layout.EDGE_BIND_VARIABLE, "0.0.0.0")  # noqa: S104 - the public entry point
    health = f"http://127.0.0.1:{edge.HTTP_PORT}{edge.HEALTH_PATH}"
    return {
        "image": _own_image(EDGE_IMAGE),
        "environment": {
            "EDGE_SERVER_NAME": _server_name(),
            "EDGE_DOMAIN": _variable(layout.EDGE_DOMAIN_VARIABLE),
            "EDGE_ACME_SERVER": _variable(layout.EDGE_ACME_SERVER_VARIABLE),
            "EDGE_ACME_EMAIL": _variable(layout.EDGE_ACME_EMAIL_VARIABLE),
            "EDGE_ACME_CA_FILE": edge.ACME_CA_FILE,
            "EDGE_GRAFANA": _variable(layout.EDGE_GRAFANA_VARIABLE, "0"),
        },
        "user": f"{EDGE_UID}:{EDGE_UID}",
        "read_only": True,
        # nginx's pid file and request buffers; sized for many concurrent buffered bodies.
        "tmpfs": [f"{edge.RUNTIME_DIR}:uid={EDGE_UID},gid={EDGE_UID},mode=0700,size=256m", *TMPFS],
        # Certificates, and the ACME account and webroot, survive a recreated container.
        "volumes": [
            f"edge-certs:{edge.CERT_DIR}",
            f"edge-state:{edge.STATE_DIR}",
            f"./{edge.ACME_CA_HOST_FILE}:{edge.ACME_CA_FILE}:ro",
        ],
        "ports": [
            f"{bind}:{edge.PUBLIC_HTTP_PORT}:{edge.HTTP_PORT}",
            f"{bind}:{edge.PUBLIC_HTTPS_PORT}:{edge.HTTPS_PORT}",
        ],
        "networks": {"default": {"ipv4_address": edge.EDGE_ADDRESS}},
        "depends_on": {SERVICES.api.name: {"condition": "service_started"}},
        "healthcheck": _healthcheck(_http_check(health, python=True), "10s"),
        # Graceful: finish the requests in flight.
        "stop_signal": "SIGQUIT",
        **_hardening("256m", 1.0, 256),
    }


def compose_document() -> dict[str, Any]:
    """The compose file as a dict (compose spec; Docker Compose v2)."""
    services = {
        SERVICES.mlflow.name: _mlflow(),
        layout.TRAINER_SERVICE: _trainer(),
        SERVICES.api.name: _api(),
        SERVICES.prometheus.name: _prometheus(),
        SERVICES.grafana.name: _grafana(),
        SERVICES.alertmanager.name: _alertmanager(),
        SERVICES.node_exporter.name: _node_exporter(),
        edge.SERVICE_NAME: _edge(),
    }
    return {
        "name": layout.COMPOSE_PROJECT,
        "services": services,
        "volumes": {
            name: {}
            for name in (
                "mlflow-db",
                "mlflow-artifacts",
                "prometheus-data",
                "grafana-data",
                "alertmanager-data",
                "edge-certs",
                "edge-state",
            )
        },
        # A fixed subnet, so the edge has a fixed address that gunicorn can trust.
        "networks": {"default": {"ipam": {"config": [{"subnet": edge.STACK_SUBNET}]}}},
        "secrets": {
            name: {"file": f"./{layout.SECRETS_DIR}/{name}"}
            for name in (
                *_MLFLOW_SECRETS,
                layout.GRAFANA_ADMIN_SECRET,
                alertmanager.ALERTMANAGER_CONFIG_SECRET,
            )
        },
    }
