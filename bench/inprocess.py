"""In-process predict times of the registered model: scikit-learn vs its ONNX fast form."""

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
    fast_ms: float

    @property
    def speedup(self) -> float:
        return self.sklearn_ms / self.fast_ms


def median_call_ms(call: Callable[[], Any], repeats: int = REPEATS) -> float:
    """Median over `repeats` of the mean time per call, each repeat lasting at least 0.2 s."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return statistics.median(t / number for t in timer.repeat(repeats, number)) * 1000.0


def load_models(model_dir: Path) -> tuple[Any, Any]:
    """The scikit-learn forest (skops, with the training's trusted types) and the verified fast form."""
    import skops.io

    from app.fast_model import load_bundle
    from app.train import SKOPS_TRUSTED_TYPES

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
    timings = []
    for label, rows in (("1 row", sample_rows(1)), ("1,000 rows", sample_rows(1000))):
        expected = [str(c) for c in forest.predict(rows)]
        classes, _ = fast.predict(rows)
        agree = sum(a == b for a, b in zip(expected, classes, strict=True))
        if agree != len(rows):
            raise RuntimeError(
                f"fast form disagrees with scikit-learn on {len(rows) - agree} of {len(rows)} rows"
            )
        timings.append(
            Timing(
                label,
                len(rows),
                median_call_ms(partial(forest.predict, rows)),
                median_call_ms(partial(fast.predict, rows)),
            )
        )
    return timings
