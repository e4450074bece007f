"""The stack role's facts (paths, names, user ids, the model), as role defaults taken from config/.

`make generate` writes them to `playbooks/roles/stack/defaults/main/facts.yml`, next to the role's
hand-written settings, so the role and the compose file read the same values. Defaults (not role
vars) on purpose: the entry point overrides `stack_dir` for `make stack` through extra vars.
"""

from __future__ import annotations

from typing import Any

from config import alertmanager, edge
from config import stack_layout as layout
from config.app_settings import CHAMPION_ALIAS, DEFAULT_MODEL_NAME
from config.services import OWN_IMAGE_NAMES, SERVICES


def _repository(image: str) -> str:
    return image.rpartition(":")[0]


def stack_role_facts() -> dict[str, Any]:
    """`stack_*` variables for the stack role, every value derived from config/."""
    mlflow, grafana = SERVICES.mlflow, SERVICES.grafana
    return {
        "stack_dir": layout.HOST_STACK_ROOT,
        "stack_project": layout.COMPOSE_PROJECT,
        "stack_service_names": {service.name: service.name for service in SERVICES.all()},
        "stack_trainer_service": layout.TRAINER_SERVICE,
        "stack_grafana_profile": layout.GRAFANA_PROFILE,
        "stack_edge_server_name_variable": layout.EDGE_SERVER_NAME_VARIABLE,
        "stack_edge_grafana_variable": layout.EDGE_GRAFANA_VARIABLE,
        "stack_edge_bind_variable": layout.EDGE_BIND_VARIABLE,
        "stack_edge_domain_variable": layout.EDGE_DOMAIN_VARIABLE,
        "stack_edge_acme_server_variable": layout.EDGE_ACME_SERVER_VARIABLE,
        "stack_edge_acme_email_variable": layout.EDGE_ACME_EMAIL_VARIABLE,
        "stack_mlflow_bind_variable": layout.MLFLOW_BIND_VARIABLE,
        "stack_edge_acme_server": edge.LETS_ENCRYPT_DIRECTORY,
        "stack_edge_acme_ca_file": edge.ACME_CA_HOST_FILE,
        "stack_edge_service": edge.SERVICE_NAME,
        "stack_secrets_dir": layout.SECRETS_DIR,
        "stack_mlflow_admin_secret": layout.MLFLOW_ADMIN_SECRET,
        "stack_grafana_admin_secret": layout.GRAFANA_ADMIN_SECRET,
        "stack_mlflow_client_env_file": layout.MLFLOW_CLIENT_ENV_FILE,
        "stack_mlflow_admin_user": layout.MLFLOW_ADMIN_USER,
        "stack_mlflow_api_secret": layout.MLFLOW_API_SECRET,
        "stack_mlflow_api_client_env_file": layout.MLFLOW_API_CLIENT_ENV_FILE,
        "stack_mlflow_api_user": layout.MLFLOW_API_USER,
        "stack_mlflow_trainer_user": layout.MLFLOW_TRAINER_USER,
        "stack_mlflow_trainer_secret": layout.MLFLOW_TRAINER_SECRET,
        "stack_mlflow_promoter_secret": layout.MLFLOW_PROMOTER_SECRET,
        # Alertmanager's config holds the receivers' secrets (config/alertmanager.py).
        "stack_alertmanager_config_secret": alertmanager.ALERTMANAGER_CONFIG_SECRET,
        # node-exporter's textfile folder, and the restart counts a timer writes there.
        "stack_textfile_dir": layout.NODE_EXPORTER_TEXTFILE_DIR,
        "stack_container_restarts_file": layout.CONTAINER_RESTARTS_METRIC_FILE,
        # Container users that must read their secret file.
        "stack_mlflow_uid": mlflow.uid,
        "stack_grafana_uid": grafana.uid,
        "stack_alertmanager_uid": SERVICES.alertmanager.uid,
        # MLflow as published on the host's loopback, where the role checks the registry.
        "stack_mlflow_url": f"http://127.0.0.1:{mlflow.port}",
        # The model a fresh stack trains and registers once (the API serves name@alias).
        "stack_model_name": DEFAULT_MODEL_NAME,
        "stack_model_alias": CHAMPION_ALIAS,
        # Repositories whose old tags are removed once the stack runs on the current ones.
        "stack_prune_repositories": [_repository(image) for image in OWN_IMAGE_NAMES],
        # Registry delivery logs Docker in to Artifact Registry with the VM's own token.
        "stack_registry_token_url": layout.METADATA_TOKEN_URL,
        "stack_registry_token_user": layout.ARTIFACT_REGISTRY_TOKEN_USER,
    }
