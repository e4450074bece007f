"""A registry version is checked against the sha256s recorded on it in the registry, not against
files that travel with it; training records them."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from app.model import bundle_digests, model_source
from app.model.fast_model import BUNDLE_DIR, METADATA_FILE, FastModel, load_bundle, sha256_of
from config.app_settings import DEFAULT_MODEL_NAME, ApiSettings
from tests.conftest import TrainedStore
from tests.support.model_files import champion_version, place_in_cache, swap_classes
from tests.support.processes import free_port

SETOSA = [5.1, 3.5, 1.4, 0.2]


def predicted(fast: FastModel) -> str:
    return fast.predict(np.asarray([SETOSA], np.float32))[0][0]


def settings_for(tracking_uri: str, cache: Path) -> ApiSettings:
    return ApiSettings(tracking_uri=tracking_uri, model_cache_dir=cache)


def test_training_records_the_sha256_of_every_fast_form_file(trained_store: TrainedStore) -> None:
    client = MlflowClient(tracking_uri=trained_store.tracking_uri, registry_uri=trained_store.tracking_uri)
    version = client.get_model_version(DEFAULT_MODEL_NAME, champion_version(trained_store.tracking_uri))
    bundle = trained_store.model_dir / BUNDLE_DIR
    recorded = bundle_digests.from_tags(version.tags)
    assert set(recorded) == {"model.onnx", "decision_table.npz", "metadata.json"}
    assert recorded == {name: sha256_of(bundle / name) for name in recorded}


def test_a_self_consistent_edit_of_metadata_json_is_replaced_by_the_registered_one(
    trained_store: TrainedStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    version = champion_version(trained_store.tracking_uri)
    cached = place_in_cache(trained_store.model_dir, tmp_path / "cache", version)
    swap_classes(cached / BUNDLE_DIR / METADATA_FILE, "setosa", "virginica")
    assert predicted(load_bundle(cached)) == "virginica"  # the edit passes the bundle's own checks

    with caplog.at_level(logging.WARNING):
        model = model_source.load(settings_for(trained_store.tracking_uri, tmp_path / "cache"))
    assert predicted(model.fast) == "setosa"
    assert model.ref.directory == cached
    assert "(metadata.json differs from the registry (sha256)); downloading it again" in caplog.text


def test_a_version_registered_without_sha256_tags_still_serves_with_a_warning(
    trained_store: TrainedStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A copy of the registry (its artifact paths are absolute, so it shares the artifacts).
    shutil.copy(trained_store.root / "mlflow.db", tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    version = champion_version(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for key in bundle_digests.as_tags(bundle_digests.digests_of(trained_store.model_dir / BUNDLE_DIR)):
        client.delete_model_version_tag(DEFAULT_MODEL_NAME, version, key)

    with caplog.at_level(logging.WARNING):
        model = model_source.load(settings_for(uri, tmp_path / "cache"))
    assert predicted(model.fast) == "setosa"
    assert model.digests == {}
    assert "registered without sha256 tags" in caplog.text


def test_a_worker_checks_against_the_masters_sha256s_while_the_registry_is_down(
    trained_store: TrainedStore,
    tmp_path: Path,
) -> None:
    version = champion_version(trained_store.tracking_uri)
    cached = place_in_cache(trained_store.model_dir, tmp_path / "cache", version)
    known = bundle_digests.digests_of(cached / BUNDLE_DIR)
    down = settings_for(f"http://127.0.0.1:{free_port()}", tmp_path / "cache")

    model = model_source.load_version(down, DEFAULT_MODEL_NAME, version, known)
    assert predicted(model.fast) == "setosa"

    (cached / BUNDLE_DIR / METADATA_FILE).write_text(json.dumps({"format": "onnx"}))
    with pytest.raises(model_source.ModelUnavailable, match="Connection refused"):
        model_source.load_version(down, DEFAULT_MODEL_NAME, version, known)
