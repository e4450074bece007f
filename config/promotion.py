"""Model promotion (`mlops-promote`): the version tags that record it, and where it finds MLflow.

Each promotion or rollback tags the version it moves the serving alias to: who (the MLflow user
and the OS user), when (UTC, ISO 8601), why, and which version it replaced. `--rollback` follows
the champion's `replaced` tag back, so these keys are read as well as written: change them only
with a migration of the existing tags.
"""

from __future__ import annotations

from config.services import SERVICES

TAG_PREFIX = "mlops.promotion."
PROMOTED_BY_TAG = f"{TAG_PREFIX}by"  # the MLflow user (MLFLOW_TRACKING_USERNAME)
PROMOTED_BY_OS_USER_TAG = f"{TAG_PREFIX}by_os_user"
PROMOTED_AT_TAG = f"{TAG_PREFIX}at"
REASON_TAG = f"{TAG_PREFIX}reason"
REPLACED_VERSION_TAG = f"{TAG_PREFIX}replaced"  # "" when there was no champion before
ACTION_TAG = f"{TAG_PREFIX}action"  # PROMOTE or ROLLBACK
PROMOTE = "promote"
ROLLBACK = "rollback"

# MLflow as the stack's `mlflowTunnelCommand` forwards it to an operator's machine (same port).
TUNNEL_TRACKING_URI = f"http://localhost:{SERVICES.mlflow.port}"
