"""The fast form agrees with the trained model, and a disagreeing one is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.model.fast_model import FastModelError, FastModelMismatch, load_bundle


@pytest.fixture
def model_copy(trained_store, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    target = tmp_path / "model"
    shutil.copytree(trained_store.model_dir, target)
    return target


def test_exported_bundle_loads_and_verifies(trained_store) -> None:  # type: ignore[no-untyped-def]
    model = load_bundle(trained_store.model_dir)
    classes, probabilities = model.predict(np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], np.float32))
    assert classes == ["setosa", "virginica"]
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert model.feature_names == ("sepal_length", "sepal_width", "petal_length", "petal_width")


def test_fast_form_matches_sklearn_on_random_rows(trained_store) -> None:  # type: ignore[no-untyped-def]
    """Independent of the export's own check: reload both forms from the registry and compare."""
    import mlflow.sklearn

    sklearn_model = mlflow.sklearn.load_model(str(trained_store.model_dir))
    fast = load_bundle(trained_store.model_dir)
    rng = np.random.default_rng(7)
    rows = rng.uniform([4.3, 2.0, 1.0, 0.1], [7.9, 4.4, 6.9, 2.5], size=(2000, 4)).astype(np.float32)
    classes, probabilities = fast.predict(rows)
    assert classes == [str(c) for c in sklearn_model.predict(rows)]
    assert np.max(np.abs(probabilities - sklearn_model.predict_proba(rows))) <= 1e-5


def test_single_row_path_gives_what_the_batch_path_gives(trained_store) -> None:  # type: ignore[no-untyped-def]
    """predict_row reuses bound buffers: every call must see its own row, never a stale answer."""
    fast = load_bundle(trained_store.model_dir).graph_only()
    rng = np.random.default_rng(11)
    rows = rng.uniform([4.3, 2.0, 1.0, 0.1], [7.9, 4.4, 6.9, 2.5], size=(500, 4)).astype(np.float32)
    indices, probabilities = fast.predict_indices(rows)
    for row, expected_index, expected in zip(
        rows.tolist(), indices.tolist(), probabilities.tolist(), strict=True
    ):
        index, got = fast.predict_row(row)
        assert (index, got) == (expected_index, expected)
    assert len(set(indices.tolist())) == 3  # the rows cover every class, so stale answers would show


def test_single_row_path_does_not_wait_for_a_busy_buffer(trained_store) -> None:  # type: ignore[no-untyped-def]
    fast = load_bundle(trained_store.model_dir).graph_only()
    expected = fast.predict_row([6.7, 3.0, 5.2, 2.3])
    with fast._row_lock:  # another thread is using the bound buffers: the general path answers
        assert fast.predict_row([6.7, 3.0, 5.2, 2.3]) == expected
    assert fast.class_names[expected[0]] == "virginica"


def test_reference_disagreement_is_refused(model_copy: Path) -> None:
    metadata_path = model_copy / "fast" / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["reference"]["classes"] = list(reversed(metadata["reference"]["classes"]))
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(FastModelMismatch, match="get another class"):
        load_bundle(model_copy)


def test_swapped_graph_is_refused(model_copy: Path) -> None:
    graph = model_copy / "fast" / "model.onnx"
    graph.write_bytes(graph.read_bytes() + b"\0")
    with pytest.raises(FastModelMismatch, match="sha256"):
        load_bundle(model_copy)


def test_missing_fast_form_is_a_clear_error(model_copy: Path) -> None:
    shutil.rmtree(model_copy / "fast")
    with pytest.raises(FastModelError, match="has no fast form"):
        load_bundle(model_copy)
