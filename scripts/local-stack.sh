#!/usr/bin/env bash
# `make stack` / `make stack-down`: the same compose stack as on the VM, on this machine's Docker.
# usage: scripts/local-stack.sh up|down
#
# Lays the stack out under var/stack/ like the stack role does under /opt/mlops (compose file from
# deploy/, Prometheus and Grafana config, dashboards, generated secrets), builds the repo's images
# (python -m stacks.images build), trains and registers a first model on a fresh stack, then starts
# everything and waits until it is healthy. Needs Docker with Compose v2 (`docker compose`).
# Prometheus and Grafana images are pulled by Compose; set MLOPS_STACK_WITHOUT_GRAFANA=1 to leave
# Grafana out. Secrets are generated once into var/stack/secrets (directory mode 0700).
set -euo pipefail

cd "$(dirname "$0")/.."
repo="$(pwd)"
state="$repo/var/stack"
python="${PYTHON:-$repo/.venv/bin/python}"
docker_cli="${MLOPS_DOCKER:-docker}"

compose() {
    "$docker_cli" compose --project-directory "$state" -f "$state/compose.yml" "$@"
}

require_compose_v2() {
    if ! "$docker_cli" compose version >/dev/null 2>&1; then
        echo "error: 'docker compose' (Compose v2) is not available. Install Docker's compose plugin" >&2
        echo "       (Debian 13: apt-get install docker-compose; Debian 12 has only Compose v1)." >&2
        exit 1
    fi
}

random_secret() {
    "$python" -c 'import secrets; print(secrets.token_urlsafe(24))'
}

lay_out() {
    mkdir -p "$state/config/prometheus/rules" "$state/config/grafana" "$state/dashboards"
    install -d -m 0700 "$state/secrets"
    cp deploy/compose.yml "$state/compose.yml"
    cp config/prometheus/prometheus.yml "$state/config/prometheus/"
    cp config/prometheus/rules/*.yml "$state/config/prometheus/rules/"
    rm -rf "$state/config/grafana/provisioning"
    cp -r config/grafana/provisioning "$state/config/grafana/provisioning"
    cp config/grafana/grafana.ini "$state/config/grafana/grafana.ini"
    if compgen -G "dashboards/json/*.json" >/dev/null; then cp dashboards/json/*.json "$state/dashboards/"; fi
    # Secret files: generated once. The containers run as their own uids (mlflow 10001,
    # grafana 472), so the files they read are world-readable inside a 0700 directory, unless
    # this runs as root, where they get the VM's layout: owned by that uid, mode 0600.
    local name
    for name in mlflow_admin_password grafana_admin_password; do
        if [[ ! -s "$state/secrets/$name" ]]; then
            (umask 077 && random_secret >"$state/secrets/$name")
        fi
    done
    if [[ $(id -u) -eq 0 ]]; then
        chown 10001 "$state/secrets/mlflow_admin_password"
        chown 472 "$state/secrets/grafana_admin_password"
    else
        chmod 0644 "$state/secrets/mlflow_admin_password" "$state/secrets/grafana_admin_password"
    fi
    (
        umask 077
        printf 'MLFLOW_TRACKING_USERNAME=admin\nMLFLOW_TRACKING_PASSWORD=%s\n' \
            "$(cat "$state/secrets/mlflow_admin_password")" >"$state/secrets/mlflow-client.env"
    )
    local profiles="grafana"
    if [[ "${MLOPS_STACK_WITHOUT_GRAFANA:-}" == 1 ]]; then profiles=""; fi
    printf 'COMPOSE_PROFILES=%s\nGRAFANA_BIND_ADDRESS=127.0.0.1\n' "$profiles" >"$state/.env"
}

has_champion() {
    # 200 when the registry has iris-classifier@champion; 404 on a fresh stack.
    "$python" - "$state/secrets/mlflow_admin_password" <<'EOF'
import base64, sys, urllib.error, urllib.request
password = open(sys.argv[1]).read().strip()
request = urllib.request.Request(
    "http://127.0.0.1:5000/api/2.0/mlflow/registered-models/alias?name=iris-classifier&alias=champion",
    headers={"Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()},
)
try:
    urllib.request.urlopen(request, timeout=10)
except urllib.error.HTTPError as error:
    sys.exit(0 if error.code != 404 else 1)
EOF
}

up() {
    require_compose_v2
    lay_out
    "$python" -m stacks.images build
    compose up --detach --wait mlflow
    if ! has_champion; then
        echo "fresh stack: training and registering the first model"
        compose run --rm --no-TTY trainer
    fi
    compose up --detach --remove-orphans --wait
    compose ps
    cat <<EOF

The stack runs:
  API         http://127.0.0.1:8000        (POST /predict)
  MLflow      http://127.0.0.1:5000        user admin, password in $state/secrets/mlflow_admin_password
  Prometheus  http://127.0.0.1:9090
  Grafana     http://127.0.0.1:3000        user admin, password in $state/secrets/grafana_admin_password
Stop it with: make stack-down (data volumes are kept)
EOF
}

down() {
    require_compose_v2
    if [[ -f "$state/compose.yml" ]]; then compose --profile '*' down; fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *)
        echo "usage: $0 up|down" >&2
        exit 2
        ;;
esac
