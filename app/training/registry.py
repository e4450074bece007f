"""MLflow registry operations: the serving alias (MLOPS_MODEL_ALIAS) and the quality gate guarding it."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from app.model import bundle_digests
from config import promotion


def prepare_tracking(tracking_uri: str) -> None:
    """Point MLflow at the store; create the folder of a local SQLite database first."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite" and parsed.path not in ("", "/:memory:"):
        # sqlite:///relative/path -> "/relative/path"; sqlite:////abs/path -> "//abs/path"
        Path(parsed.path[1:]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


def is_local_store(tracking_uri: str) -> bool:
    return urlparse(tracking_uri).scheme in ("sqlite", "file", "")


def ensure_experiment(name: str, tracking_uri: str, artifact_root: str) -> str:
    """Create the experiment if needed; local stores keep artifacts under artifact_root."""
    client = MlflowClient()
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    location = None
    if is_local_store(tracking_uri):
        root = Path(artifact_root).resolve()
        root.mkdir(parents=True, exist_ok=True)
        location = root.as_uri()
    return str(client.create_experiment(name, artifact_location=location))


@dataclass(frozen=True)
class Champion:
    version: str
    accuracy: float | None


def current_champion(model_name: str, alias: str) -> Champion | None:
    """The version the API serves now (the one behind `alias`), if any."""
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None
    accuracy = None
    if version.run_id:
        accuracy = client.get_run(version.run_id).data.metrics.get("accuracy")
    return Champion(version=str(version.version), accuracy=accuracy)


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str


def quality_gate(accuracy: float, min_accuracy: float, champion: Champion | None) -> GateDecision:
    """Promote only a model at least `min_accuracy` accurate and not worse than the champion."""
    if accuracy < min_accuracy:
        return GateDecision(False, f"accuracy {accuracy:.4f} is below the threshold {min_accuracy:.4f}")
    if champion is not None and champion.accuracy is not None and accuracy < champion.accuracy:
        return GateDecision(
            False,
            f"accuracy {accuracy:.4f} is worse than champion v{champion.version} ({champion.accuracy:.4f})",
        )
    against = f"champion v{champion.version}" if champion else "no current champion"
    return GateDecision(True, f"accuracy {accuracy:.4f} >= {min_accuracy:.4f}, not worse than {against}")


def promote(model_name: str, alias: str, version: str, replaced: str | None = None, reason: str = "") -> None:
    """Move `alias` to `version`, recording the promotion on it first (see `record_promotion`)."""
    client = MlflowClient()
    record_promotion(client, model_name, version, promotion_tags(promotion.PROMOTE, replaced, reason))
    client.set_registered_model_alias(model_name, alias, version)


def promotion_tags(action: str, replaced: str | None, reason: str) -> dict[str, str]:
    """Who promoted (MLflow user, OS user), when (UTC), why, and the champion it replaced."""
    return {
        promotion.ACTION_TAG: action,
        promotion.PROMOTED_BY_TAG: os.environ.get("MLFLOW_TRACKING_USERNAME", ""),
        promotion.PROMOTED_BY_OS_USER_TAG: _os_user(),
        promotion.PROMOTED_AT_TAG: datetime.now(UTC).isoformat(timespec="seconds"),
        promotion.REASON_TAG: reason,
        promotion.REPLACED_VERSION_TAG: replaced or "",
    }


def record_promotion(client: MlflowClient, model_name: str, version: str, tags: dict[str, str]) -> None:
    """Tag before the alias moves: a failure in between leaves a non-champion with stale tags
    (harmless: only the champion's are read), never a champion whose tags name the wrong past."""
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return f"uid {os.getuid()}"


def record_fast_digests(model_name: str, version: str, bundle: Path) -> None:
    """Tag the version with the sha256 of each fast-form file: what serving checks its copy against.

    Set before the version can become the alias's, so every version the API may serve has them.
    """
    client = MlflowClient()
    for key, digest in bundle_digests.as_tags(bundle_digests.digests_of(bundle)).items():
        client.set_model_version_tag(model_name, version, key, digest)
