"""The startup script of an API replica (apiReplicas > 1): Docker, the API image by digest, MLflow.

GCE runs an instance's `startup-script` metadata as root on every boot (google-startup-scripts),
so the script is idempotent. It:
- installs Docker from Debian (`docker.io`, and `docker-cli` on Debian 13), curl and jq when
  missing, and starts Docker;
- gets the service account's access token from the metadata server and, only when the image is not
  on the VM yet, logs Docker in to Artifact Registry with it (`oauth2accesstoken`, password on
  stdin), pulls the image by digest and logs out again (no credential stays in Docker's config);
- reads the API user's MLflow password from Secret Manager's REST API with the same token;
- runs the API image by digest as the compose service runs it (stacks/compose.py `api_service`:
  the same environment, read-only root, tmpfs, capabilities, limits, restart policy, log rotation),
  published on the API port for the load balancer and its health checks. Three differences: MLflow
  is the management VM's internal address, gunicorn trusts X-Forwarded-* from Google's front ends
  (the load balancer's proxies) instead of the edge, and the CPU limit is the whole VM's.

Secrets: the token and the password live in shell variables only. The token reaches curl as a
header on stdin and Docker as the password on stdin; the password reaches `docker run` as an
environment variable of that one command (`-e NAME` without a value copies it from there), so
neither is on any command line, in the script's output or in a file the script writes. Docker
keeps a container's environment in its own state (root only), as for the compose service's env file.

A second boot finds the container by name: when its label holds the same spec hash (image, options,
MLflow's address, the password's secret version), Docker's restart policy has it running already
and the script only makes sure it is started; otherwise it replaces it. Never two containers.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from config import stack_layout as layout
from config.api_group import GOOGLE_FRONT_END_RANGES
from config.services import SERVICES
from stacks.api_scale_out import ReplicaStartup
from stacks.compose import api_service

CONTAINER_NAME = "mlops-api"
SPEC_LABEL = "mlops.replica-spec"
# The commands the script needs and the Debian package of each, installed in this order when the
# command is missing (GCE's Debian images have no Docker, maybe no jq). Debian 13's docker.io has the
# daemon only, its client is docker-cli; Debian 12's docker.io has both (and no docker-cli package),
# so the client's package is only asked for when docker.io did not bring the command.
PACKAGES = {"dockerd": "docker.io", "docker": "docker-cli", "curl": "curl", "jq": "jq"}
# Compose keys that have no meaning for a single `docker run` on a replica: the image is the
# digest, the MLflow login comes from Secret Manager, and MLflow is on another VM.
_REPLACED_KEYS = frozenset({"image", "env_file", "depends_on", "environment"})


class ReplicaSpecError(ValueError):
    """The API's compose service has a setting the replica's `docker run` does not translate."""


def _list_flags(flag: str, values: Sequence[Any]) -> list[str]:
    return [part for value in values for part in (flag, str(value))]


def _logging_flags(logging: Mapping[str, Any]) -> list[str]:
    options = logging.get("options", {})
    return [
        "--log-driver",
        str(logging["driver"]),
        *_list_flags("--log-opt", [f"{k}={v}" for k, v in options.items()]),
    ]


def run_options(service: Mapping[str, Any]) -> list[str]:
    """`docker run` options for a compose service's settings; refuses any it cannot translate, so
    a setting added to the compose service is never silently dropped on the replicas."""
    translate: dict[str, Callable[[Any], list[str]]] = {
        "read_only": lambda value: ["--read-only"] if value else [],
        "tmpfs": lambda value: _list_flags("--tmpfs", value),
        "restart": lambda value: ["--restart", str(value)],
        "security_opt": lambda value: _list_flags("--security-opt", value),
        "cap_drop": lambda value: _list_flags("--cap-drop", value),
        "cap_add": lambda value: _list_flags("--cap-add", value),
        "mem_limit": lambda value: ["--memory", str(value)],
        # The replica's own CPU count instead (the script adds it; see container_arguments).
        "cpus": lambda value: [],
        "pids_limit": lambda value: ["--pids-limit", str(value)],
        "user": lambda value: ["--user", str(value)],
        "logging": _logging_flags,
        "stop_signal": lambda value: ["--stop-signal", str(value)],
    }
    unknown = sorted(set(service) - set(translate) - _REPLACED_KEYS)
    if unknown:
        raise ReplicaSpecError(f"the API's compose service sets {unknown}: translate them for the replicas")
    return [flag for key, value in service.items() if key in translate for flag in translate[key](value)]


def replica_environment(service: Mapping[str, Any], mlflow_url: str) -> dict[str, str]:
    """The compose service's environment, with MLflow on the management VM and the load balancer's
    proxies (Google Front Ends) as the only senders of X-Forwarded-* headers gunicorn trusts."""
    environment = {str(key): str(value) for key, value in service["environment"].items()}
    environment["MLOPS_TRACKING_URI"] = mlflow_url
    environment["FORWARDED_ALLOW_IPS"] = ",".join(GOOGLE_FRONT_END_RANGES)
    environment["MLFLOW_TRACKING_USERNAME"] = layout.MLFLOW_API_USER
    return environment


def container_arguments(startup: ReplicaStartup) -> list[str]:
    """Everything `docker run` gets after `--name` and the spec label, the image last. The password
    is passed by name only (`-e MLFLOW_TRACKING_PASSWORD`): its value comes from the environment."""
    if "@sha256:" not in startup.api_image:
        raise ValueError(
            f"a replica runs the API image by digest (REGISTRY/NAME@sha256:...), not {startup.api_image!r}"
        )
    service = api_service()
    port = SERVICES.api.port
    environment = replica_environment(service, startup.mlflow_url)
    return [
        *run_options(service),
        # The API is a replica's only workload: its CPU limit is the whole VM (the script adds
        # `--cpus $(nproc)`), or the autoscaler's CPU target could never be reached (the compose
        # service's 1 CPU is half of an e2-small).
        # Every interface: the VM has only its internal address; the firewall admits Google's ranges.
        "--publish",
        f"{port}:{port}",
        *_list_flags("--env", [f"{key}={value}" for key, value in sorted(environment.items())]),
        "--env",
        "MLFLOW_TRACKING_PASSWORD",
        startup.api_image,
    ]


def spec_hash(startup: ReplicaStartup) -> str:
    """What the running container must match; a change replaces it (no secret value in it)."""
    spec = {"run": container_arguments(startup), "password": startup.password_secret_version}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _quoted(value: str) -> str:
    """Always single-quoted (shlex.quote leaves `a,b` bare, which shellcheck takes for a typo)."""
    return "'" + value.replace("'", "'\\''") + "'"


def _array(values: Sequence[str]) -> str:
    if len(values) <= 3:
        return "(" + " ".join(_quoted(value) for value in values) + ")"
    return "(\n" + "".join(f"  {_quoted(value)}\n" for value in values) + ")"


def startup_script(startup: ReplicaStartup) -> str:
    """The bash script of the instance template's `metadata_startup_script`."""
    if not startup.password_secret_version.startswith("projects/"):
        raise ValueError(
            "the MLflow password is a Secret Manager version name (projects/P/secrets/S/versions/V)"
        )
    values = {
        "METADATA_TOKEN_URL_VARIABLE": layout.METADATA_TOKEN_URL_VARIABLE,
        "METADATA_TOKEN_URL": shlex.quote(layout.METADATA_TOKEN_URL),
        "SECRET_MANAGER_URL_VARIABLE": layout.SECRET_MANAGER_URL_VARIABLE,
        "SECRET_MANAGER_URL": shlex.quote(layout.SECRET_MANAGER_URL),
        "API_IMAGE": shlex.quote(startup.api_image),
        "REGISTRIES": _array(startup.registry_logins),
        "PASSWORD_SECRET": shlex.quote(startup.password_secret_version),
        "CONTAINER": shlex.quote(CONTAINER_NAME),
        "SPEC_LABEL": shlex.quote(SPEC_LABEL),
        "SPEC": spec_hash(startup),
        "RUN_ARGUMENTS": _array(container_arguments(startup)),
        "COMMANDS": _array(list(PACKAGES)),
        "PACKAGES": _array(list(PACKAGES.values())),
        "TOKEN_USER": shlex.quote(layout.ARTIFACT_REGISTRY_TOKEN_USER),
    }
    return _TEMPLATE.format(**values)


