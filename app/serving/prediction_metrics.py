"""Record what the model predicted: per-class counts, confidence and input drift signals.

The metric children (label look-ups) are resolved once per loaded model, and a single row - the
common request - takes a path of plain-float arithmetic: on the request path every microsecond
counts (see docs/BENCHMARKS.md, where label look-ups and numpy calls per row were the top costs).
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.model.training_quantiles import QUANTILE_LEVELS, training_cdf
from app.serving import metrics

_LEVELS = [float(level) for level in QUANTILE_LEVELS]


def training_position(value: float, quantiles: Sequence[float]) -> float:
    """Scalar twin of training_quantiles.training_cdf (the same interpolation of the quantiles)."""
    if value <= quantiles[0]:
        return 0.0
    if value >= quantiles[-1]:
        return 1.0
    i = bisect_right(quantiles, value)  # quantiles[i-1] <= value < quantiles[i], so no zero width
    low, high = quantiles[i - 1], quantiles[i]
    return _LEVELS[i - 1] + (value - low) / (high - low) * (_LEVELS[i] - _LEVELS[i - 1])


class PredictionRecorder:
    """Metric children of one model, bound at load time."""

    def __init__(
        self,
        model_name: str,
        model_version: str,
        class_names: Sequence[str],
        feature_names: Sequence[str],
        baseline: dict[str, Any],
    ) -> None:
        self._per_class = [metrics.PREDICTIONS.labels(model_name, model_version, c) for c in class_names]
        quantiles = baseline["feature_quantiles"]
        self._features = [
            (metrics.FEATURE_TRAINING_QUANTILE.labels(name), [float(q) for q in quantiles[name]])
            for name in feature_names
        ]

    def record(self, rows: NDArray[np.float32], class_indices: list[int], confidences: list[float]) -> None:
        """One predicted row per entry: its class index and the probability of that class."""
        if len(class_indices) == 1:
            self.record_one(rows[0].tolist(), class_indices[0], confidences[0])
            return
        for index, count in enumerate(np.bincount(class_indices, minlength=len(self._per_class)).tolist()):
            if count:
                self._per_class[index].inc(count)
        for confidence in confidences:
            metrics.PREDICTION_CONFIDENCE.observe(confidence)
        for column, (histogram, quantiles) in enumerate(self._features):
            for position in training_cdf(rows[:, column].astype(np.float64), quantiles).tolist():
                histogram.observe(position)

    def record_one(self, row: Sequence[float], class_index: int, confidence: float) -> None:
        """The single-row request: plain floats, no numpy."""
        self._per_class[class_index].inc()
        metrics.PREDICTION_CONFIDENCE.observe(confidence)
        # Values as the model saw them (float32), like the batch path's matrix: a value on a
        # training quantile lands in the same bucket whichever endpoint or form it came through.
        for value, (histogram, quantiles) in zip(array("f", row), self._features, strict=True):
            histogram.observe(training_position(value, quantiles))
