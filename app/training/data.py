"""The Iris data set bundled with scikit-learn (no download), split with a fixed seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from app.model.iris import FEATURE_NAMES

__all__ = ["FEATURE_NAMES", "Dataset", "load_split"]


@dataclass(frozen=True)
class Dataset:
    x_train: NDArray[np.float64]
    x_test: NDArray[np.float64]
    y_train: NDArray[np.str_]
    y_test: NDArray[np.str_]
    class_names: tuple[str, ...]


def load_split(test_size: float, seed: int) -> Dataset:
    """Load Iris with class names as labels, stratified split so every class is in the test set."""
    iris = load_iris()
    class_names = tuple(str(name) for name in iris.target_names)
    labels = np.asarray(iris.target_names)[iris.target]
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, labels, test_size=test_size, random_state=seed, stratify=labels
    )
    return Dataset(x_train, x_test, y_train, y_test, class_names)
