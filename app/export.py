"""Export a trained forest to its fast form (ONNX) and prove it agrees with the original.

The check runs on the test set and on random in-range rows; an export that disagrees raises
FastModelMismatch and fails the training run, so a wrong graph never reaches the registry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier

from app.fast_model import (
    BUNDLE_DIR,
    FORMAT,
    GRAPH_FILE,
    METADATA_FILE,
    FastModelMismatch,
    compare_predictions,
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


def _sklearn_predictions(
    model: RandomForestClassifier, rows: NDArray[np.float64]
) -> tuple[list[str], NDArray[np.float64]]:
    # The forest compares float32 thresholds; cast the same way the graph will see its input.
    rows32 = rows.astype(np.float32)
    return [str(c) for c in model.predict(rows32)], model.predict_proba(rows32)


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
) -> dict[str, Any]:
    """Write out_dir/fast/{model.onnx,metadata.json}; return the agreement report."""
    bundle = out_dir / BUNDLE_DIR
    bundle.mkdir(parents=True, exist_ok=True)
    graph = to_onnx(
        model,
        x_train[:1].astype(np.float32),
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    graph_path = bundle / GRAPH_FILE
    graph_path.write_bytes(graph.SerializeToString())

    check = np.vstack([x_test, random_in_range_rows(x_train, check_rows, seed)])
    expected_classes, expected_proba = _sklearn_predictions(model, check)
    reference_rows = check[: len(x_test) + REFERENCE_RANDOM_ROWS]
    metadata = {
        "format": FORMAT,
        "graph_sha256": sha256_of(graph_path),
        "class_names": [str(c) for c in model.classes_],
        "feature_names": list(feature_names),
        "probability_tolerance": tolerance,
        "baseline": baseline,
        "reference": {
            "inputs": reference_rows.tolist(),
            "classes": expected_classes[: len(reference_rows)],
            "probabilities": expected_proba[: len(reference_rows)].tolist(),
        },
    }
    (bundle / METADATA_FILE).write_text(json.dumps(metadata, indent=1))

    fast = load_bundle(out_dir, verify=False)
    classes, probabilities = fast.predict(check.astype(np.float32))
    problems = compare_predictions(
        expected_classes, expected_proba, classes, probabilities.astype(np.float64), tolerance
    )
    if problems:
        raise FastModelMismatch("ONNX export disagrees with the scikit-learn model: " + "; ".join(problems))
    return {
        "rows_checked": len(check),
        "test_rows": len(x_test),
        "random_rows": check_rows,
        "max_probability_difference": float(np.max(np.abs(expected_proba - probabilities))),
        "class_disagreements": 0,
    }
