"""The provisioning entry point's environment contract: the variables that carry its secrets.

The Pulumi program sets them (stacks/provisioning.py) and the entry point reads them
(stacks/provision.py); both import the names from here, so the program does not import
ansible-runner just to name four variables.
"""

from __future__ import annotations

ENV_PRIVATE_KEY = "MLOPS_SSH_PRIVATE_KEY"
ENV_HOST_KEY = "MLOPS_SSH_HOST_KEY"
ENV_MLFLOW_PASSWORD = "MLOPS_MLFLOW_ADMIN_PASSWORD"  # noqa: S105 - a variable name, not a password
ENV_GRAFANA_PASSWORD = "MLOPS_GRAFANA_ADMIN_PASSWORD"  # noqa: S105 - a variable name, not a password
SECRET_ENV = (ENV_PRIVATE_KEY, ENV_HOST_KEY, ENV_MLFLOW_PASSWORD, ENV_GRAFANA_PASSWORD)
