"""The training baseline that drift monitoring compares live traffic against.

Stored with every model version (fast/metadata.json) so the API exports the baseline of the
model it actually serves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.model.training_quantiles import QUANTILE_LEVELS


def build_baseline(
    x_train: NDArray[np.float64],
    y_train: NDArray[np.str_],
    feature_names: tuple[str, ...],
    class_names: tuple[str, ...],
) -> dict[str, Any]:
    counts = {name: int(np.sum(y_train == name)) for name in class_names}
    total = sum(counts.values())
    return {
        "rows": total,
        "class_share": {name: counts[name] / total for name in class_names},
        "quantile_levels": list(QUANTILE_LEVELS),
        "feature_quantiles": {
            name: [float(v) for v in np.quantile(x_train[:, i], QUANTILE_LEVELS)]
            for i, name in enumerate(feature_names)
        },
    }
