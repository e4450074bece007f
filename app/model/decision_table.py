"""An exact answer table for a tree-ensemble model with few distinct split thresholds.

A tree ensemble sees its input only through comparisons `x[f] <= t` against its split
thresholds. Sorting each feature's distinct thresholds cuts the input space into a grid of
cells; every row in a cell takes the same path through every tree, so the model gives the same
answer for the whole cell. With few thresholds per feature (the Iris forest: 24, 21, 31 and 15)
the grid is small (281,600 cells), and evaluating the ONNX graph once on one point of every cell
gives a table that answers any row exactly as the graph would: four binary searches and an
index, about 1 us, where an onnxruntime call costs 10 to 40 us (docs/BENCHMARKS.md).

Built at export (app/training/export.py) and stored next to the graph (fast/decision_table.npz, its
sha256 in metadata.json); models with too many cells simply have no table and are served by
onnxruntime. Values are compared as float32, the type the graph computes in.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

TABLE_FILE = "decision_table.npz"
# Above this many cells the table costs more memory per worker (2 or 4 bytes a cell) and export time
# than it saves; such models are served by onnxruntime.
MAX_CELLS = 4_000_000


def cell_count(thresholds: Sequence[Sequence[float] | NDArray[np.float32]]) -> int:
    """Cells of the grid the thresholds make: (thresholds + 1) per feature, multiplied."""
    return int(np.prod([len(t) + 1 for t in thresholds], dtype=np.int64))


def cell_points(thresholds: Sequence[NDArray[np.float32]]) -> NDArray[np.float32]:
    """One float32 point per cell, in table order (C order, the last feature varying fastest).

    A row falls in cell i of a feature when exactly i thresholds are below it (t < x), so the
    cell's upper threshold itself belongs to it; the last cell is represented by the smallest
    float32 above the largest threshold.
    """
    points = [
        np.append(t, np.nextafter(t[-1], np.float32(np.inf))) if len(t) else np.zeros(1, np.float32)
        for t in thresholds
    ]
    grid = np.meshgrid(*points, indexing="ij")
    return np.stack(grid, axis=-1).reshape(-1, len(points)).astype(np.float32)


class DecisionTable:
    """Sorted float32 thresholds per feature, an answer id per cell, and the distinct answers."""

    def __init__(
        self,
        thresholds: Sequence[NDArray[np.float32]],
        cells: NDArray[np.unsignedinteger[Any]],
        answers: NDArray[np.float32],
    ) -> None:
        self.thresholds = tuple(thresholds)
        self.answers = answers
        sizes = [len(t) + 1 for t in self.thresholds]
        self._strides = [int(np.prod(sizes[i + 1 :], dtype=np.int64)) for i in range(len(sizes))]
        expected = cell_count(self.thresholds)
        if cells.shape != (expected,):
            raise ValueError(f"the table has {cells.size} cells, its thresholds make {expected}")
        if cells.size and int(cells.max()) >= len(answers):
            raise ValueError("the table refers to answers it does not have")
        # Plain-Python copies for the one-row path: there, list and array look-ups beat numpy calls.
        self._answers = [(row.index(max(row)), row) for row in answers.tolist()]
        self._bounds = list(zip([t.tolist() for t in self.thresholds], self._strides, strict=True))
        dtype, typecode = (np.uint16, "H") if len(self._answers) <= 1 << 16 else (np.uint32, "I")
        self._cells = array(typecode, cells.astype(dtype).tobytes())
        # The matrix path reads the same buffer: one copy of the cells per worker.
        self.cells: NDArray[np.unsignedinteger[Any]] = np.frombuffer(self._cells, dtype=dtype)

    @classmethod
    def build(
        cls,
        thresholds: Sequence[Sequence[float]],
        predict_proba: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    ) -> DecisionTable:
        """Evaluate the model once per cell (`predict_proba` is the graph's own)."""
        sorted_thresholds = [np.unique(np.asarray(t, dtype=np.float32)) for t in thresholds]
        probabilities = np.asarray(predict_proba(cell_points(sorted_thresholds)), dtype=np.float32)
        answers, cells = np.unique(probabilities, axis=0, return_inverse=True)
        return cls(sorted_thresholds, cells.reshape(-1).astype(np.uint32), answers)

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {f"thresholds_{i}": t for i, t in enumerate(self.thresholds)}
        with path.open("wb") as out:
            np.savez_compressed(out, cells=self.cells, answers=self.answers, **arrays)

    @classmethod
    def load(cls, path: Path, n_features: int) -> DecisionTable:
        with np.load(path, allow_pickle=False) as data:
            thresholds = [np.asarray(data[f"thresholds_{i}"], dtype=np.float32) for i in range(n_features)]
            cells = np.asarray(data["cells"])
            answers = np.asarray(data["answers"], dtype=np.float32)
        return cls(thresholds, cells, answers)

    def predict_proba(self, rows: NDArray[np.float32]) -> NDArray[np.float32]:
        cell = np.zeros(len(rows), dtype=np.int64)
        for column, (bounds, stride) in enumerate(zip(self.thresholds, self._strides, strict=True)):
            cell += np.searchsorted(bounds, rows[:, column].astype(np.float32), side="left") * stride
        answers: NDArray[np.float32] = self.answers[self.cells[cell]]
        return answers

    def predict_row(self, row: Sequence[float]) -> tuple[int, list[float]]:
        """Class index (the first highest probability) and probabilities of one row."""
        cell = 0
        # array("f") rounds each value to float32, the type the graph compares in.
        for value, (bounds, stride) in zip(array("f", row), self._bounds, strict=True):
            cell += bisect_left(bounds, value) * stride
        index, probabilities = self._answers[self._cells[cell]]
        return index, list(probabilities)
