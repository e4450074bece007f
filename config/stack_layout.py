"""Where the container stack lives on a host, and the names its files and switches go by.

The compose file (stacks/compose.py), the stack role (playbooks/roles/stack, through its generated
defaults) and the local stack (`make stack`) all take these from here.
"""

from __future__ import annotations

# Compose project name: container, network and volume names start with it.
COMPOSE_PROJECT = "mlops"
# The stack's root directory on a VM: compose.yml, config/, dashboards/ and secrets/ side by side.
HOST_STACK_ROOT = "/opt/mlops"
# The same layout for `make stack` on a developer's machine, relative to the repo root.
LOCAL_STACK_ROOT = "var/stack"

# Files under the stack root's secrets/ folder (names, not values): mounted as compose secrets, or
# read as an env file by MLflow's clients. The stack role writes them as mode-0600 files.
SECRETS_DIR = "secrets"
MLFLOW_ADMIN_SECRET = "mlflow_admin_password"  # noqa: S105 - a file name
GRAFANA_ADMIN_SECRET = "grafana_admin_password"  # noqa: S105 - a file name
MLFLOW_CLIENT_ENV_FILE = "mlflow-client.env"
# MLflow's basic-auth administrator, whose password is the MLflow admin secret.
MLFLOW_ADMIN_USER = "admin"
# The API's own MLflow user: not an admin and granted nothing, so it only reads (MLflow's default
# permission is READ). MLflow's entrypoint keeps it in line with its secret; the API reads its
# client env file.
MLFLOW_API_USER = "api"
MLFLOW_API_SECRET = "mlflow_api_password"  # noqa: S105 - a file name
MLFLOW_API_CLIENT_ENV_FILE = "mlflow-api-client.env"
# The trainer's MLflow user: EDIT on its experiment and registered model only (the MLflow image's
# entrypoint creates both as the admin, then the user through MLflow's auth API). Its client env
# file is MLFLOW_CLIENT_ENV_FILE above.
MLFLOW_TRAINER_USER = "trainer"
MLFLOW_TRAINER_SECRET = "mlflow_trainer_password"  # noqa: S105 - a file name
# The user `mlops-promote` logs in as: EDIT on the registered model only (set the serving alias and
# version tags; no runs). Its password is a secret Pulumi stack output for whoever promotes.
MLFLOW_PROMOTER_USER = "promoter"
MLFLOW_PROMOTER_SECRET = "mlflow_promoter_password"  # noqa: S105 - a file name
# Inside the MLflow container: the entrypoint creates this file once every identity is in place,
# and the healthcheck requires it, so the API and the trainer never start before their users.
MLFLOW_IDENTITIES_READY_FILE = "/tmp/mlflow-identities.ready"  # noqa: S108 - the container's tmpfs

# Optional services are compose profiles; the stack role lists the enabled ones in `.env`.
GRAFANA_PROFILE = "grafana"
TRAINER_PROFILE = "train"
TRAINER_SERVICE = "trainer"
# Variables of the stack's `.env` (written by the stack role) that the compose file reads:
# the name clients use for the edge (the VM's address, or `localhost` for `make stack`), whether
# the edge serves Grafana, and on which host address the edge's ports are published.
EDGE_SERVER_NAME_VARIABLE = "EDGE_SERVER_NAME"
EDGE_GRAFANA_VARIABLE = "EDGE_GRAFANA"
EDGE_BIND_VARIABLE = "EDGE_BIND_ADDRESS"
# With a domain, the edge's certificate comes from this ACME server (empty: self-signed only).
EDGE_DOMAIN_VARIABLE = "EDGE_DOMAIN"
EDGE_ACME_SERVER_VARIABLE = "EDGE_ACME_SERVER"
EDGE_ACME_EMAIL_VARIABLE = "EDGE_ACME_EMAIL"

