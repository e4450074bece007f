"""Fixtures shared by every suite: a real MLflow store with a trained, registered champion."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from config.app_settings import CHAMPION_ALIAS, DEFAULT_MODEL_NAME
from tests.support.processes import Server, start_api, train


@dataclass(frozen=True)
class TrainedStore:
    tracking_uri: str
    artifact_root: Path
    root: Path
    model_dir: Path  # the champion downloaded like the API does (models:/<name>@<alias>)


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> TrainedStore:
    """Train once per session with the real command into a SQLite store (about 15 s)."""
    import mlflow
    import mlflow.artifacts

    root = tmp_path_factory.mktemp("mlflow")
    tracking_uri = f"sqlite:///{root}/mlflow.db"
    result = train(tracking_uri, root / "artifacts", root / "train.log")
    assert result.returncode == 0, result.stdout + result.stderr
    model_dir = root / "champion"
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{DEFAULT_MODEL_NAME}@{CHAMPION_ALIAS}", dst_path=str(model_dir)
    )
    return TrainedStore(tracking_uri, root / "artifacts", root, model_dir)


@pytest.fixture(scope="session")
def api_server(trained_store: TrainedStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real API under gunicorn (2 sync workers) serving the champion from the registry."""
    logs = tmp_path_factory.mktemp("api")
    server = start_api(
        {
            "MLOPS_TRACKING_URI": trained_store.tracking_uri,
            "MLOPS_MODEL_CACHE_DIR": str(logs / "cache"),
            "MLOPS_METRICS_DIR": str(logs / "metrics"),
        },
        logs / "gunicorn.log",
    )
    yield server
    server.stop()
