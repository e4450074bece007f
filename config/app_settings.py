"""Settings of the training job and the prediction API, read from environment variables.

Every variable is prefixed `MLOPS_`; the defaults make `make run` work on a laptop with no
server at all (an embedded SQLite MLflow store under ./var/mlflow).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.services import SERVICES

DEFAULT_TRACKING_URI = "sqlite:///var/mlflow/mlflow.db"
DEFAULT_ARTIFACT_ROOT = "var/mlflow/artifacts"
DEFAULT_MODEL_NAME = "iris-classifier"
# The training runs' experiment: the trainer's MLflow user may edit this one only.
DEFAULT_EXPERIMENT_NAME = "iris"
CHAMPION_ALIAS = "champion"
# How often the API's master asks MLflow which version the alias names (a promotion reaches the
# running API within this, plus its verification); the deployed API sets it explicitly.
MODEL_WATCH_SECONDS = 30.0
ENV_PREFIX = "MLOPS_"


class ModelSource(StrEnum):
    """Where the API loads its model from."""

    REGISTRY = "registry"  # models:/<name>@<alias> from the MLflow registry
    PATH = "path"  # a local directory laid out like a downloaded registry model


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)


class TrackingSettings(_Settings):
    tracking_uri: str = Field(
        default=DEFAULT_TRACKING_URI,
        description="MLflow tracking URI: sqlite:///path, http(s)://server, or a file store.",
    )
    artifact_root: str = Field(
        default=DEFAULT_ARTIFACT_ROOT,
        description="Where new experiments store artifacts when the tracking URI is a local database.",
    )
    model_name: str = Field(
        default=DEFAULT_MODEL_NAME, min_length=1, description="Registered model name in MLflow."
    )
    model_alias: str = Field(
        default=CHAMPION_ALIAS,
        min_length=1,
        description="Registry alias the API serves and training promotes a version to.",
    )


class TrainSettings(TrackingSettings):
    experiment_name: str = Field(
        default=DEFAULT_EXPERIMENT_NAME, min_length=1, description="MLflow experiment."
    )
    n_estimators: int = Field(default=100, ge=1, le=5000, description="Trees in the forest.")
    max_depth: int | None = Field(default=None, ge=1, description="Tree depth limit; unset = no limit.")
    min_samples_leaf: int = Field(default=1, ge=1, description="Minimum samples per leaf.")
    test_size: float = Field(default=0.2, gt=0.0, lt=1.0, description="Held-out share of the data.")
    random_seed: int = Field(default=42, ge=0, description="Seed for the split and the forest.")
    min_accuracy: float = Field(
        default=0.9, ge=0.0, le=1.0, description="Quality gate: test accuracy needed to become champion."
    )
    export_check_rows: int = Field(
        default=10_000, ge=10_000, description="Random in-range rows the fast form must agree on."
    )
    probability_tolerance: float = Field(
        default=1e-5, gt=0.0, le=1e-3, description="Max |p_sklearn - p_fast| allowed at export."
    )


class ApiSettings(TrackingSettings):
    model_source: ModelSource = Field(default=ModelSource.REGISTRY, description="registry or path.")
    model_path: Path | None = Field(default=None, description="Model directory when model_source=path.")
    host: str = Field(default="127.0.0.1", description="Address gunicorn binds to.")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(default=SERVICES.api.port, description="API port.")
    workers: int = Field(default=2, ge=1, le=64, description="gunicorn sync workers.")
    timeout_seconds: int = Field(default=30, ge=1, le=600, description="gunicorn worker timeout.")
    graceful_timeout_seconds: int = Field(
        default=20, ge=1, le=600, description="Time for in-flight requests on SIGTERM/SIGHUP."
    )
    max_batch_rows: int = Field(default=1000, ge=1, le=100_000, description="Rows allowed per request.")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Request body size limit.")
    model_poll_seconds: float = Field(
        default=10.0, gt=0, le=3600, description="How often a worker without a model looks for one."
    )
    model_watch_seconds: float = Field(
        default=MODEL_WATCH_SECONDS,
        ge=0,
        le=3600,
        description="How often the master checks the alias and swaps to a new version; 0 = only on SIGHUP.",
    )
    # Beside the default local MLflow store under ./var (gitignored, removed by `make clean`), owned
    # by the user who runs `make run`: never a shared, world-writable /tmp where another user could
    # plant or swap model files. It is created 0700 and refused if others can write to it. The
    # image sets its own, inside the container's private /tmp.
    model_cache_dir: Path = Field(
        default=Path("var/model-cache"),
        description="Where downloaded model versions are kept (one folder per name/version); private.",
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        default="info", description="gunicorn log level."
    )
    access_log: str | None = Field(
        default=None, description="gunicorn access log: a file path or '-' for stderr; unset = none."
    )
    metrics_dir: Path | None = Field(
        default=None,
        description="prometheus-client multiprocess directory; gunicorn.conf.py makes a fresh one if unset.",
    )

    @model_validator(mode="after")
    def _path_source_needs_path(self) -> ApiSettings:
        if self.model_source is ModelSource.PATH and self.model_path is None:
            raise ValueError(f"{ENV_PREFIX}MODEL_PATH must be set when {ENV_PREFIX}MODEL_SOURCE=path")
        return self

    @field_validator("model_watch_seconds")
    @classmethod
    def _watch_not_too_often(cls, seconds: float) -> float:
        # Each poll is a registry request from the master; polling faster than 1 s buys nothing.
        if 0 < seconds < 1:
            raise ValueError("must be 0 (off) or at least 1")
        return seconds


def describe_validation_error(error: ValidationError) -> str:
    """Turn a pydantic error into lines that name the environment variable at fault."""
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        variable = f"{ENV_PREFIX}{field.upper()}" if field else "settings"
        lines.append(f"invalid setting {variable}: {item['msg']}")
    return "\n".join(lines)
