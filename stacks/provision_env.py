"""The provisioning entry point's environment contract: the variables that carry its secrets.

The Pulumi program sets them (stacks/provisioning.py) and the entry point reads them
(stacks/provision.py); both import the names from here, so the program does not import
ansible-runner just to name four variables.
"""

from __future__ import annotations

import hashlib
import hmac

ENV_PRIVATE_KEY = "MLOPS_SSH_PRIVATE_KEY"
ENV_HOST_KEY = "MLOPS_SSH_HOST_KEY"
ENV_MLFLOW_PASSWORD = "MLOPS_MLFLOW_ADMIN_PASSWORD"  # noqa: S105 - a variable name, not a password
ENV_GRAFANA_PASSWORD = "MLOPS_GRAFANA_ADMIN_PASSWORD"  # noqa: S105 - a variable name, not a password
SECRET_ENV = (ENV_PRIVATE_KEY, ENV_HOST_KEY, ENV_MLFLOW_PASSWORD, ENV_GRAFANA_PASSWORD)
# Not set by the caller: the API's read-only MLflow user's password, derived from the admin's (so
# it needs no state of its own, follows the admin's rotation, and reveals nothing of it). The
# playbooks prompt for it under this name.
MLFLOW_API_PASSWORD_PROMPT = "MLOPS_MLFLOW_API_PASSWORD"  # noqa: S105 - a prompt name


def mlflow_api_password(admin_password: str) -> str:
    return hmac.new(admin_password.encode(), b"mlops-platform mlflow api user", hashlib.sha256).hexdigest()


def playbook_secrets(mlflow_admin_password: str, grafana_admin_password: str) -> dict[str, str]:
    """The answers to every secret the playbooks prompt for (an unanswered prompt would hang)."""
    return {
        ENV_MLFLOW_PASSWORD: mlflow_admin_password,
        MLFLOW_API_PASSWORD_PROMPT: mlflow_api_password(mlflow_admin_password),
        ENV_GRAFANA_PASSWORD: grafana_admin_password,
    }
