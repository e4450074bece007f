"""In-process predict times of the registered model: scikit-learn vs the ONNX graph vs the decision table."""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

REPEATS = 7


@dataclass(frozen=True)
class Timing:
    label: str
    rows: int
    sklearn_ms: float
    onnx_ms: float
    table_ms: float | None  # None: this version has no decision table

    @property
    def served_ms(self) -> float:
        """What the API uses: the table when there is one, else the graph."""
        return self.onnx_ms if self.table_ms is None else self.table_ms

    @property
    def speedup(self) -> float:
        return self.sklearn_ms / self.served_ms


def median_call_ms(call: Callable[[], Any], repeats: int = REPEATS) -> float:
    """Median over `repeats` of the mean time per call, each repeat lasting at least 0.2 s."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return statistics.median(t / number for t in timer.repeat(repeats, number)) * 1000.0


def load_models(model_dir: Path) -> tuple[Any, Any]:
    """The scikit-learn forest (skops, with the training's trusted types) and the verified fast form."""
    import skops.io

    from app.model.fast_model import load_bundle
    from app.training.train import SKOPS_TRUSTED_TYPES

    forest = skops.io.load(model_dir / "model.skops", trusted=SKOPS_TRUSTED_TYPES)
    return forest, load_bundle(model_dir)


def sample_rows(count: int, seed: int = 0) -> NDArray[np.float32]:
    """`count` Iris rows (the dataset repeated, lightly jittered) as the API feeds them: float32."""
    from sklearn.datasets import load_iris

    data = np.asarray(load_iris().data, dtype=np.float64)
    rng = np.random.default_rng(seed)
    rows = data[rng.integers(0, len(data), size=count)] + rng.normal(0.0, 0.05, size=(count, data.shape[1]))
    return rows.astype(np.float32)


def time_predictions(model_dir: Path) -> list[Timing]:
    forest, fast = load_models(model_dir)
    graph_only = fast.graph_only()  # how a model without a table is served
    timings = []
    for label, rows in (("1 row", sample_rows(1)), ("1,000 rows", sample_rows(1000))):
        expected = [str(c) for c in forest.predict(rows)]
        for name, predict_proba in fast.forms().items():
            classes = fast.names_of(predict_proba(rows))
            disagree = sum(a != b for a, b in zip(expected, classes, strict=True))
            if disagree:
                raise RuntimeError(f"{name} disagrees with scikit-learn on {disagree} of {len(rows)} rows")
        timings.append(
            Timing(
                label,
                len(rows),
                median_call_ms(partial(forest.predict, rows)),
                median_call_ms(_served_call(graph_only, rows)),
                None if fast.table is None else median_call_ms(_served_call(fast, rows)),
            )
        )
    return timings


def _served_call(fast: Any, rows: NDArray[np.float32]) -> Callable[[], Any]:
    """The call the API makes: the one-row path for a single row, else the matrix path."""
    if len(rows) == 1:
        return partial(fast.predict_row, rows[0].tolist())
    return partial(fast.predict_indices, rows)
