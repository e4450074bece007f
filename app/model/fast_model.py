"""The fast form of a model: an ONNX graph plus the metadata needed to serve and verify it.

This module is all the serving side needs (onnxruntime + numpy; no scikit-learn). A bundle is a
directory `fast/` inside the registered model version's artifacts:

    fast/model.onnx             the graph (probabilities output, no ZipMap)
    fast/decision_table.npz     optional: the graph's answer for every cell of its threshold grid
                                (app/model/decision_table.py), when the grid is small enough
    fast/metadata.json          classes, features, baseline, the sha256 of the files above, and a
                                reference set: inputs with the probabilities scikit-learn gave

Loading verifies the sha256s and re-runs the reference set through the graph and the table: a
bundle that disagrees with the model it was exported from is refused (FastModelMismatch), so it
is never served. With a table, predictions come from it (same answers, much cheaper per row).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from app.model.decision_table import TABLE_FILE, DecisionTable

BUNDLE_DIR = "fast"
GRAPH_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
FORMAT = "onnx"

ProbabilityFunction = Callable[[NDArray[np.float32]], NDArray[np.float32]]


class FastModelError(Exception):
    """The bundle is missing or unreadable."""


class FastModelMismatch(FastModelError):
    """The fast form does not give the predictions the original model gave."""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compare_predictions(
    expected_classes: list[str],
    expected_probabilities: NDArray[np.float64],
    classes: list[str],
    probabilities: NDArray[np.float64],
    tolerance: float,
) -> tuple[list[str], float]:
    """Human-readable disagreements (empty when the two agree) and the largest probability gap."""
    problems = []
    mismatched = [i for i, (a, b) in enumerate(zip(expected_classes, classes, strict=True)) if a != b]
    if mismatched:
        first = mismatched[0]
        problems.append(
            f"{len(mismatched)} of {len(classes)} rows get another class "
            f"(row {first}: expected {expected_classes[first]!r}, got {classes[first]!r})"
        )
    worst = float(np.max(np.abs(expected_probabilities - probabilities))) if len(classes) else 0.0
    if worst > tolerance:
        problems.append(f"probabilities differ by up to {worst:.3g} (tolerance {tolerance:.1g})")
    return problems, worst


def _open_session(graph: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # One gunicorn sync worker per core: threads inside a worker only add contention.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(graph), sess_options=options, providers=["CPUExecutionProvider"])


@dataclass
class FastModel:
    """An ONNX classifier with its class names, feature names and training baseline."""

    session: ort.InferenceSession
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    baseline: dict[str, Any]
    metadata: dict[str, Any]
    table: DecisionTable | None = None
    _row_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def open(cls, graph: Path, metadata: dict[str, Any], table: DecisionTable | None = None) -> FastModel:
        """The graph at `graph` described by `metadata` (as in metadata.json), served as the API does."""
        return cls(
            session=_open_session(graph),
            class_names=tuple(metadata["class_names"]),
            feature_names=tuple(metadata["feature_names"]),
            baseline=metadata["baseline"],
            metadata=metadata,
            table=table,
        )

    def __post_init__(self) -> None:
        self._input_name = self.session.get_inputs()[0].name
        # One-row buffers bound to the session once: a single row (the common request) then skips
        # onnxruntime's per-call input conversion and output allocation (docs/BENCHMARKS.md).
        self._row_input = np.zeros((1, len(self.feature_names)), dtype=np.float32)
        row_output = ort.OrtValue.ortvalue_from_shape_and_type([1, len(self.class_names)], np.float32, "cpu")
        self._row_binding = self.session.io_binding()
        self._row_binding.bind_cpu_input(self._input_name, self._row_input)
        self._row_binding.bind_ortvalue_output("probabilities", row_output)
        self._row_output = row_output.numpy()  # a view of the bound buffer, refreshed by each run

    def predict_row(self, row: Sequence[float]) -> tuple[int, list[float]]:
        """One row: its class index (the first highest probability) and the probabilities.

        Without a decision table, a call made while another thread holds the bound buffers takes
        the general path instead of waiting, so this is safe under threaded servers too.
        """
        if self.table is not None:
            return self.table.predict_row(row)
        if self._row_lock.acquire(blocking=False):
            try:
                self._row_input[0] = row
                self.session.run_with_iobinding(self._row_binding)
                probabilities: list[float] = self._row_output[0].tolist()
            finally:
                self._row_lock.release()
        else:
            probabilities = self.graph_proba(np.asarray([row], dtype=np.float32))[0].tolist()
        return probabilities.index(max(probabilities)), probabilities

    def graph_proba(self, rows: NDArray[np.float32]) -> NDArray[np.float32]:
        """Probabilities from the ONNX graph itself (onnxruntime)."""
        outputs = self.session.run(["probabilities"], {self._input_name: rows})
        return np.asarray(outputs[0], dtype=np.float32)

    def predict_proba(self, rows: NDArray[np.float32]) -> NDArray[np.float32]:
        if self.table is not None:
            return self.table.predict_proba(rows)
        return self.graph_proba(rows)

    def predict_indices(self, rows: NDArray[np.float32]) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
        """Class indices (scikit-learn's rule: the first highest probability) and probabilities."""
        probabilities = self.predict_proba(rows)
        return np.argmax(probabilities, axis=1), probabilities

    def names_of(self, probabilities: NDArray[np.floating[Any]]) -> list[str]:
        """The predicted class of each row of probabilities (the first highest)."""
        return [self.class_names[i] for i in np.argmax(probabilities, axis=1).tolist()]

    def predict(self, rows: NDArray[np.float32]) -> tuple[list[str], NDArray[np.float32]]:
        """Class names and probabilities."""
        probabilities = self.predict_proba(rows)
        return self.names_of(probabilities), probabilities

    def graph_only(self) -> FastModel:
        """This model served by onnxruntime alone, as a model without a decision table is."""
        return replace(self, table=None)

    def forms(self) -> dict[str, ProbabilityFunction]:
        """Each form this bundle can answer with, by name: the graph, and the table if any."""
        forms: dict[str, ProbabilityFunction] = {"ONNX graph": self.graph_proba}
        if self.table is not None:
            forms["decision table"] = self.table.predict_proba
        return forms

    def check_forms(
        self,
        rows: NDArray[np.float32],
        expected_classes: list[str],
        expected_probabilities: NDArray[np.float64],
        tolerance: float,
        against: str,
    ) -> float:
        """Run `rows` through every form; raise FastModelMismatch naming the form that disagrees
        with the expected answers, else return the largest probability difference seen."""
        worst = 0.0
        for name, predict_proba in self.forms().items():
            probabilities = predict_proba(rows).astype(np.float64)
            problems, gap = compare_predictions(
                expected_classes,
                expected_probabilities,
                self.names_of(probabilities),
                probabilities,
                tolerance,
            )
            if problems:
                raise FastModelMismatch(f"{name} disagrees with {against}: " + "; ".join(problems))
            worst = max(worst, gap)
        return worst

    def verify(self) -> None:
        """Re-run the reference set recorded at export through every form; raise on disagreement."""
        reference = self.metadata["reference"]
        self.check_forms(
            np.asarray(reference["inputs"], dtype=np.float32),
            reference["classes"],
            np.asarray(reference["probabilities"], dtype=np.float64),
            float(self.metadata["probability_tolerance"]),
            "its reference",
        )


def _check_sha256(path: Path, recorded: str) -> None:
    if sha256_of(path) != recorded:
        raise FastModelMismatch(f"{path} changed after export (sha256 differs from {METADATA_FILE})")


def _load_table(bundle: Path, metadata: dict[str, Any], verify: bool) -> DecisionTable | None:
    described = metadata.get("decision_table")
    if not described:  # exported before tables existed, or a grid too large for one
        return None
    path = bundle / TABLE_FILE
    if not path.is_file():
        raise FastModelError(f"{METADATA_FILE} lists a decision table but {path} is missing")
    if verify:
        _check_sha256(path, described["sha256"])
    try:
        return DecisionTable.load(path, len(metadata["feature_names"]))
    except (OSError, KeyError, ValueError) as error:
        raise FastModelError(f"{path} is unreadable: {error}") from error


def load_bundle(model_dir: Path, verify: bool = True) -> FastModel:
    """Load `model_dir/fast/` (a downloaded model version); verify it unless told not to."""
    bundle = model_dir / BUNDLE_DIR
    graph, metadata_path = bundle / GRAPH_FILE, bundle / METADATA_FILE
    if not graph.is_file() or not metadata_path.is_file():
        raise FastModelError(
            f"{model_dir} has no fast form ({BUNDLE_DIR}/{GRAPH_FILE} and {BUNDLE_DIR}/{METADATA_FILE}); "
            "train with `make train` to export one"
        )
    try:
        metadata = json.loads(metadata_path.read_text())
    except json.JSONDecodeError as error:
        raise FastModelError(f"{metadata_path} is not valid JSON: {error}") from error
    if metadata.get("format") != FORMAT:
        raise FastModelError(f"{metadata_path}: unsupported fast format {metadata.get('format')!r}")
    if verify:
        _check_sha256(graph, metadata["graph_sha256"])
    model = FastModel.open(graph, metadata, _load_table(bundle, metadata, verify))
    if verify:
        model.verify()
    return model
