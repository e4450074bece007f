"""The decision table answers exactly as the ONNX graph does, and a wrong one is never served."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier

from app.model import decision_table
from app.model.decision_table import TABLE_FILE, DecisionTable
from app.model.fast_model import METADATA_FILE, FastModelError, FastModelMismatch, load_bundle, sha256_of
from app.training import export

IRIS_LOW, IRIS_HIGH = [4.3, 2.0, 1.0, 0.1], [7.9, 4.4, 6.9, 2.5]


@pytest.fixture
def model_copy(trained_store, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    target = tmp_path / "model"
    shutil.copytree(trained_store.model_dir, target)
    return target


def hand_made_table() -> DecisionTable:
    """Two features split at 1.0 and 2.0: four cells, each with its own answer."""
    answers = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0]], dtype=np.float32)
    thresholds = [np.array([1.0], np.float32), np.array([2.0], np.float32)]
    return DecisionTable(thresholds, np.array([0, 1, 2, 3], np.uint32), answers)


@pytest.mark.parametrize(
    ("row", "cell"),
    [
        ([1.0, 2.0], 0),  # a value on a threshold goes left (x <= t), like the graph's BRANCH_LEQ
        ([0.5, 2.5], 1),
        ([1.5, -3.0], 2),
        ([1.5, 2.5], 3),
        ([1.00000001, 2.0], 0),  # rounds to 1.0 in float32, the type the graph compares in
        ([1.0000002, 2.0], 2),  # the next float32 above 1.0: right
        ([1e39, 1e39], 3),  # beyond float32: infinity, as the graph would see it
        ([-1e39, -1e39], 0),
    ],
)
def test_cells_follow_the_graphs_comparison(row: list[float], cell: int) -> None:
    table = hand_made_table()
    expected = table.answers[cell].tolist()
    assert table.predict_row(row) == (expected.index(max(expected)), expected)
    with np.errstate(over="ignore"):  # 1e39 becomes infinity in float32, on purpose
        rows = np.array([row], np.float32)
    assert table.predict_proba(rows).tolist() == [expected]


def test_exported_table_equals_the_graph_everywhere(trained_store) -> None:  # type: ignore[no-untyped-def]
    fast = load_bundle(trained_store.model_dir)
    assert fast.table is not None
    rng = np.random.default_rng(3)
    rows = rng.uniform(np.array(IRIS_LOW) - 1, np.array(IRIS_HIGH) + 1, size=(20_000, 4)).astype(np.float32)
    rows = np.vstack([rows, export.boundary_rows(fast.table, rows[:5].astype(np.float64))])
    graph = fast.graph_proba(rows)
    assert np.array_equal(fast.table.predict_proba(rows), graph)
    for row, expected in zip(rows[:2000].tolist(), graph[:2000].tolist(), strict=True):
        assert fast.predict_row(row) == (expected.index(max(expected)), expected)


def test_metadata_describes_the_table(trained_store) -> None:  # type: ignore[no-untyped-def]
    fast = load_bundle(trained_store.model_dir)
    described = fast.metadata["decision_table"]
    assert fast.table is not None
    assert described["cells"] == fast.table.cells.size == decision_table.cell_count(fast.table.thresholds)
    assert described["answers"] == len(fast.table.answers)
    assert described["sha256"] == sha256_of(trained_store.model_dir / "fast" / TABLE_FILE)


def test_changed_table_is_refused(model_copy: Path) -> None:
    path = model_copy / "fast" / TABLE_FILE
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(FastModelMismatch, match="sha256"):
        load_bundle(model_copy)


def test_wrong_table_is_refused_even_with_a_matching_sha(model_copy: Path) -> None:
    """The reference set runs through the table too: a wrong table cannot hide behind metadata."""
    fast = load_bundle(model_copy)
    assert fast.table is not None
    swapped = DecisionTable(fast.table.thresholds, fast.table.cells, fast.table.answers[:, ::-1].copy())
    path = model_copy / "fast" / TABLE_FILE
    swapped.save(path)
    metadata_path = model_copy / "fast" / METADATA_FILE
    metadata = json.loads(metadata_path.read_text())
    metadata["decision_table"]["sha256"] = sha256_of(path)
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(FastModelMismatch, match="decision table"):
        load_bundle(model_copy)


def test_missing_table_file_is_a_clear_error(model_copy: Path) -> None:
    (model_copy / "fast" / TABLE_FILE).unlink()
    with pytest.raises(FastModelError, match="lists a decision table"):
        load_bundle(model_copy)


def test_bundle_without_a_table_is_served_by_onnxruntime(model_copy: Path) -> None:
    """Bundles exported before tables existed, or with too large a grid, still load and agree."""
    (model_copy / "fast" / TABLE_FILE).unlink()
    metadata_path = model_copy / "fast" / METADATA_FILE
    metadata = json.loads(metadata_path.read_text())
    del metadata["decision_table"]
    metadata_path.write_text(json.dumps(metadata))
    fast = load_bundle(model_copy)
    assert fast.table is None
    assert fast.class_names[fast.predict_row([6.7, 3.0, 5.2, 2.3])[0]] == "virginica"


def small_forest() -> tuple[RandomForestClassifier, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 10, size=(300, 3))
    y = np.where(x[:, 0] + x[:, 1] > 10, "a", "b")
    return RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y), x


def test_thresholds_are_the_forests_split_points() -> None:
    model, x = small_forest()
    graph = to_onnx(model, x[:1].astype(np.float32), options={id(model): {"zipmap": False}})
    thresholds, note = export.split_thresholds(graph, 3)
    assert thresholds is not None, note
    for feature in range(3):
        splits = [
            t
            for tree in model.estimators_
            for t, f in zip(tree.tree_.threshold, tree.tree_.feature, strict=True)
            if f == feature
        ]
        # The graph holds them as float32 (skl2onnx may round either way): same points, same count.
        assert len(thresholds[feature]) == len(splits)
        assert np.allclose(sorted(thresholds[feature]), sorted(splits), rtol=1e-6)


def test_too_large_a_grid_gets_no_table(monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = small_forest()
    graph = to_onnx(model, x[:1].astype(np.float32), options={id(model): {"zipmap": False}})
    monkeypatch.setattr(decision_table, "MAX_CELLS", 10)
    thresholds, note = export.split_thresholds(graph, 3)
    assert thresholds is None
    assert "limit 10" in note


def test_a_graph_that_is_not_one_tree_ensemble_gets_no_table() -> None:
    model, x = small_forest()
    graph = to_onnx(model, x[:1].astype(np.float32))  # with ZipMap: a second node
    thresholds, note = export.split_thresholds(graph, 3)
    assert thresholds is None
    assert "single TreeEnsembleClassifier" in note
