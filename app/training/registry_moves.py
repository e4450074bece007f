"""The MLflow side of `mlops-promote` (app/training/promote.py): read the registry, decide, move."""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from app.training import registry
from app.training.promote import Move, Refused, Version, plan_promotion, plan_rollback
from config import promotion


class RegistryError(Exception):
    """MLflow could not be read or written (unreachable, not allowed, ...)."""


def move_alias(
    tracking_uri: str, model: str, alias: str, version: str | None, reason: str
) -> tuple[Move, dict[str, str]]:
    """Promote `version` (None: roll back) to `alias`; the move made and the tags written."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        current = _champion(client, model, alias)
        if version is None:
            move = Move(promotion.ROLLBACK, current.number if current else None, plan_rollback(current))
            _require_ready(_version(client, model, move.new))
        else:
            move = plan_promotion(current, _version(client, model, version))
        tags = registry.promotion_tags(move.action, move.old, reason)
        registry.record_promotion(client, model, move.new, tags)
        client.set_registered_model_alias(model, alias, move.new)
    except MlflowException as error:
        raise RegistryError(_one_line(error)) from None
    return move, tags


def _champion(client: MlflowClient, model: str, alias: str) -> Version | None:
    try:
        aliases = client.get_registered_model(model).aliases
    except MlflowException as error:
        if _missing(error):
            raise Refused(f"there is no registered model {model!r}") from None
        raise
    number = aliases.get(alias)
    return _version(client, model, str(number)) if number is not None else None


def _version(client: MlflowClient, model: str, number: str) -> Version:
    try:
        found: ModelVersion = client.get_model_version(model, number)
    except MlflowException as error:
        if _missing(error):
            raise Refused(f"{model} has no version {number}") from None
        raise
    replaced = found.tags.get(promotion.REPLACED_VERSION_TAG, "")
    return Version(str(found.version), str(found.status), replaced)


def _require_ready(version: Version) -> None:
    # The same check as a promotion's: a rollback target must still be servable.
    plan_promotion(None, version)


def _missing(error: MlflowException) -> bool:
    return bool(error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST))


def _one_line(error: MlflowException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else error.error_code
