"""The provisioning entry point's environment contract: the variables that carry its secrets.

The Pulumi program sets them (stacks/provisioning.py) and the entry point reads them
(stacks/provision.py); both import the names from here, so the program does not import
ansible-runner just to name four variables.
"""

from __future__ import annotations

import hashlib
import hmac

from config.alertmanager import rendered_config

ENV_PRIVATE_KEY = "MLOPS_SSH_PRIVATE_KEY"
ENV_HOST_KEY = "MLOPS_SSH_HOST_KEY"
ENV_MLFLOW_PASSWORD = "MLOPS_MLFLOW_ADMIN_PASSWORD"  # noqa: S105 - a variable name, not a password
ENV_GRAFANA_PASSWORD = "MLOPS_GRAFANA_ADMIN_PASSWORD"  # noqa: S105 - a variable name, not a password
# Alertmanager's whole config, rendered from the stack config (config/alertmanager.py): secret, as
# it holds the receivers' webhook URLs and SMTP password. Unset: no receiver (alerts go nowhere).
ENV_ALERTMANAGER_CONFIG = "MLOPS_ALERTMANAGER_CONFIG"
SECRET_ENV = (
    ENV_PRIVATE_KEY,
    ENV_HOST_KEY,
    ENV_MLFLOW_PASSWORD,
    ENV_GRAFANA_PASSWORD,
    ENV_ALERTMANAGER_CONFIG,
)
# Not set by the caller: the passwords of MLflow's other users (the API's, the trainer's, the
# promoter's), each an HMAC of the admin's under its own label. Derived rather than Pulumi secrets
# of their own: no new state to create, store or lose, one rotation (the admin's) renews them all,
# and none reveals the admin's password or another user's. The playbooks prompt for them by name.
MLFLOW_API_PASSWORD_PROMPT = "MLOPS_MLFLOW_API_PASSWORD"  # noqa: S105 - a prompt name
MLFLOW_TRAINER_PASSWORD_PROMPT = "MLOPS_MLFLOW_TRAINER_PASSWORD"  # noqa: S105 - a prompt name
MLFLOW_PROMOTER_PASSWORD_PROMPT = "MLOPS_MLFLOW_PROMOTER_PASSWORD"  # noqa: S105 - a prompt name


def _derived_password(admin_password: str, label: bytes) -> str:
    return hmac.new(admin_password.encode(), label, hashlib.sha256).hexdigest()


def mlflow_api_password(admin_password: str) -> str:
    return _derived_password(admin_password, b"mlops-platform mlflow api user")


def mlflow_trainer_password(admin_password: str) -> str:
    return _derived_password(admin_password, b"mlops-platform mlflow trainer user")


def mlflow_promoter_password(admin_password: str) -> str:
    return _derived_password(admin_password, b"mlops-platform mlflow promoter user")


def playbook_secrets(
    mlflow_admin_password: str, grafana_admin_password: str, alertmanager_config: str | None = None
) -> dict[str, str]:
    """The answers to every secret the playbooks prompt for (an unanswered prompt would hang).
    Without an Alertmanager config, the receiver-less one: alerts reach no one."""
    return {
        ENV_MLFLOW_PASSWORD: mlflow_admin_password,
        MLFLOW_API_PASSWORD_PROMPT: mlflow_api_password(mlflow_admin_password),
        MLFLOW_TRAINER_PASSWORD_PROMPT: mlflow_trainer_password(mlflow_admin_password),
        MLFLOW_PROMOTER_PASSWORD_PROMPT: mlflow_promoter_password(mlflow_admin_password),
        ENV_GRAFANA_PASSWORD: grafana_admin_password,
        ENV_ALERTMANAGER_CONFIG: alertmanager_config or rendered_config(),
    }