# MLflow's store inside its container: the compose file's volumes and server arguments, and the
# backup that snapshots it and the restore that replaces it.
MLFLOW_DB_DIR = "/mlflow/db"
MLFLOW_DB_PATH = f"{MLFLOW_DB_DIR}/mlflow.db"
MLFLOW_ARTIFACTS_DIR = "/mlflow/artifacts"

# The CPU platform of the VM's images: the stack's machine types are x86-64, so images built on an
# arm64 laptop must be built for it (BuildKit's `--platform`), or the VM could not run them.
HOST_PLATFORM = "linux/amd64"

# The VM's data disk (a separate persistent disk that outlives the VM): GCE exposes an attached
# disk as /dev/disk/by-id/google-<device name>. The docker role formats it once, mounts it here
# through fstab, and puts Docker's data root (every volume of the stack) on it.
DATA_DISK_DEVICE_NAME = "mlops-data"
DATA_DISK_DEVICE_PATH = f"/dev/disk/by-id/google-{DATA_DISK_DEVICE_NAME}"
DATA_DISK_MOUNT_POINT = "/mnt/mlops-data"

# Variables of the stack's `.env` that name the stack's own images: the compose file reads each
# with today's local name as its default; with registry delivery from CI the stack role sets them
# to the released image by digest (REGISTRY/NAME@sha256:...), so a rebuilt tag never goes stale.
API_IMAGE_VARIABLE = "API_IMAGE"
MLFLOW_IMAGE_VARIABLE = "MLFLOW_IMAGE"
TRAINER_IMAGE_VARIABLE = "TRAINER_IMAGE"
EDGE_IMAGE_VARIABLE = "EDGE_IMAGE"
# Artifact Registry's Docker hosts are LOCATION-docker.pkg.dev; the VM logs Docker in to them with
# its service account's token, as this user name (Artifact Registry's fixed name for a token).
ARTIFACT_REGISTRY_HOST_SUFFIX = "-docker.pkg.dev"
ARTIFACT_REGISTRY_TOKEN_USER = "oauth2accesstoken"  # noqa: S105 - a user name
# Where a GCE VM gets its service account's short-lived access token (header Metadata-Flavor: Google).
_METADATA_SERVICE_ACCOUNTS = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts"
METADATA_TOKEN_URL = f"{_METADATA_SERVICE_ACCOUNTS}/default/token"

# MLflow's published address on the host besides loopback (a `.env` variable the stack role sets):
# unset, MLflow is on 127.0.0.1 only; when the API scales out, the management VM's internal address,
# where the API replicas reach it (the firewall admits only them to its port).
MLFLOW_BIND_VARIABLE = "MLFLOW_BIND_ADDRESS"
# Secret Manager's REST API: an API replica reads its MLflow password from it at boot
# (GET {SECRET_MANAGER_URL}/{version name}:access with its service account's token).
SECRET_MANAGER_URL = "https://secretmanager.googleapis.com/v1"  # noqa: S105 - a URL
# The variables a replica's startup script reads in place of the two GCP endpoints above, when set
# (the end-to-end test's stand-ins; unset on GCP, where the defaults are the real endpoints).
METADATA_TOKEN_URL_VARIABLE = "MLOPS_METADATA_TOKEN_URL"  # noqa: S105 - a name
SECRET_MANAGER_URL_VARIABLE = "MLOPS_SECRET_MANAGER_URL"  # noqa: S105 - a name

# node-exporter's textfile collector reads `*.prom` files from this host folder (through its
# read-only view of the host's root at NODE_EXPORTER_HOST_ROOT): the backup job writes its last
# success time there, and the stack role's restart-count timer each container's restart count.
NODE_EXPORTER_TEXTFILE_DIR = "/var/lib/mlops/textfile"
NODE_EXPORTER_HOST_ROOT = "/host"
BACKUP_METRIC_FILE = "mlops_backup.prom"
CONTAINER_RESTARTS_METRIC_FILE = "mlops_container_restarts.prom"
