"""Export a trained forest to its fast form (ONNX, plus a decision table) and prove both agree.

The check runs on the test set and on random in-range rows; the decision table must also give
exactly the graph's answers on every split threshold and its float32 neighbours. An export that
disagrees raises FastModelMismatch and fails the training run, so a wrong form never reaches
the registry.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier

from app.model import decision_table
from app.model.decision_table import DecisionTable
from app.model.fast_model import (
    BUNDLE_DIR,
    FORMAT,
    GRAPH_FILE,
    METADATA_FILE,
    FastModel,
    FastModelMismatch,
    load_bundle,
    sha256_of,
)

# Rows of the reference set kept in metadata.json: enough to catch a wrong graph at load time,
# small enough to verify in milliseconds when a worker starts.
REFERENCE_RANDOM_ROWS = 200


def random_in_range_rows(x_train: NDArray[np.float64], rows: int, seed: int) -> NDArray[np.float64]:
    """Uniform rows inside the training range of every feature (the space the model must cover)."""
    rng = np.random.default_rng(seed)
    low, high = x_train.min(axis=0), x_train.max(axis=0)
    return rng.uniform(low, high, size=(rows, x_train.shape[1])).round(2)


def split_thresholds(graph: onnx.ModelProto, n_features: int) -> tuple[list[list[float]] | None, str]:
    """Each feature's split thresholds, or None and why the graph gets no decision table.

    Only a graph that is one tree ensemble reading the input directly, with `x <= t` splits,
    qualifies: then the thresholds are all its answer depends on (app/model/decision_table.py).
    """
    nodes = list(graph.graph.node)
    if len(nodes) != 1 or nodes[0].op_type != "TreeEnsembleClassifier":
        return None, "the graph is not a single TreeEnsembleClassifier"
    node = nodes[0]
    if list(node.input) != [graph.graph.input[0].name]:
        return None, "the tree ensemble does not read the graph input directly"
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if "nodes_values" not in attributes:
        return None, "the tree ensemble stores its thresholds as a tensor"
    modes = [mode.decode() for mode in attributes["nodes_modes"]]
    unsupported = sorted(set(modes) - {"BRANCH_LEQ", "LEAF"})
    if unsupported:
        return None, f"split modes {unsupported} are not supported"
    thresholds: list[list[float]] = [[] for _ in range(n_features)]
    for mode, feature, value in zip(
        modes, attributes["nodes_featureids"], attributes["nodes_values"], strict=True
    ):
        if mode == "BRANCH_LEQ":
            thresholds[feature].append(float(value))
    cells = decision_table.cell_count([sorted(set(t)) for t in thresholds])
    if cells > decision_table.MAX_CELLS:
        return None, f"its threshold grid has {cells:,} cells (limit {decision_table.MAX_CELLS:,})"
    return thresholds, f"{cells:,} cells"


def boundary_rows(table: DecisionTable, context: NDArray[np.float64]) -> NDArray[np.float32]:
    """Rows that put each feature on each split threshold and on its float32 neighbours."""
    rows = []
    for feature, thresholds in enumerate(table.thresholds):
        for value in np.concatenate(
            [
                thresholds,
                np.nextafter(thresholds, np.float32(-np.inf)),
                np.nextafter(thresholds, np.float32(np.inf)),
            ]
        ):
            block = context.astype(np.float32)
            block[:, feature] = value
            rows.append(block)
    return np.vstack(rows) if rows else np.empty((0, context.shape[1]), np.float32)


def check_table_against_graph(fast: FastModel, context: NDArray[np.float64]) -> int:
    """The table must give exactly the graph's probabilities at every cell boundary."""
    if fast.table is None:
        return 0
    rows = boundary_rows(fast.table, context)
    differ = np.flatnonzero(np.any(fast.table.predict_proba(rows) != fast.graph_proba(rows), axis=1))
    if differ.size:
        raise FastModelMismatch(
            f"decision table disagrees with the ONNX graph on {differ.size} of {len(rows)} boundary rows "
            f"(first: {rows[differ[0]].tolist()})"
        )
    return len(rows)