_TEMPLATE = """\
#!/bin/bash
# The startup script of an API replica, rendered by stacks/replica_startup.py: do not edit.
# GCE runs it as root on every boot; it is idempotent. Nothing secret is printed or written.
set -euo pipefail
shopt -s inherit_errexit
umask 077

# The GCP endpoints; the variables replace them only where GCP is played by stand-ins (tests).
metadata_token_url="${{{METADATA_TOKEN_URL_VARIABLE}:-{METADATA_TOKEN_URL}}}"
secret_manager_url="${{{SECRET_MANAGER_URL_VARIABLE}:-{SECRET_MANAGER_URL}}}"
readonly metadata_token_url secret_manager_url
readonly api_image={API_IMAGE}
readonly registries={REGISTRIES}
readonly password_secret={PASSWORD_SECRET}
readonly container={CONTAINER}
readonly spec_label={SPEC_LABEL}
readonly spec={SPEC}
readonly run_arguments={RUN_ARGUMENTS}
readonly commands={COMMANDS}
readonly packages={PACKAGES}

log() {{ echo "mlops-replica: $*" >&2; }}

install_packages() {{
  local i updated=""
  export DEBIAN_FRONTEND=noninteractive
  for i in "${{!commands[@]}}"; do
    if command -v "${{commands[$i]}}" >/dev/null; then
      continue
    fi
    log "installing ${{packages[$i]}}"
    # The first boot may find apt busy (unattended upgrades): wait for its lock.
    if [[ -z "$updated" ]]; then
      apt-get -o DPkg::Lock::Timeout=600 update -qq
      updated=yes
    fi
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${{packages[$i]}}" >/dev/null
  done
  systemctl enable --now docker.service
}}

access_token() {{
  curl --silent --show-error --fail --retry 10 --retry-connrefused --max-time 10 \\
    --header 'Metadata-Flavor: Google' "$metadata_token_url" | jq --raw-output --exit-status .access_token
}}

# A GET with the token as a header read from stdin: never on curl's command line.
authorized_get() {{
  printf 'Authorization: Bearer %s\\n' "$1" |
    curl --silent --show-error --fail --retry 10 --retry-connrefused --max-time 10 --header @- "$2"
}}

mlflow_password() {{
  authorized_get "$1" "$secret_manager_url/$password_secret:access" |
    jq --raw-output --exit-status .payload.data | base64 --decode
}}

logout_registries() {{
  local registry
  for registry in "${{registries[@]}}"; do
    docker logout "https://$registry" >/dev/null 2>&1 || true
  done
}}

pull_image() {{
  local registry
  if docker image inspect "$api_image" >/dev/null 2>&1; then
    return
  fi
  # Logged in for this pull only, even when it fails.
  trap logout_registries EXIT
  for registry in "${{registries[@]}}"; do
    printf '%s' "$1" | docker login --username {TOKEN_USER} --password-stdin "https://$registry" >/dev/null
  done
  log "pulling $api_image"
  docker pull --quiet "$api_image" >/dev/null
  logout_registries
  trap - EXIT
}}

running_spec() {{
  docker container inspect --format "{{{{index .Config.Labels \\"$spec_label\\"}}}}" "$container" \\
    2>/dev/null || true
}}

main() {{
  local token password
  install_packages
  if [[ "$(running_spec)" == "$spec" ]]; then
    docker start "$container" >/dev/null
    log "$container already runs this spec"
    return
  fi
  token="$(access_token)"
  pull_image "$token"
  password="$(mlflow_password "$token")"
  docker rm --force "$container" >/dev/null 2>&1 || true
  MLFLOW_TRACKING_PASSWORD="$password" docker run --detach --name "$container" \\
    --label "$spec_label=$spec" --cpus "$(nproc)" "${{run_arguments[@]}}" >/dev/null
  log "$container started from $api_image"
}}

main "$@"
"""
