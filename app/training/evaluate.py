"""Quality measures of a trained classifier on held-out data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    f1_macro: float
    confusion: list[list[int]]
    class_names: tuple[str, ...]

    def metrics(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "f1_macro": self.f1_macro}

    def confusion_report(self) -> dict[str, Any]:
        """Rows are true classes, columns predicted classes, in `labels` order."""
        return {"labels": list(self.class_names), "matrix": self.confusion}


def evaluate(y_true: NDArray[np.str_], y_pred: NDArray[np.str_], class_names: tuple[str, ...]) -> Evaluation:
    labels = list(class_names)
    return Evaluation(
        accuracy=float(accuracy_score(y_true, y_pred)),
        f1_macro=float(f1_score(y_true, y_pred, average="macro", labels=labels)),
        confusion=confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        class_names=class_names,
    )