def _sklearn_predictions(
    model: RandomForestClassifier, rows: NDArray[np.float64]
) -> tuple[list[str], NDArray[np.float64]]:
    # The forest compares float32 thresholds; cast the same way the graph will see its input.
    rows32 = rows.astype(np.float32)
    return [str(c) for c in model.predict(rows32)], model.predict_proba(rows32)


@dataclass(frozen=True)
class Agreement:
    """How the exported forms were checked against the scikit-learn model (logged with the run)."""

    rows_checked: int
    test_rows: int
    random_rows: int
    max_probability_difference: float
    class_disagreements: int
    decision_table: bool
    decision_table_note: str
    decision_table_boundary_rows: int

    def report(self) -> dict[str, Any]:
        return asdict(self)


def write_graph(model: RandomForestClassifier, x_train: NDArray[np.float64], bundle: Path) -> onnx.ModelProto:
    graph: onnx.ModelProto = to_onnx(
        model,
        x_train[:1].astype(np.float32),
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    (bundle / GRAPH_FILE).write_bytes(graph.SerializeToString())
    return graph


def write_table(graph: onnx.ModelProto, bundle: Path, metadata: dict[str, Any]) -> str:
    """Build and save the decision table if the graph qualifies; record it in `metadata`; say why."""
    thresholds, note = split_thresholds(graph, len(metadata["feature_names"]))
    if thresholds is None:
        return note
    # Evaluated by the graph itself, through the same graph call the API uses.
    table = DecisionTable.build(thresholds, FastModel.open(bundle / GRAPH_FILE, metadata).graph_proba)
    table_path = bundle / decision_table.TABLE_FILE
    table.save(table_path)
    metadata["decision_table"] = {
        "sha256": sha256_of(table_path),
        "cells": int(table.cells.size),
        "answers": len(table.answers),
    }
    return note


def describe(
    model: RandomForestClassifier,
    feature_names: tuple[str, ...],
    baseline: dict[str, Any],
    tolerance: float,
    graph_sha256: str,
) -> dict[str, Any]:
    """metadata.json without its reference set; the decision table is added once built."""
    return {
        "format": FORMAT,
        "graph_sha256": graph_sha256,
        "class_names": [str(c) for c in model.classes_],
        "feature_names": list(feature_names),
        "probability_tolerance": tolerance,
        "baseline": baseline,
        "decision_table": None,
    }


def export_fast_model(
    model: RandomForestClassifier,
    x_train: NDArray[np.float64],
    x_test: NDArray[np.float64],
    feature_names: tuple[str, ...],
    baseline: dict[str, Any],
    out_dir: Path,
    check_rows: int,
    tolerance: float,
    seed: int,
) -> Agreement:
    """Write out_dir/fast/ (graph, decision table if any, metadata.json); check every form."""
    bundle = out_dir / BUNDLE_DIR
    bundle.mkdir(parents=True, exist_ok=True)
    graph = write_graph(model, x_train, bundle)
    metadata = describe(model, feature_names, baseline, tolerance, sha256_of(bundle / GRAPH_FILE))
    table_note = write_table(graph, bundle, metadata)

    check = np.vstack([x_test, random_in_range_rows(x_train, check_rows, seed)])
    expected_classes, expected_proba = _sklearn_predictions(model, check)
    reference_rows = len(x_test) + REFERENCE_RANDOM_ROWS
    metadata["reference"] = {
        "inputs": check[:reference_rows].tolist(),
        "classes": expected_classes[:reference_rows],
        "probabilities": expected_proba[:reference_rows].tolist(),
    }
    (bundle / METADATA_FILE).write_text(json.dumps(metadata, indent=1))

    fast = load_bundle(out_dir, verify=False)  # every form, as stored
    worst = fast.check_forms(
        check.astype(np.float32), expected_classes, expected_proba, tolerance, "the scikit-learn model"
    )
    return Agreement(
        rows_checked=len(check),
        test_rows=len(x_test),
        random_rows=check_rows,
        max_probability_difference=worst,
        class_disagreements=0,
        decision_table=fast.table is not None,
        decision_table_note=table_note,
        decision_table_boundary_rows=check_table_against_graph(fast, x_test[:10]),
    )
